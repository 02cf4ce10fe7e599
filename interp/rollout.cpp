#include "interp/rollout.h"

#include <chrono>

#include "common/error.h"

namespace vlascope {

EeTrajectory RolloutResult::ee_trajectory() const {
  EeTrajectory t;
  for (const RolloutStep& s : steps) {
    if (!t.time.empty() && s.time <= t.time.back()) continue;  // strictly increasing
    t.time.push_back(s.time);
    t.ee.push_back(s.end_effector.position);
    t.gripper.push_back(s.state[kGripper]);
  }
  return t;
}

RolloutResult run_rollout(Robot& robot, Policy& policy, uint64_t seed, const RolloutOptions& options,
                          const RolloutObserver& observer) {
  struct StopGuard {
    Robot& robot;
    ~StopGuard() { robot.stop(); }
  } guard{robot};
  const auto wall0 = std::chrono::steady_clock::now();
  RolloutResult r;
  r.seed = seed;
  robot.reset(seed);
  policy.reset(seed);
  const int max_steps = static_cast<int>(options.max_seconds * robot.control_hz());
  for (int i = 0; i < max_steps; ++i) {
    Observation obs = robot.observe();
    RolloutStep step;
    step.time = obs.timestamp;
    step.joints = obs.joint_positions;
    step.end_effector = obs.end_effector;
    const JointVector state = to_lerobot(obs.joint_positions, options.units);
    for (int j = 0; j < kNumJoints; ++j) step.state[j] = static_cast<float>(state[j]);
    step.task = robot.task_state();
    if (step.task) {
      r.success_known = true;
      if (i == 0) r.cube_start_z = step.task->object.position[2];
      r.max_cube_lift = std::max(r.max_cube_lift, step.task->object.position[2] - r.cube_start_z);
      if (step.task->success && !r.success) {
        r.success = true;
        r.success_time = step.time;
      }
    }
    if (r.success && options.stop_after_success_s >= 0 && step.time - r.success_time > options.stop_after_success_s)
      break;

    PolicyInput in;
    in.images = obs.images;
    in.state.assign(step.state.begin(), step.state.end());
    in.task = options.task;
    const std::vector<float> action = policy.select_action(in);
    require(action.size() == kNumJoints, "rollout: the policy answers " + std::to_string(action.size()) +
                                             " action values; the SO-100 has " + std::to_string(kNumJoints));
    step.model_ran = policy.ran_model_last_call();
    if (step.model_ran) {
      step.model_seconds = policy.last_chunk_seconds();
      r.model_calls += 1;
      r.model_seconds += step.model_seconds;
    }
    JointVector lerobot{};
    for (int j = 0; j < kNumJoints; ++j) {
      step.action[j] = action[j];
      lerobot[j] = action[j];
    }
    step.target = from_lerobot(lerobot, options.units);
    const bool go_on = !observer || observer(i, obs, step);
    r.steps.push_back(step);
    if (!go_on) break;
    robot.act(step.target);
  }
  r.seconds = r.steps.empty() ? 0 : r.steps.back().time;
  r.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  return r;
}

}  // namespace vlascope
