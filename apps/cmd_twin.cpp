// vlascope twin: six emulated STS3215 servos on a pseudo-terminal, so the real driver (or any Feetech
// client, LeRobot included) can connect to a "real arm" without hardware. Prints the device path first.
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include "apps/commands.h"
#include "sim/mujoco_joint_backend.h"
#include "common/cli.h"
#include "common/error.h"
#include "hardware/calibration.h"
#include "hardware/servo_twin.h"
#include "hardware/stop_signal.h"

namespace vlascope {

namespace {

std::set<int> parse_ids(const std::string& text, const std::string& option) {
  std::set<int> ids;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    long id = std::strtol(item.c_str(), &end, 10);
    require(*end == '\0' && id >= 0 && id <= 253, "--" + option + ": '" + item + "' is not a servo ID");
    ids.insert(static_cast<int>(id));
  }
  return ids;
}

std::string ids_text(const std::set<int>& ids) {
  std::string s;
  for (int id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s.empty() ? "none" : s;
}

void print_faults(const TwinFaults& f) {
  std::fprintf(stderr, "twin: faults: drop %.4f, corrupt %.4f, silent %s, slow %.1f ms, overload %s\n", f.drop_rate,
               f.corrupt_rate, ids_text(f.silent).c_str(), f.reply_delay_s * 1e3, ids_text(f.overload).c_str());
}

// The "hand" moving unpowered joints (a person posing the arm, or moving a leader).
JointVector hand_pose(const std::string& mode, const ServoMounting& m, double t, double period) {
  JointVector q = m.reference_rad;
  if (mode == "wave") {
    for (int j = 0; j < kNumJoints; ++j) {
      const double half = 0.25 * (m.stops.upper[j] - m.stops.lower[j]) / 2;
      q[j] += half * std::sin(2 * M_PI * t / (period * (1 + j / 6.0)));
    }
  } else if (mode == "sweep") {
    // One cycle per period: mid → lower stops (dwell) → upper stops (dwell) → mid, for calibration demos.
    const double phase = std::fmod(t, period) / period;
    for (int j = 0; j < kNumJoints; ++j) {
      const double lo = m.stops.lower[j], hi = m.stops.upper[j], mid = m.reference_rad[j];
      if (phase < 0.2)
        q[j] = mid + (lo - mid) * (phase / 0.2);
      else if (phase < 0.3)
        q[j] = lo;
      else if (phase < 0.6)
        q[j] = lo + (hi - lo) * ((phase - 0.3) / 0.3);
      else if (phase < 0.7)
        q[j] = hi;
      else
        q[j] = hi + (mid - hi) * ((phase - 0.7) / 0.3);
    }
  }
  return q;
}

// One command line from stdin: change faults at run time.
bool apply_command(const std::string& line, ServoBusTwin& twin) {
  std::stringstream in(line);
  std::string verb, arg;
  in >> verb >> arg;
  TwinFaults f = twin.faults();
  if (verb.empty()) return true;
  if (verb == "quit" || verb == "exit") return false;
  if (verb == "clear")
    f = {};
  else if (verb == "drop")
    f.drop_rate = std::stod(arg);
  else if (verb == "corrupt")
    f.corrupt_rate = std::stod(arg);
  else if (verb == "slow")
    f.reply_delay_s = std::stod(arg) / 1e3;
  else if (verb == "silent")
    f.silent = parse_ids(arg, "silent");
  else if (verb == "overload")
    f.overload = parse_ids(arg, "overload");
  else if (verb == "power-cycle")
    twin.power_cycle();
  else if (verb == "status") {
    const JointVector q = twin.joint_positions();
    std::fprintf(stderr, "twin: joints (rad):");
    for (double v : q) std::fprintf(stderr, " %+.3f", v);
    std::fprintf(stderr, "\n");
  } else {
    std::fprintf(stderr,
                 "twin: unknown command '%s' (drop P, corrupt P, slow MS, silent IDS, overload IDS, clear, "
                 "power-cycle, status, quit)\n",
                 verb.c_str());
    return true;
  }
  twin.set_faults(f);
  print_faults(f);
  return true;
}

}  // namespace

int run_twin(int argc, char** argv) {
  ArgParser args("vlascope twin",
                 "Emulate the six STS3215 servos of an SO-100 on a pseudo-terminal. The first line on stdout is the "
                 "device path; connect to it like to /dev/ttyACM0 (vlascope picks the termios transport for it).\n"
                 "While running, stdin takes commands that change the faults: drop 0.01, corrupt 0.01, slow 20, "
                 "silent 3, overload 2, clear, power-cycle, status, quit.");
  args.option("backend", "first-order", "joint physics: first-order (servo model) or mujoco (the simulator)");
  args.option("scene", "", "mujoco: MJCF scene (default: scenes/pick_cube.xml)");
  args.flag("calibrated", "start as an arm LeRobot has calibrated (homing offsets and limits in EEPROM)");
  args.option("write-calibration", "", "write the twin's true LeRobot calibration JSON to this file");
  args.option("link", "", "also create this symlink to the device (a stable path for scripts)");
  args.option("hand", "none", "what moves unpowered joints: none, wave (a leader being moved), sweep (calibration)");
  args.option("hand-period", "12", "seconds per cycle of the hand's motion");
  args.option("hand-delay", "0", "the hand holds the arm at mid-range this long before moving");
  args.option("hand-start", "start",
              "what the hand's delay counts from: start (the twin's start) or homing (the moment every servo's "
              "Homing_Offset has been rewritten, as LeRobot's calibration does at its first ENTER: a person starts "
              "moving the arm then, however long the host took to get there)");
  args.option("drop-rate", "0", "probability that a byte is lost (both directions)");
  args.option("corrupt-rate", "0", "probability that a byte is corrupted (both directions)");
  args.option("silent", "", "servo IDs that stop answering, e.g. 3 or 2,5");
  args.option("slow-ms", "0", "delay every reply by this many milliseconds");
  args.option("overload", "", "servo IDs that report the overload error bit");
  args.option("wire-baud", "0", "also delay replies by their time on a wire at this baud rate (0: off)");
  args.option("duration", "0", "stop after this many seconds (0: until Ctrl-C or `quit`)");
  args.option("seed", "1", "fault-injection random seed");
  if (!args.parse(argc, argv)) return 0;

  const std::string hand = args.get("hand");
  require(hand == "none" || hand == "wave" || hand == "sweep", "--hand: none, wave or sweep");
  require(args.get_double("hand-period") > 0, "--hand-period must be positive");
  const std::string hand_start = args.get("hand-start");
  require(hand_start == "start" || hand_start == "homing", "--hand-start: start or homing");

  TwinOptions options;
  options.calibrated = args.get_flag("calibrated");
  options.wire_baud = args.get_double("wire-baud");
  options.seed = static_cast<uint64_t>(args.get_int64("seed"));
  std::unique_ptr<JointBackend> backend;
  if (args.get("backend") == "first-order") {
    backend = std::make_unique<FirstOrderJointBackend>(options.mounting.reference_rad, options.mounting.stops);
  } else if (args.get("backend") == "mujoco") {
    backend = std::make_unique<MujocoJointBackend>(twin_sim_options(args.get("scene")));
  } else {
    throw Error("--backend: unknown backend '" + args.get("backend") + "' (first-order, mujoco)");
  }
  auto twin = std::make_shared<ServoBusTwin>(options, std::move(backend));
  TwinFaults faults;
  faults.drop_rate = args.get_double("drop-rate");
  faults.corrupt_rate = args.get_double("corrupt-rate");
  faults.silent = parse_ids(args.get("silent"), "silent");
  faults.reply_delay_s = args.get_double("slow-ms") / 1e3;
  faults.overload = parse_ids(args.get("overload"), "overload");
  require(faults.drop_rate >= 0 && faults.drop_rate <= 1 && faults.corrupt_rate >= 0 && faults.corrupt_rate <= 1,
          "--drop-rate/--corrupt-rate must be probabilities");
  twin->set_faults(faults);
  if (!args.get("write-calibration").empty()) {
    write_calibration(args.get("write-calibration"), twin->expected_calibration());
    std::fprintf(stderr, "twin: wrote its LeRobot calibration to %s\n", args.get("write-calibration").c_str());
  }

  PtyServoTwin pty(twin, args.get("link"));
  std::printf("%s\n", pty.device_path().c_str());
  std::fflush(stdout);
  std::fprintf(stderr, "twin: six STS3215 servos (IDs 1-6, firmware %d.%d, %s) on %s%s%s, backend %s, hand %s\n",
               options.firmware_major, options.firmware_minor, options.calibrated ? "calibrated" : "factory state",
               pty.pty_path().c_str(), args.get("link").empty() ? "" : " via ", args.get("link").c_str(),
               args.get("backend").c_str(), hand.c_str());
  print_faults(faults);

  install_stop_signal_handler();
  const double duration = args.get_double("duration");
  const auto start = std::chrono::steady_clock::now();
  // --hand-start homing: the hand's clock starts once every servo's Homing_Offset differs from its value now.
  std::vector<int> initial_offsets;
  for (int id : options.ids) initial_offsets.push_back(twin->register_value(id, feetech::reg::Homing_Offset));
  auto homed = [&] {
    for (size_t i = 0; i < options.ids.size(); ++i)
      if (twin->register_value(options.ids[i], feetech::reg::Homing_Offset) == initial_offsets[i]) return false;
    return true;
  };
  std::optional<double> hand_clock_start;
  if (hand_start == "start") hand_clock_start = 0.0;
  bool read_stdin = true;
  std::string pending;
  while (!stop_requested()) {
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (duration > 0 && t >= duration) break;
    if (hand != "none") {
      if (!hand_clock_start && homed()) {
        hand_clock_start = t;
        std::fprintf(stderr, "twin: homing offsets written at %.2f s; the hand starts %.2f s later\n", t,
                     args.get_double("hand-delay"));
      }
      const double moving = hand_clock_start ? std::max(0.0, t - *hand_clock_start - args.get_double("hand-delay")) : 0.0;
      const JointVector pose = hand_pose(hand, twin->options().mounting, moving, args.get_double("hand-period"));
      twin->with_backend([&](JointBackend& b) { b.set_hand(pose); });
    }
    if (read_stdin) {
      pollfd p{STDIN_FILENO, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        char buffer[256];
        ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (n <= 0) {
          read_stdin = false;  // no more commands (stdin closed or redirected from /dev/null)
        } else {
          pending.append(buffer, static_cast<size_t>(n));
          size_t nl;
          while ((nl = pending.find('\n')) != std::string::npos) {
            const std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            try {
              if (!apply_command(line, *twin)) return 0;
            } catch (const std::exception& e) {
              std::fprintf(stderr, "twin: bad command '%s': %s\n", line.c_str(), e.what());
            }
          }
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  const TwinStats s = twin->stats();
  std::fprintf(stderr, "twin: served %llu packets (%llu sync reads, %llu sync writes), %llu bad\n",
               static_cast<unsigned long long>(s.packets), static_cast<unsigned long long>(s.sync_reads),
               static_cast<unsigned long long>(s.sync_writes), static_cast<unsigned long long>(s.bad_packets));
  return 0;
}

}  // namespace vlascope
