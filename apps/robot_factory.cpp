#include "apps/robot_factory.h"

#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "hardware/calibration.h"
#include "hardware/camera.h"
#include "apps/sim_episodes.h"
#include "sim/kinematics.h"
#include "sim/simulator.h"
#include "sim/model.h"

namespace vlascope {

void add_robot_options(ArgParser& args, RobotOptions which) {
  if (which == RobotOptions::kChoice)
    args.option("robot", "sim", "which robot: sim (MuJoCo twin) or so100 (the real arm)");
  if (which != RobotOptions::kSo100Only) {
    args.option("sim-size", "128", "sim: camera image size, N or WxH");
    args.option("sim-quality", "fast", "sim: render quality, fast or nice");
    args.option("scene", "", "sim: MJCF scene (default scenes/pick_cube.xml)");
  }
  args.option("port", "", "so100: serial port of the follower (/dev/ttyACM0, or a `vlascope twin` device)");
  args.option("robot-id", "", "so100: calibration name in LeRobot's directory (robots/so_follower/<id>.json)");
  args.option("calibration", "", "so100: calibration JSON file (LeRobot's format); default: --robot-id, else EEPROM");
  args.option("cameras", "", "so100: cameras, name=device[:WxH][@fps],… e.g. scene=0,wrist=/dev/video2");
  args.option("units", "", "so100: JSON overriding the LeRobot↔radian sign/offset per joint");
  args.option("transport", "auto", "so100: auto, libserialport or posix (termios; needed for pseudo-terminals)");
  args.option("baud", "1000000", "so100: bus baud rate");
  args.option("bus-latency-ms", "20", "so100: reply allowance beyond the wire time (USB adapter latency)");
  args.option("norm-mode", "degrees", "so100: LeRobot arm units: degrees (≥ v0.4.4) or range_m100_100 (older)");
  args.option("max-step-deg", "",
              "so100: per-tick step limit in degrees, one value or six (default 5.7/5.7/5.7/8.6/8.6/11.5)");
  args.option("watchdog", "1.0", "so100: stop the arm when no reading arrives for this many seconds (0: off)");
  args.option("watchdog-action", "hold", "so100: hold or torque-off");
}

So100Config so100_config_from(const ArgParser& args) {
  So100Config c;
  c.bus.port = args.get("port");
  require(!c.bus.port.empty(), "--robot so100 needs --port (the follower's serial port)");
  c.bus.transport = parse_transport_kind(args.get("transport"));
  c.bus.baud_rate = args.get_int("baud");
  c.bus.bus.latency_allowance_s = args.get_double("bus-latency-ms") / 1e3;
  c.arm_norm_mode = parse_norm_mode(args.get("norm-mode"));
  c.calibration = find_calibration(args.get("calibration"), args.get("robot-id"), DeviceRole::robot, c.bus.port);
  if (!args.get("units").empty()) c.units = read_unit_mapping(args.get("units"));
  c.cameras = parse_camera_specs(args.get("cameras"));
  if (!args.get("max-step-deg").empty()) {
    std::vector<double> deg = args.get_doubles("max-step-deg");
    require(deg.size() == 1 || deg.size() == kNumJoints, "--max-step-deg: one value or six");
    for (int j = 0; j < kNumJoints; ++j) c.max_step_rad[j] = (deg.size() == 1 ? deg[0] : deg[j]) * M_PI / 180.0;
  }
  c.watchdog_timeout_s = args.get_double("watchdog");
  c.watchdog_action = parse_watchdog_action(args.get("watchdog-action"));
  return c;
}

std::unique_ptr<So100Follower> make_so100_follower(const ArgParser& args,
                                                   std::shared_ptr<KinematicModel> kinematics) {
  So100Config c = so100_config_from(args);
  // The real arm's end effector comes from the simulator's kinematic model, so heights agree in both worlds.
  if (!kinematics) kinematics = std::make_shared<ArmKinematics>(ArmKinematics::load(scene_path("pick_cube.xml")));
  c.kinematics = std::move(kinematics);
  return std::make_unique<So100Follower>(std::move(c));
}

std::unique_ptr<Robot> make_sim_robot(const ArgParser& args) {
  SimOptions o;
  o.scene = args.get("scene");
  parse_image_size(args.get("sim-size"), "sim-size", &o.image_width, &o.image_height);
  o.quality = parse_quality(args.get("sim-quality"));
  return std::make_unique<Simulator>(o);
}

std::unique_ptr<Robot> make_robot(const ArgParser& args, std::shared_ptr<KinematicModel> kinematics) {
  const std::string robot = args.get("robot");
  if (robot == "so100") return make_so100_follower(args, std::move(kinematics));
  if (robot == "sim") return make_sim_robot(args);
  throw Error("--robot: unknown robot '" + robot + "' (sim, so100)");
}

RobotFactory lane_robots(const ArgParser& args, std::shared_ptr<Robot> first) {
  return [&args, first](int lane) -> std::shared_ptr<Robot> {
    if (lane == 0) return first;
    return make_sim_robot(args);
  };
}

void add_leader_options(ArgParser& args) {
  args.required("leader", "serial port of the leader arm (moved by hand, torque off)");
  args.option("leader-id", "", "leader calibration name (teleoperators/so_leader/<id>.json); default: EEPROM");
  args.option("leader-calibration", "", "leader calibration file (overrides --leader-id)");
}

So100LeaderConfig leader_config_from(const ArgParser& args) {
  So100LeaderConfig c;
  c.bus.port = args.get("leader");
  c.bus.transport = parse_transport_kind(args.get("transport"));
  c.bus.bus.latency_allowance_s = args.get_double("bus-latency-ms") / 1e3;
  c.calibration =
      find_calibration(args.get("leader-calibration"), args.get("leader-id"), DeviceRole::teleoperator, c.bus.port);
  return c;
}

std::optional<ArmCalibration> find_calibration(const std::string& file, const std::string& id, DeviceRole role,
                                               const std::string& port) {
  if (!file.empty()) return read_calibration(file);
  if (id.empty()) return std::nullopt;
  const bool leader = role == DeviceRole::teleoperator;
  auto path = find_lerobot_calibration(role, id);
  require(path.has_value(), "no calibration named '" + id + "' in " +
                                lerobot_calibration_path(role, default_device_type(role), id).parent_path().string() +
                                " (run `vlascope calibrate --port " + port + (leader ? " --leader" : "") + " --id " +
                                id + "`)");
  std::fprintf(stderr, "so100%s: calibration %s\n", leader ? " leader" : "", path->c_str());
  return read_calibration(*path);
}

}  // namespace vlascope
