#include "interp/rollout.h"

#include <algorithm>
#include <chrono>
#include <deque>

#include "common/error.h"
#include "common/lane_pool.h"

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

namespace {

using Clock = std::chrono::steady_clock;

// One lane: a robot and the episode it is running. The control loop of an episode, split at the policy call:
//   observe()  → the step's state and task state; frames only if the queue is empty (or every step is watched)
//   (policy)   → the lanes whose queue ran out get their chunk in one batched call
//   act()      → pop the next action, show the observer, send the targets
struct Lane {
  std::shared_ptr<Robot> robot;
  int episode = -1;  // -1: idle
  RolloutResult result;
  RolloutObserver observer;
  bool frames_every_step = false;
  int max_steps = 0, step_index = 0;
  int64_t chunk = 0;  // noise of the next chunk: (seed, chunk)
  std::deque<std::vector<float>> queue;
  Observation observation;
  RolloutStep step;
  PolicyInput input;
  bool wants_chunk = false, ended = false;
  Clock::time_point wall0;
};

// Start of a tick: read the robot. Ends the episode if it ran out of time or held its success long enough.
void observe_step(Lane& lane, const RolloutOptions& options) {
  RolloutResult& r = lane.result;
  if (lane.step_index >= lane.max_steps) {
    lane.ended = true;
    return;
  }
  const bool frames = lane.frames_every_step || lane.queue.empty();
  lane.observation = lane.robot->observe(frames ? CameraFrames::kRead : CameraFrames::kSkip);
  const Observation& obs = lane.observation;
  RolloutStep& step = lane.step;
  step = RolloutStep{};
  step.time = obs.timestamp;
  step.joints = obs.joint_positions;
  step.end_effector = obs.end_effector;
  const JointVector state = to_lerobot(obs.joint_positions, options.units);
  for (int j = 0; j < kNumJoints; ++j) step.state[j] = static_cast<float>(state[j]);
  step.task = lane.robot->task_state();
  if (step.task) {
    r.success_known = true;
    if (lane.step_index == 0) r.cube_start_z = step.task->object.position[2];
    r.max_cube_lift = std::max(r.max_cube_lift, step.task->object.position[2] - r.cube_start_z);
    if (step.task->success && !r.success) {
      r.success = true;
      r.success_time = step.time;
    }
  }
  if (r.success && options.stop_after_success_s >= 0 && step.time - r.success_time > options.stop_after_success_s) {
    lane.ended = true;
    return;
  }
  lane.wants_chunk = lane.queue.empty();
  if (lane.wants_chunk) {
    lane.input.images = obs.images;
    lane.input.state.assign(step.state.begin(), step.state.end());
    lane.input.task = options.task;
  }
}

// End of a tick: the next action goes out.
void act_step(Lane& lane, const RolloutOptions& options) {
  require(!lane.queue.empty(), "rollout: no action for episode " + std::to_string(lane.episode));
  const std::vector<float> action = std::move(lane.queue.front());
  lane.queue.pop_front();
  require(action.size() == kNumJoints, "rollout: the policy answers " + std::to_string(action.size()) +
                                           " action values; the SO-100 has " + std::to_string(kNumJoints));
  RolloutStep& step = lane.step;
  JointVector lerobot{};
  for (int j = 0; j < kNumJoints; ++j) {
    step.action[j] = action[j];
    lerobot[j] = action[j];
  }
  step.target = from_lerobot(lerobot, options.units);
  step.sent = step.target;  // until the robot reports what it sent (an episode its observer ends sends nothing)
  const bool go_on = !lane.observer || lane.observer(lane.step_index, lane.observation, step);
  lane.result.steps.push_back(step);
  ++lane.step_index;
  if (!go_on) {
    lane.ended = true;
    return;
  }
  lane.result.steps.back().sent = lane.robot->act(step.target);
}

void finish_episode(Lane& lane) {
  RolloutResult& r = lane.result;
  r.seconds = r.steps.empty() ? 0 : r.steps.back().time;
  r.wall_seconds = std::chrono::duration<double>(Clock::now() - lane.wall0).count();
  lane.robot->stop();
}

}  // namespace

void require_policy_cameras(const Policy& policy, const Robot& robot) {
  const std::vector<std::string> have = robot.camera_names();
  std::string listed;
  for (const std::string& name : have) listed += (listed.empty() ? "" : ", ") + name;
  for (const std::string& camera : policy.cameras())
    require(std::find(have.begin(), have.end(), camera) != have.end(),
            "the policy reads camera '" + camera + "' but the robot (" + robot.name() + ") has [" + listed +
                "]; map the checkpoint's cameras to these with --camera-map");
}

