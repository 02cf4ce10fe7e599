// LeRobot's calibration procedure for an SO-100 arm (so100.md §2.9), driven through a small UI interface
// so that `vlascope calibrate` talks to a person on a terminal and the tests talk to a script moving the
// servo-bus twin's joints:
//
//   1. torque off; the user puts every joint in the middle of its range and confirms;
//   2. Homing_Offset := 0 and limits 0…4095, then Homing_Offset := present − 2047, so mid-range reads 2047;
//   3. the user moves every joint except wrist_roll through its whole range while min/max are recorded,
//      and confirms; wrist_roll gets 0…4095;
//   4. Min/Max_Position_Limit := the recorded range.
// The result is LeRobot's calibration (drive_mode 0), already written to the servos; save it with
// write_calibration() (calibration.h).
#pragma once

#include <array>
#include <cstdio>
#include <string>

#include "hardware/calibration.h"
#include "hardware/so100_arm.h"

namespace vlascope {

class CalibrationUi {
 public:
  virtual ~CalibrationUi() = default;
  virtual void message(const std::string& text) = 0;
  // Blocks until the user confirms (ENTER).
  virtual void wait_for_enter(const std::string& prompt) = 0;
  // Called every poll period during the range sweep with the live values; true once the user confirmed.
  virtual bool sweep_done(const TickVector& mins, const TickVector& positions, const TickVector& maxes) = 0;
};

// A terminal: prompts on `out`, ENTER read from stdin (a tty or a pipe/file; lines are ENTER presses).
// End of input counts as ENTER, so `printf '\n\n' | vlascope calibrate …` runs unattended.
class TerminalCalibrationUi : public CalibrationUi {
 public:
  explicit TerminalCalibrationUi(std::FILE* out = stdout) : out_(out) {}
  void message(const std::string& text) override;
  void wait_for_enter(const std::string& prompt) override;
  bool sweep_done(const TickVector& mins, const TickVector& positions, const TickVector& maxes) override;

 private:
  bool enter_pressed(double timeout_s);
  std::FILE* out_;
  bool table_drawn_ = false;
  bool eof_ = false;
};

struct CalibrationOptions {
  double poll_period_s = 0.02;
  double min_sweep_s = 0;  // keep recording at least this long, even if ENTER came earlier (piped input)
  std::array<bool, kNumJoints> full_turn{false, false, false, false, true, false};  // LeRobot: wrist_roll
};

ArmCalibration calibrate_arm(So100Arm& arm, CalibrationUi& ui, const CalibrationOptions& options = {});

}  // namespace vlascope
