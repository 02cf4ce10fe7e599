// The lift segment of a pick-up episode, found from what both the simulator and the real arm record: the
// end-effector trajectory and the gripper opening. No simulator ground truth (contacts, object pose) is
// used, so the steering experiment measures height and speed the same way in sim and on the real arm.
//
//   grasp   the gripper closes (its opening falls by ≥ min_close_drop from the level it had been opened to)
//           and stays closed for ≥ min_hold_s. The grasp moment is when 90% of that drop is done.
//   lift    after the grasp, the EE rises by ≥ min_lift_rise above its height at the grasp moment. The lift
//           starts at the last sample before that where the EE was still within start_band of the grasp
//           height. The rise then plateaus (the height gains < plateau_rise over plateau_window_s), or the
//           gripper reopens, or the episode ends — whichever comes first; the height there is the top, and
//           the lift ends when the EE first reaches end_fraction of the way from the grasp height to the top.
//           Cutting at a fixed fraction of the rise (rather than where the speed falls below a threshold)
//           keeps the segment the same part of the motion for slow and fast lifts, so their speeds compare.
//
// Re-grasps: every closing is recorded as a GraspAttempt. The chosen grasp is the first attempt that held
// and was followed by a lift; if none lifted, the last attempt that held (status kGraspNoLift).
//
// Noise: the gripper is smoothed with a centred moving median over smooth_window_s; positions with the same
// median (against spikes) and then a centred moving average over average_window_s (against jitter). Events
// and speeds use the smoothed positions: the per-step displacement of raw samples grows with the noise, not
// with the motion (1 mm of jitter per step is 3 cm/s at 30 Hz). Height metrics use the raw samples.
#pragma once

#include <array>
#include <string>
#include <vector>

namespace vlascope {

struct EeTrajectory {
  std::vector<double> time;               // seconds, strictly increasing
  std::vector<std::array<double, 3>> ee;  // end-effector position, metres, world frame (Z up)
  std::vector<double> gripper;            // opening in LeRobot units: 0 = closed … 100 = open
};

struct LiftOptions {
  double smooth_window_s = 0.1;    // moving-median window (centred) for gripper and positions
  double average_window_s = 0.2;   // moving-average window (centred) applied to positions after the median
  double min_close_drop = 15;      // gripper units the opening must fall to count as closing
  double reopen_rise = 12;         // gripper units above the closed level that count as reopening
  double min_hold_s = 0.4;         // a closing must hold this long to be a grasp
  double min_lift_rise = 0.02;     // metres above the grasp height that count as a lift
  double start_band = 0.004;       // metres: the EE is "still at grasp height" within this band
  double plateau_rise = 0.004;     // metres: rising less than this …
  double plateau_window_s = 0.5;   // … over this long is a plateau (speed floor plateau_rise/window)
  double end_fraction = 0.95;      // the lift ends at this fraction of the rise to the top
  double empty_closed_below = -1;  // closings whose closed opening is below this are empty grasps
                                   // (the jaws met: no object); −1 = don't judge
};

enum class LiftStatus { kNoGrasp, kGraspNoLift, kLifted };
const char* lift_status_name(LiftStatus status);

struct GraspAttempt {
  int close_index = -1;       // grasp moment (90% of the drop done)
  int reopen_index = -1;      // first sample reopened, or −1 if it stays closed to the end
  double closed_opening = 0;  // median gripper opening while closed
  double hold_s = 0;          // how long it stayed closed
  bool held = false;          // hold_s ≥ min_hold_s and not an empty grasp
  bool empty = false;         // closed below empty_closed_below
  bool lifted = false;        // the EE rose ≥ min_lift_rise while it was closed
};

struct LiftSegment {
  LiftStatus status = LiftStatus::kNoGrasp;
  std::vector<GraspAttempt> attempts;
  int chosen_attempt = -1;

  int grasp_index = -1;       // grasp moment
  int lift_start_index = -1;  // valid when status == kLifted
  int lift_end_index = -1;    // inclusive
  double grasp_time = 0, lift_start_time = 0, lift_end_time = 0;
  double grasp_height = 0;  // smoothed EE z at the grasp moment (metres)

  // Metrics over [lift_start, lift_end] (kLifted only; zero otherwise).
  double duration_s = 0;
  int steps = 0;                                           // samples in the segment
  double mean_height = 0, max_height = 0, p95_height = 0;  // absolute z (metres)
  double mean_rise = 0, max_rise = 0;                      // z − grasp_height (metres)
  double top_height = 0, top_rise = 0;  // smoothed height where the rise plateaued (absolute, − grasp_height)
  double mean_step_displacement = 0;    // metres per sample, smoothed positions
  double mean_speed = 0;                // path length / duration, m/s, smoothed positions
  double mean_vertical_speed = 0;       // (z_end − z_start) / duration, m/s, smoothed

  // Whole episode.
  int episode_steps = 0;
  double episode_duration_s = 0;

  std::string describe() const;  // one line, for logs
};

// Throws Error when the arrays differ in length, are empty, hold NaN, or time does not increase.
LiftSegment find_lift_segment(const EeTrajectory& trajectory, const LiftOptions& options = {});

// Centred moving median / mean over a time window (samples within ±window/2 of each sample's time).
std::vector<double> moving_median(const std::vector<double>& time, const std::vector<double>& values, double window_s);
std::vector<double> moving_average(const std::vector<double>& time, const std::vector<double>& values, double window_s);

}  // namespace vlascope