std::vector<RolloutResult> run_rollouts(const RobotFactory& make_robot, Policy& policy,
                                        const std::vector<uint64_t>& seeds, const RolloutOptions& options,
                                        const BatchOptions& batch, const RolloutCallbacks& callbacks) {
  require(batch.lanes >= 1, "rollouts: --batch must be at least 1, got " + std::to_string(batch.lanes));
  require(batch.threads >= 1, "rollouts: simulation threads must be at least 1, got " + std::to_string(batch.threads));
  const int episodes = static_cast<int>(seeds.size());
  const int lanes = std::max(1, std::min(batch.lanes, episodes));
  LanePool pool(std::min(batch.threads, lanes));
  std::vector<Lane> lane(static_cast<size_t>(lanes));
  std::vector<RolloutResult> results(static_cast<size_t>(episodes));
  const int n_action_steps = policy.n_action_steps();

  // Robots are made, and destroyed, on their lane's thread. Every exit stops the robots of running episodes.
  struct Teardown {
    LanePool& pool;
    std::vector<Lane>& lane;
    ~Teardown() {
      try {
        pool.run(static_cast<int>(lane.size()), [&](int l) {
          Lane& x = lane[static_cast<size_t>(l)];
          if (x.robot && x.episode >= 0) x.robot->stop();
          x.robot.reset();
        });
      } catch (...) {
      }
    }
  } teardown{pool, lane};
  pool.run(lanes, [&](int l) {
    lane[static_cast<size_t>(l)].robot = make_robot(l);
    require(lane[static_cast<size_t>(l)].robot != nullptr, "rollouts: no robot for lane " + std::to_string(l));
  });
  require_policy_cameras(policy, *lane[0].robot);

  int next_episode = 0, running = 0;
  auto start_episode = [&](Lane& x) {  // calling thread; the reset happens on the lane's thread
    x.episode = next_episode++;
    x.result = RolloutResult{};
    x.result.seed = seeds[static_cast<size_t>(x.episode)];
    x.observer = callbacks.start ? callbacks.start(x.episode) : RolloutObserver{};
    x.frames_every_step = options.frames_every_step && x.observer;
    x.step_index = 0;
    x.chunk = 0;
    x.queue.clear();
    x.ended = false;
    ++running;
  };
  std::vector<const PolicyInput*> inputs;
  std::vector<Policy::NoiseId> noise;
  std::vector<Lane*> asking;
  // Episodes start only at ticks that are multiples of n_action_steps, so every lane's queue runs out at the same
  // ticks and each policy call batches all running lanes. (Starting a lane the moment its episode ended would spread
  // the lanes' chunk boundaries over the period, and the calls would shrink towards batch 1.)
  for (int64_t tick = 0; running > 0 || next_episode < episodes; ++tick) {
    if (tick % n_action_steps == 0 && next_episode < episodes) {
      std::vector<int> started;
      for (int l = 0; l < lanes; ++l)
        if (lane[static_cast<size_t>(l)].episode < 0 && next_episode < episodes) {
          start_episode(lane[static_cast<size_t>(l)]);
          started.push_back(l);
        }
      if (!started.empty())
        pool.run(lanes, [&](int l) {
          Lane& x = lane[static_cast<size_t>(l)];
          if (std::find(started.begin(), started.end(), l) == started.end()) return;
          x.wall0 = Clock::now();
          x.robot->reset(x.result.seed);
          x.max_steps = static_cast<int>(options.max_seconds * x.robot->control_hz());
        });
    }
    pool.run(lanes, [&](int l) {
      Lane& x = lane[static_cast<size_t>(l)];
      if (x.episode >= 0) observe_step(x, options);
    });

    inputs.clear();
    noise.clear();
    asking.clear();
    for (Lane& x : lane)
      if (x.episode >= 0 && !x.ended && x.wants_chunk) {
        inputs.push_back(&x.input);
        noise.push_back({x.result.seed, x.chunk++});
        asking.push_back(&x);
      }
    if (!asking.empty()) {
      if (callbacks.before_call) {
        std::vector<RolloutCallbacks::CallRow> rows;
        for (size_t b = 0; b < asking.size(); ++b)
          rows.push_back({asking[b]->episode, &asking[b]->result.steps, &asking[b]->step, 0, inputs[b], noise[b]});
        callbacks.before_call(rows);
        for (size_t b = 0; b < asking.size(); ++b) asking[b]->step.steer_alpha = rows[b].steer_alpha;
      }
      const auto chunks = policy.predict_chunks(inputs, noise);
      const double seconds = policy.last_chunk_seconds();
      for (size_t b = 0; b < asking.size(); ++b) {
        Lane& x = *asking[b];
        require(static_cast<int>(chunks[b].size()) >= n_action_steps, "rollout: the chunk is shorter than n_action_steps");
        for (int t = 0; t < n_action_steps; ++t) x.queue.push_back(chunks[b][static_cast<size_t>(t)]);
        x.step.model_ran = true;
        x.step.model_seconds = seconds;  // the batched call's time: every episode in it waited that long
        x.result.model_calls += 1;
        x.result.model_seconds += seconds;
      }
    }

    pool.run(lanes, [&](int l) {
      Lane& x = lane[static_cast<size_t>(l)];
      if (x.episode >= 0 && !x.ended) act_step(x, options);
      if (x.episode >= 0 && x.ended) finish_episode(x);
    });

    for (Lane& x : lane) {
      if (x.episode < 0 || !x.ended) continue;
      const int done = x.episode;
      results[static_cast<size_t>(done)] = std::move(x.result);
      --running;
      x.episode = -1;
      if (callbacks.done) callbacks.done(done, results[static_cast<size_t>(done)]);
    }
  }
  return results;
}

RolloutResult run_rollout(Robot& robot, Policy& policy, uint64_t seed, const RolloutOptions& options,
                          const RolloutObserver& observer) {
  // The caller's robot, not owned: lane 0 runs on the calling thread.
  const std::shared_ptr<Robot> borrowed(std::shared_ptr<Robot>{}, &robot);
  RolloutCallbacks callbacks;
  if (observer) callbacks.start = [&](int) { return observer; };
  policy.reset(seed);
  return run_rollouts([&](int) { return borrowed; }, policy, {seed}, options, {}, callbacks).front();
}

}  // namespace vlascope
