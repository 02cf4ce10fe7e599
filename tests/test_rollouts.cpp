// Closed-loop rollouts of a small random policy in the simulator: camera frames are rendered only when read, batched
// lock-step episodes reproduce themselves and agree with one-at-a-time episodes up to rounding, and a lane pool keeps
// each lane on its thread.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/error.h"
#include "common/lane_pool.h"
#include "interp/neuron_set.h"
#include "interp/capture.h"
#include "interp/closed_loop.h"
#include "interp/rollout.h"
#include "interp/rollout_io.h"
#include "interp/steer_experiment.h"
#include "policy/policy.h"
#include "sim/simulator.h"
#include "tests/tiny_policy.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

TEST(LanePool, EveryLaneRunsOnceAlwaysOnTheSameThreadAndErrorsComeBack) {
  LanePool pool(3);
  std::mutex m;
  std::map<int, std::set<std::thread::id>> threads_of_lane;
  std::vector<int> runs(7, 0);
  for (int round = 0; round < 20; ++round)
    pool.run(7, [&](int lane) {
      std::lock_guard<std::mutex> lock(m);
      threads_of_lane[lane].insert(std::this_thread::get_id());
      ++runs[static_cast<size_t>(lane)];
    });
  for (int lane = 0; lane < 7; ++lane) {
    EXPECT_EQ(runs[static_cast<size_t>(lane)], 20);
    EXPECT_EQ(threads_of_lane[lane].size(), 1u) << "lane " << lane << " moved between threads";
  }
  EXPECT_EQ(*threads_of_lane[0].begin(), std::this_thread::get_id());  // thread 0 is the caller
  EXPECT_EQ(threads_of_lane[3], threads_of_lane[0]);
  EXPECT_NE(threads_of_lane[1], threads_of_lane[0]);
  std::atomic<int> finished{0};
  EXPECT_THROW(pool.run(5,
                        [&](int lane) {
                          if (lane == 2) throw Error("lane 2 failed");
                          ++finished;
                        }),
               Error);
  EXPECT_EQ(finished.load(), 4);  // the others still ran to the end
  pool.run(2, [&](int) { ++finished; });
  EXPECT_EQ(finished.load(), 6);  // and the pool still works
}

// The tiny policy with actions in LeRobot units near the home pose (degrees, gripper 0–100), so the arm moves but
// stays sane, on one thread.
TinyPolicyOptions rollout_policy() {
  TinyPolicyOptions o;
  o.words = {"pick", "up", "the", "cube", "and", "lift", "it"};
  o.state_std = 30;
  o.action_mean = {0, -20, 20, 60, 0, 20};
  o.action_std = std::vector<float>(6, 15.f);
  o.threads = 1;
  return o;
}

struct Fixture : TinyPolicy {
  Fixture() : TinyPolicy("rollouts", rollout_policy()) {}
};

SimOptions small_sim() {
  SimOptions o;
  o.image_width = o.image_height = 64;
  return o;
}

RolloutOptions short_episodes() {
  RolloutOptions o;
  o.max_seconds = 1.5;  // 45 ticks, 9 chunks
  return o;
}

void expect_same_steps(const RolloutResult& a, const RolloutResult& b, double tolerance) {
  ASSERT_EQ(a.steps.size(), b.steps.size());
  double worst = 0;
  for (size_t i = 0; i < a.steps.size(); ++i)
    for (int j = 0; j < kNumJoints; ++j) {
      worst = std::max(worst, std::abs(a.steps[i].target[j] - b.steps[i].target[j]));
      worst = std::max(worst, std::abs(a.steps[i].joints[j] - b.steps[i].joints[j]));
    }
  EXPECT_LE(worst, tolerance) << "seed " << a.seed;
}

// The first `steps` steps of two episodes agree to `tolerance`.
void expect_same_start(const RolloutResult& a, const RolloutResult& b, size_t steps, double tolerance) {
  ASSERT_GE(a.steps.size(), steps);
  ASSERT_GE(b.steps.size(), steps);
  RolloutResult x = a, y = b;
  x.steps.resize(steps);
  y.steps.resize(steps);
  expect_same_steps(x, y, tolerance);
}

