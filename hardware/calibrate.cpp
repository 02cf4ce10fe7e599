#include "hardware/calibrate.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/error.h"
#include "hardware/stop_signal.h"

namespace vlascope {

using namespace feetech;

void TerminalCalibrationUi::message(const std::string& text) {
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

bool TerminalCalibrationUi::enter_pressed(double timeout_s) {
  if (eof_) return true;
  pollfd p{STDIN_FILENO, POLLIN, 0};
  const int rc = ::poll(&p, 1, static_cast<int>(timeout_s * 1000));
  if (rc <= 0) return false;
  if (!(p.revents & (POLLIN | POLLHUP))) return false;
  char buffer[256];
  for (;;) {  // consume one line
    ssize_t n = ::read(STDIN_FILENO, buffer, 1);
    if (n <= 0) {
      eof_ = true;
      return true;
    }
    if (buffer[0] == '\n') return true;
  }
}

void TerminalCalibrationUi::wait_for_enter(const std::string& prompt) {
  std::fprintf(out_, "%s", prompt.c_str());
  std::fflush(out_);
  while (!enter_pressed(0.2))
    if (stop_requested()) throw Error("calibration interrupted (Ctrl-C)");
  std::fprintf(out_, "\n");
}

bool TerminalCalibrationUi::sweep_done(const TickVector& mins, const TickVector& positions, const TickVector& maxes) {
  const bool tty = isatty(fileno(out_));
  if (table_drawn_ && tty) std::fprintf(out_, "\x1b[%dA", kNumJoints + 1);  // redraw in place
  if (tty || !table_drawn_) {
    std::fprintf(out_, "%-15s | %6s | %6s | %6s\n", "NAME", "MIN", "POS", "MAX");
    for (int j = 0; j < kNumJoints; ++j)
      std::fprintf(out_, "%-15s | %6d | %6d | %6d\n", kJointNames[j], mins[j], positions[j], maxes[j]);
    std::fflush(out_);
    table_drawn_ = true;
  }
  if (stop_requested()) throw Error("calibration interrupted (Ctrl-C)");
  return enter_pressed(0);
}

ArmCalibration calibrate_arm(So100Arm& arm, CalibrationUi& ui, const CalibrationOptions& options) {
  FeetechBus& bus = arm.bus();
  const auto& ids = arm.ids();
  arm.disable_torque();

  ui.message("Calibrating the SO-100 on " + arm.port() +
             " (LeRobot's procedure). Torque is off: the arm moves freely.");
  ui.wait_for_enter("Move the arm to the MIDDLE of its range of motion (every joint half-way), then press ENTER...");

  for (int id : ids) {
    bus.write_register(id, reg::Homing_Offset, 0);
    bus.write_register(id, reg::Min_Position_Limit, 0);
    bus.write_register(id, reg::Max_Position_Limit, kMaxTick);
  }
  const TickVector mid = arm.read_positions();
  ArmCalibration cal{};
  for (int j = 0; j < kNumJoints; ++j) {
    const int offset = mid[j] - kMaxTick / 2;
    require(std::abs(offset) <= 2047, "calibration on " + arm.port() + ": " + arm.label(j) + " reads " +
                                          std::to_string(mid[j]) +
                                          " at mid-range, too close to the end of the "
                                          "encoder turn (the horn is mounted a half-turn off)");
    bus.write_register(ids[j], reg::Homing_Offset, offset);
    cal[j].id = ids[j];
    cal[j].drive_mode = 0;
    cal[j].homing_offset = offset;
  }

  ui.message(
      "Move every joint except wrist_roll through its ENTIRE range of motion. Recording positions; press "
      "ENTER when done.");
  TickVector mins = arm.read_positions(), maxes = mins, now = mins, before = mins;
  const auto start = std::chrono::steady_clock::now();
  bool done = false;
  while (!done) {
    now = arm.read_positions();
    for (int j = 0; j < kNumJoints; ++j) {
      // Mid-range reads 2047, so a joint posed half-way can move ±2047 ticks without leaving the encoder's
      // turn. Leaving it (a reading outside 0…4095, or a jump across the wrap) means the pose was not
      // mid-range: the limits would be garbage, so stop here.
      const bool outside = now[j] < 0 || now[j] > kMaxTick;
      const bool wrapped = std::abs(now[j] - before[j]) > kTicksPerTurn / 2;
      if (!options.full_turn[j] && (outside || wrapped))
        throw Error("calibration on " + arm.port() + ": " + arm.label(j) + " left the encoder's turn during the sweep " +
                    "(read " + std::to_string(now[j]) + " after " + std::to_string(before[j]) +
                    "): it was not at mid-range when ENTER was pressed. Run again and pose every joint half-way.");
      mins[j] = std::min(mins[j], now[j]);
      maxes[j] = std::max(maxes[j], now[j]);
    }
    before = now;
    const bool confirmed = ui.sweep_done(mins, now, maxes);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    done = confirmed && elapsed >= options.min_sweep_s;
    if (!done) std::this_thread::sleep_for(std::chrono::duration<double>(options.poll_period_s));
  }

  std::string still;
  for (int j = 0; j < kNumJoints; ++j) {
    if (options.full_turn[j]) {
      cal[j].range_min = 0;
      cal[j].range_max = kMaxTick;
    } else {
      cal[j].range_min = mins[j];
      cal[j].range_max = maxes[j];
      if (mins[j] == maxes[j]) still += (still.empty() ? "" : ", ") + std::string(kJointNames[j]);
    }
  }
  require(still.empty(), "calibration on " + arm.port() + ": these joints did not move during the sweep: " + still +
                             " (min == max); nothing was written, run it again");
  for (int j = 0; j < kNumJoints; ++j) {
    bus.write_register(ids[j], reg::Min_Position_Limit, cal[j].range_min);
    bus.write_register(ids[j], reg::Max_Position_Limit, cal[j].range_max);
  }
  ui.message("Calibration written to the servos.");
  return cal;
}

}  // namespace vlascope
