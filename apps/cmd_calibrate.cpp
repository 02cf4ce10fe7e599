// vlascope calibrate: LeRobot's calibration procedure for an SO-100 follower or leader, saved where LeRobot
// looks for it, in LeRobot's format.
#include <cstdio>
#include <filesystem>

#include "apps/commands.h"
#include "common/cli.h"
#include "common/error.h"
#include "hardware/calibrate.h"
#include "hardware/calibration.h"
#include "hardware/so100_arm.h"
#include "hardware/stop_signal.h"

namespace vlascope {

int run_calibrate(int argc, char** argv) {
  ArgParser args("vlascope calibrate",
                 "Calibrate an SO-100 arm the way LeRobot does: torque off, you pose the arm at mid-range and press "
                 "ENTER, then move every joint (except wrist_roll) through its full range and press ENTER. Homing "
                 "offsets and limits go to the servos' EEPROM and to a LeRobot calibration file, usable by "
                 "LeRobot and by vlascope. Unattended: pipe the ENTERs, e.g. printf '\\n\\n' | vlascope calibrate "
                 "--port … --min-sweep-seconds 15.");
  args.required("port", "serial port of the arm (/dev/ttyACM0, or a `vlascope twin` device)");
  args.option("id", "so100", "calibration name: <LeRobot calibration dir>/robots/so_follower/<id>.json");
  args.flag("leader", "a leader arm: saved under teleoperators/so_leader/ instead");
  args.option("device-type", "",
              "LeRobot device directory (so_follower / so_leader; so100_follower for LeRobot ≤ 0.4.2)");
  args.option("out", "", "write the calibration to this file instead of LeRobot's directory");
  args.option("min-sweep-seconds", "0", "record the range sweep for at least this long");
  args.option("transport", "auto", "auto, libserialport or posix");
  args.option("baud", "1000000", "bus baud rate");
  args.option("bus-latency-ms", "20", "reply allowance beyond the wire time (USB adapter latency; FTDI needs ~20)");
  if (!args.parse(argc, argv)) return 0;

  const DeviceRole role = args.get_flag("leader") ? DeviceRole::teleoperator : DeviceRole::robot;
  const std::string device_type = args.get("device-type").empty() ? default_device_type(role) : args.get("device-type");
  const std::filesystem::path out = args.get("out").empty()
                                        ? lerobot_calibration_path(role, device_type, args.get("id"))
                                        : std::filesystem::path(args.get("out"));

  So100BusConfig bus;
  bus.port = args.get("port");
  bus.transport = parse_transport_kind(args.get("transport"));
  bus.baud_rate = args.get_int("baud");
  bus.bus.latency_allowance_s = args.get_double("bus-latency-ms") / 1e3;
  So100Arm arm(bus);
  arm.handshake();
  std::printf("Found six STS3215 servos on %s (firmware %s).\n", arm.port().c_str(), arm.firmware().text().c_str());

  install_stop_signal_handler();
  TerminalCalibrationUi ui;
  CalibrationOptions options;
  options.min_sweep_s = args.get_double("min-sweep-seconds");
  const ArmCalibration cal = calibrate_arm(arm, ui, options);

  if (std::filesystem::exists(out)) std::printf("Replacing %s\n", out.c_str());
  write_calibration(out, cal);
  std::printf("Calibration saved to %s\n", out.c_str());
  for (int j = 0; j < kNumJoints; ++j)
    std::printf("  %-14s id %d  homing_offset %5d  range %4d … %4d\n", kJointNames[j], cal[j].id, cal[j].homing_offset,
                cal[j].range_min, cal[j].range_max);
  return 0;
}

}  // namespace vlascope