TEST(Rollout, FramesAreRenderedOnlyWhenThePolicyReadsThemAndNothingElseChanges) {
  Fixture f;
  Simulator lazy(small_sim()), eager(small_sim());
  const RolloutResult a = run_rollout(lazy, *f.policy, 7, short_episodes());
  // An observer that wants every frame: the same episode, rendered at every tick.
  RolloutOptions every = short_episodes();
  every.frames_every_step = true;
  int frames_seen = 0;
  const RolloutResult b = run_rollout(eager, *f.policy, 7, every, [&](int, const Observation& obs, const RolloutStep&) {
    frames_seen += static_cast<int>(obs.images.size());
    return true;
  });
  ASSERT_EQ(a.steps.size(), 45u);
  EXPECT_EQ(a.model_calls, 9);
  EXPECT_EQ(lazy.camera_frames_rendered(), 2 * a.model_calls);  // two cameras at each chunk boundary
  EXPECT_EQ(eager.camera_frames_rendered(), 2 * 45);
  EXPECT_EQ(frames_seen, 2 * 45);
  expect_same_steps(a, b, 0.0);  // rendering never touches the physics
  for (size_t i = 0; i < a.steps.size(); ++i) EXPECT_EQ(a.steps[i].model_ran, i % 5 == 0) << i;
}

// The simulator behind a safety chain of its own that narrows every joint to ±0.2 rad and reports what it sent, as the
// real arm's driver does.
class NarrowingRobot : public Robot {
 public:
  explicit NarrowingRobot(Simulator& sim) : sim_(sim) {}
  std::string name() const override { return sim_.name(); }
  std::vector<std::string> camera_names() const override { return sim_.camera_names(); }
  double control_hz() const override { return sim_.control_hz(); }
  JointLimits joint_limits() const override { return sim_.joint_limits(); }
  void reset(uint64_t seed) override { sim_.reset(seed); }
  Observation observe(CameraFrames frames) override { return sim_.observe(frames); }
  std::optional<TaskState> task_state() override { return sim_.task_state(); }
  JointVector act(const JointVector& targets) override {
    JointVector narrowed = targets;
    for (double& q : narrowed) q = std::clamp(q, -0.2, 0.2);
    return sim_.act(narrowed);
  }

 private:
  Simulator& sim_;
};

TEST(Rollout, EachStepRecordsTheTargetsTheRobotReportsSending) {
  Fixture f;
  Simulator sim(small_sim());
  NarrowingRobot robot(sim);
  const RolloutResult r = run_rollout(robot, *f.policy, 7, short_episodes());
  const JointLimits limits = sim.joint_limits();
  int narrowed = 0;
  for (const RolloutStep& s : r.steps)
    for (int j = 0; j < kNumJoints; ++j) {
      const double expected =
          std::clamp(std::clamp(s.target[j], -0.2, 0.2), limits.lower[j], limits.upper[j]);
      EXPECT_DOUBLE_EQ(s.sent[j], expected) << kJointNames[j];
      narrowed += s.sent[j] != s.target[j];
    }
  EXPECT_GT(narrowed, 0) << "the policy's targets never left ±0.2 rad: the test proves nothing";
  // Rollout files keep both.
  const fs::path file = f.dir / "sent.json";
  write_rollout_file(file.string(), r);
  const RolloutResult back = read_rollout_file(file.string());
  ASSERT_EQ(back.steps.size(), r.steps.size());
  for (size_t i = 0; i < r.steps.size(); ++i) {
    EXPECT_EQ(back.steps[i].sent, r.steps[i].sent);
    EXPECT_EQ(back.steps[i].target, r.steps[i].target);
  }
}

