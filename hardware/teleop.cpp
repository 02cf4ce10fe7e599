#include "hardware/teleop.h"

#include <chrono>
#include <cmath>

#include "hardware/stop_signal.h"
#include "hardware/units.h"

namespace vlascope {

TeleopStats run_teleop(So100Leader& leader, So100Follower& follower, const TeleopOptions& options) {
  TeleopStats stats;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (stop_requested() || (options.duration_s > 0 && t >= options.duration_s)) break;
    TeleopTick tick;
    tick.index = stats.ticks;
    tick.time = t;
    tick.leader = leader.read_lerobot();
    Observation observation;
    if (options.observe) {
      observation = follower.observe();
      tick.follower = to_lerobot(observation.joint_positions, follower.config().units);
      tick.observation = &observation;
    } else {
      tick.follower = follower.read_lerobot();
    }
    for (int j = 0; j < kNumJoints; ++j)
      stats.max_tracking_error = std::max(stats.max_tracking_error, std::abs(tick.leader[j] - tick.follower[j]));
    follower.act_lerobot(tick.leader);
    ++stats.ticks;
    if (options.on_tick && !options.on_tick(tick)) break;
  }
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace vlascope
