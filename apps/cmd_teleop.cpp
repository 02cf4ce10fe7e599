// vlascope teleop: the follower SO-100 copies the leader (torque off, moved by hand), through the follower's
// safety chain. Ctrl-C stops it with the follower's torque off.
#include <cmath>
#include <cstdio>

#include "apps/commands.h"
#include "apps/robot_factory.h"
#include "common/cli.h"
#include "common/error.h"
#include "hardware/calibration.h"
#include "hardware/so100_follower.h"
#include "hardware/so100_leader.h"
#include "hardware/stop_signal.h"
#include "hardware/teleop.h"

namespace vlascope {

int run_teleop(int argc, char** argv) {
  ArgParser args("vlascope teleop",
                 "Teleoperate an SO-100 follower with a leader arm: the leader's torque is off, the follower copies "
                 "its joints (LeRobot units) every tick, within the follower's joint limits and step limit.");
  add_leader_options(args);
  args.required("follower", "serial port of the follower arm");
  args.option("follower-id", "", "follower calibration name (robots/so_follower/<id>.json); default: EEPROM");
  args.option("follower-calibration", "", "follower calibration file (overrides --follower-id)");
  args.option("hz", "30", "control rate");
  args.option("duration", "0", "seconds (0: until Ctrl-C)");
  args.option("max-step-deg", "", "follower step limit per tick in degrees (one value or six)");
  args.option("transport", "auto", "auto, libserialport or posix");
  args.option("bus-latency-ms", "20", "reply allowance beyond the wire time (USB adapter latency)");
  args.flag("quiet", "do not print the joint table");
  if (!args.parse(argc, argv)) return 0;

  install_stop_signal_handler();
  const So100LeaderConfig lc = leader_config_from(args);
  So100Leader leader(lc);

  So100Config fc;
  fc.bus.port = args.get("follower");
  fc.bus.transport = lc.bus.transport;
  fc.bus.bus = lc.bus.bus;
  fc.calibration =
      find_calibration(args.get("follower-calibration"), args.get("follower-id"), DeviceRole::robot, fc.bus.port);
  fc.control_hz = args.get_double("hz");
  if (!args.get("max-step-deg").empty()) {
    std::vector<double> deg = args.get_doubles("max-step-deg");
    require(deg.size() == 1 || deg.size() == kNumJoints, "--max-step-deg: one value or six");
    for (int j = 0; j < kNumJoints; ++j) fc.max_step_rad[j] = (deg.size() == 1 ? deg[0] : deg[j]) * M_PI / 180.0;
  }
  So100Follower follower(fc);

  std::fprintf(stderr, "teleop: leader %s → follower %s at %.0f Hz; Ctrl-C stops (follower torque off)\n",
               leader.arm().port().c_str(), follower.port().c_str(), fc.control_hz);
  const bool print = !args.get_flag("quiet");
  TeleopOptions options;
  options.duration_s = args.get_double("duration");
  options.on_tick = [&](const TeleopTick& t) {
    if (print && t.index % 10 == 0) {
      std::printf("%7.2fs ", t.time);
      for (int j = 0; j < kNumJoints; ++j) std::printf(" %s %+7.2f", kJointNames[j], t.leader[j]);
      std::printf("\n");
      std::fflush(stdout);
    }
    return true;
  };
  TeleopStats stats;
  try {
    stats = run_teleop(leader, follower, options);
  } catch (const Error& e) {
    if (!stop_requested()) throw;
  }
  follower.stop();
  const SafetyCounters c = follower.safety_counters();
  std::fprintf(stderr,
               "teleop: %d ticks in %.1f s; largest leader-follower gap %.1f; %llu step-limited and %llu "
               "limit-clamped joint targets; %llu overruns\n",
               stats.ticks, stats.seconds, stats.max_tracking_error, static_cast<unsigned long long>(c.step_clamps),
               static_cast<unsigned long long>(c.limit_clamps), static_cast<unsigned long long>(c.overruns));
  if (stop_requested()) std::fprintf(stderr, "teleop: stopped by Ctrl-C; follower torque is off\n");
  return 0;
}

}  // namespace vlascope