TEST(Rollout, BatchedEpisodesReproduceAndAgreeWithOneAtATime) {
  Fixture f;
  const std::vector<uint64_t> seeds = {11, 12, 13, 14, 15};
  auto sims = [](int) -> std::shared_ptr<Robot> { return std::make_shared<Simulator>(small_sim()); };
  // One lane is run_rollout, exactly.
  Simulator one(small_sim());
  std::vector<RolloutResult> single;
  for (uint64_t s : seeds) single.push_back(run_rollout(one, *f.policy, s, short_episodes()));
  const std::vector<RolloutResult> lane1 = run_rollouts(sims, *f.policy, seeds, short_episodes(), {1, 1});
  ASSERT_EQ(lane1.size(), seeds.size());
  for (size_t k = 0; k < seeds.size(); ++k) {
    EXPECT_EQ(lane1[k].seed, seeds[k]);
    expect_same_steps(lane1[k], single[k], 0.0);
  }
  // Three lanes on two threads: every episode, in seed order; the same again bit for bit, also on one thread; and
  // the one-at-a-time episodes to rounding (batched matrix products round differently) for the first chunk. After
  // that the loop is chaotic: the ~1e-7 rad the rounding moved the arm flips edge pixels of the next render (4e-8
  // rad: 0–42 bytes by up to 84 levels, measured on these seeds), and one level of one pixel moves this model's chunk
  // by ~5e-4, so the second chunk already differs by ~1e-3 rad.
  std::vector<int> done_order;
  RolloutCallbacks callbacks;
  callbacks.done = [&](int k, const RolloutResult& r) {
    EXPECT_EQ(r.seed, seeds[static_cast<size_t>(k)]);
    done_order.push_back(k);
  };
  const std::vector<RolloutResult> batched = run_rollouts(sims, *f.policy, seeds, short_episodes(), {3, 2}, callbacks);
  EXPECT_EQ(std::set<int>(done_order.begin(), done_order.end()), (std::set<int>{0, 1, 2, 3, 4}));
  const std::vector<RolloutResult> again = run_rollouts(sims, *f.policy, seeds, short_episodes(), {3, 1});
  for (size_t k = 0; k < seeds.size(); ++k) {
    EXPECT_EQ(batched[k].seed, seeds[k]);
    EXPECT_EQ(batched[k].model_calls, single[k].model_calls);
    expect_same_steps(batched[k], again[k], 0.0);
    expect_same_start(batched[k], single[k], 5, 1e-5);
  }
}

TEST(Rollout, SteeringActsOnEveryEpisodeOfABatch) {
  Fixture f;
  const std::vector<uint64_t> seeds = {21, 22, 23};
  auto sims = [](int) -> std::shared_ptr<Robot> { return std::make_shared<Simulator>(small_sim()); };
  const SmolVLAConfig& c = f.policy->config();
  NeuronSet set;
  set.name = "push";
  for (int i = 0; i < 8; ++i) {
    NeuronRef n;
    n.stream = Stream::kExpert;
    n.layer = c.num_expert_layers - 1;
    n.index = i;
    set.neurons.push_back(n);
  }
  const std::vector<RolloutResult> plain = run_rollouts(sims, *f.policy, seeds, short_episodes(), {3, 2});
  std::vector<RolloutResult> steered;
  {
    Intervention push;
    push.set = "push";
    push.alpha = 5.0;
    Steering steering(f.policy->model(), {set}, {push});
    steered = run_rollouts(sims, *f.policy, seeds, short_episodes(), {3, 2});
  }
  const std::vector<RolloutResult> after = run_rollouts(sims, *f.policy, seeds, short_episodes(), {3, 2});
  for (size_t k = 0; k < seeds.size(); ++k) {
    double moved = 0;
    for (int j = 0; j < kNumJoints; ++j)
      moved = std::max(moved, std::abs(steered[k].steps[1].target[j] - plain[k].steps[1].target[j]));
    EXPECT_GT(moved, 1e-3) << "episode " << k << " was not steered";
    expect_same_steps(after[k], plain[k], 0.0);  // the steering ended with its scope
  }
}

TEST(ClosedLoop, EachEpisodeOfABatchGetsItsOwnAlphaAndAZeroLoopChangesNothing) {
  Fixture f;
  const std::vector<uint64_t> seeds = {31, 32};
  auto sims = [](int) -> std::shared_ptr<Robot> { return std::make_shared<Simulator>(small_sim()); };
  const SmolVLAConfig& c = f.policy->config();
  NeuronSet set;
  set.name = "push";
  for (int i = 0; i < 8; ++i) set.neurons.push_back({Stream::kExpert, c.num_expert_layers - 1, i, ""});
  Intervention push;
  push.set = "push";
  push.op = InterventionOp::kAdd;
  push.alpha = 1;  // the controller's α multiplies it
  SteerCondition loop{"loop", {push}, ""};
  loop.closed_loop = ClosedLoop{{Concept::kSpeed, 1.0}, {}};  // 1 m/s: far above what the arm does, α rises
  SteerCondition zero = loop;
  zero.closed_loop->controller = {4, 0.5, 1, 0, 0};  // α clipped to 0: no push at all
  auto run = [&](const SteerCondition& condition) {
    std::vector<RolloutResult> out(seeds.size());
    run_steer_jobs(sims, *f.policy, {set}, {condition}, {{0, 0}, {0, 1}}, seeds[0], short_episodes(), {2, 2},
                   [&](const SteerJob& job, const RolloutResult& r) { out[static_cast<size_t>(job.index)] = r; });
    return out;
  };
  const std::vector<RolloutResult> plain = run_rollouts(sims, *f.policy, seeds, short_episodes(), {2, 2});
  const std::vector<RolloutResult> zeroed = run(zero), steered = run(loop);
  for (size_t k = 0; k < seeds.size(); ++k) {
    expect_same_steps(zeroed[k], plain[k], 0.0);
    // The recorded α is the controller's answer to the concept measured on the episode so far, call by call.
    AlphaController replay(loop.closed_loop->controller, 1.0);
    double last_call = -1, largest = 0;
    int calls = 0;
    for (size_t t = 0; t < steered[k].steps.size(); ++t) {
      const RolloutStep& step = steered[k].steps[t];
      if (!step.model_ran) {
        EXPECT_EQ(step.steer_alpha, 0);
        continue;
      }
      ++calls;
      const std::vector<RolloutStep> before(steered[k].steps.begin(), steered[k].steps.begin() + static_cast<long>(t));
      const std::optional<double> speed = measure_concept(Concept::kSpeed, before, step);
      ASSERT_EQ(speed.has_value(), t > 0);
      const double expected = speed ? replay.update(*speed, last_call < 0 ? 0 : step.time - last_call) : 0;
      if (speed) last_call = step.time;
      EXPECT_DOUBLE_EQ(step.steer_alpha, expected) << "call at step " << t;
      largest = std::max(largest, step.steer_alpha);
    }
    EXPECT_EQ(calls, 9);
    EXPECT_GT(largest, 1) << "a speed below the target asks for a push";
    double moved = 0;
    for (size_t t = 0; t < plain[k].steps.size(); ++t)
      for (int j = 0; j < kNumJoints; ++j)
        moved = std::max(moved, std::abs(steered[k].steps[t].target[j] - plain[k].steps[t].target[j]));
    EXPECT_GT(moved, 1e-3) << "episode " << k << " was not steered";
  }
  // Each episode its own controller: the two episodes' α differ once their speeds do.
  bool differ = false;
  for (size_t t = 0; t < std::min(steered[0].steps.size(), steered[1].steps.size()); ++t)
    differ |= steered[0].steps[t].steer_alpha != steered[1].steps[t].steer_alpha;
  EXPECT_TRUE(differ);
  SteerCondition overriding = loop;
  overriding.interventions[0].op = InterventionOp::kSet;  // α 0 would hold the channels at 0
  EXPECT_THROW(run(overriding), Error);
  // Kept on disk as a sharded sweep keeps it: every step and its α read back exactly.
  const fs::path file = f.dir / "rollout.json";
  write_rollout_file(file.string(), steered[0]);
  const RolloutResult back = read_rollout_file(file.string());
  expect_same_steps(back, steered[0], 0.0);
  for (size_t t = 0; t < back.steps.size(); ++t) ASSERT_EQ(back.steps[t].steer_alpha, steered[0].steps[t].steer_alpha);
}

TEST(Rollout, BatchOptionsAreChecked) {
  Fixture f;
  auto sims = [](int) -> std::shared_ptr<Robot> { return std::make_shared<Simulator>(small_sim()); };
  EXPECT_THROW(run_rollouts(sims, *f.policy, {1}, short_episodes(), {0, 1}), Error);
  EXPECT_THROW(run_rollouts(sims, *f.policy, {1}, short_episodes(), {1, 0}), Error);
  // Two tasks cannot share one batched call.
  PolicyInput a, b;
  a.images["scene"] = a.images["wrist"] = Image(64, 64, 3, 100);
  a.state = std::vector<float>(6, 0.f);
  b = a;
  a.task = "pick up the cube";
  b.task = "lift it";
  EXPECT_THROW(f.policy->predict_chunks({&a, &b}, {{1, 0}, {2, 0}}), Error);
  // A batched chunk is the one-by-one chunk to rounding, and its noise is the episode's own.
  b.task = a.task;
  b.state[0] = 10;
  const auto both = f.policy->predict_chunks({&a, &b}, {{1, 0}, {2, 0}});
  const auto first = f.policy->predict_chunk(a, 1, 0), second = f.policy->predict_chunk(b, 2, 0);
  double worst = 0;
  for (size_t t = 0; t < first.size(); ++t)
    for (size_t i = 0; i < first[t].size(); ++i)
      worst = std::max({worst, double(std::abs(both[0][t][i] - first[t][i])), double(std::abs(both[1][t][i] - second[t][i]))});
  EXPECT_LT(worst, 1e-3);
  EXPECT_GT(std::abs(both[0][0][0] - both[1][0][0]), 1e-4);
}

}  // namespace
}  // namespace vlascope
