// Closed-loop rollouts of a policy on any Robot (the simulator or the real SO-100): the one control loop that eval,
// attention, steering and sim-vs-real experiments share.
//
//   observe → state in LeRobot units (hardware/units.h) + camera frames → policy.select_action → radians → act
//
// Every step is recorded (time, joints, targets, end-effector pose, and the simulator's task state when there is
// one), so the lift segment and heights are computed the same way in both worlds.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hardware/robot.h"
#include "hardware/units.h"
#include "interp/lift_segment.h"
#include "policy/policy.h"

namespace vlascope {

struct RolloutOptions {
  std::string task = "pick up the cube and lift it";
  double max_seconds = 15;            // the episode ends here at the latest
  double stop_after_success_s = 3.0;  // …or this long after the simulator first reports success (< 0: never)
  UnitMapping units;                  // LeRobot units ↔ the robot interface's radians
  // Camera frames are read only at the steps where the policy computes a chunk (they are all it reads them for),
  // unless an observer shows or records every frame (videos, live views): then set this.
  bool frames_every_step = false;
};

struct RolloutStep {
  double time = 0;                   // s, the observation's timestamp
  JointVector joints{};              // rad, observed
  JointVector target{};              // rad, the policy's action as joint targets
  JointVector sent{};                // rad, what the robot reports it sent (Robot::act: after its safety clamps);
                                     // the target on a last step an observer ended before it was sent
  std::array<float, 6> state{};      // LeRobot units, what the policy saw
  std::array<float, 6> action{};     // LeRobot units, what it answered
  Pose end_effector;
  bool model_ran = false;            // this step computed a new action chunk
  double model_seconds = 0;          // …and it took this long
  double steer_alpha = 0;            // closed-loop steering: the α set for this step's policy call (else 0)
  std::optional<TaskState> task;     // simulator only
};

struct RolloutResult {
  uint64_t seed = 0;
  std::vector<RolloutStep> steps;
  bool success = false;           // simulator: cube lifted and held (SuccessCriteria); real arm: false (unknown)
  bool success_known = false;     // the robot reports task state
  double success_time = -1;       // s, first step with success
  double cube_start_z = 0, max_cube_lift = 0;  // simulator: metres the cube rose at most
  double seconds = 0;             // episode length (simulated time)
  double wall_seconds = 0;
  int model_calls = 0;
  double model_seconds = 0;       // total time in the policy

  EeTrajectory ee_trajectory() const;  // for interp/lift_segment.h
};

// Called at every step after the policy answered and before the targets are sent (so the robot is still in the
// observed state: a simulator can render it), with the observation and the filled step; returning false ends the
// episode. Live views, capture, figures and videos hang here. The observation has camera frames at the steps where
// step.model_ran, and at every step with RolloutOptions::frames_every_step.
using RolloutObserver = std::function<bool(int index, const Observation& observation, const RolloutStep& step)>;

// One episode: robot.reset(seed), then the loop; the noise of chunk k is (seed, k), as Policy::reset(seed) and
// select_action would draw it. The robot is stopped (robot.stop()) on every exit, errors included.
RolloutResult run_rollout(Robot& robot, Policy& policy, uint64_t seed, const RolloutOptions& options = {},
                          const RolloutObserver& observer = {});

// Every camera the policy reads (after its camera map) is one the robot has; else an Error naming them and
// --camera-map. run_rollouts checks this before the first episode.
void require_policy_cameras(const Policy& policy, const Robot& robot);

// Many episodes at once (`--batch`, `--sim-threads`): `lanes` robots stepped in lock step, lane l on thread
// l % threads (its simulator's OpenGL context never changes thread), and one batched policy call per tick for every
// lane whose action queue ran out. Episode k runs seeds[k]; a lane that finishes takes the next episode at the next
// tick that is a multiple of n_action_steps, so all lanes compute their chunks at the same ticks, in one call.
//
// Reproducibility: the same seeds, lanes and machine give the same results bit for bit (which episodes share a
// call depends only on the simulations); the number of threads changes nothing. Another number of lanes batches
// other rows together, and the matrix products round differently, so trajectories drift apart after a while (closed
// loops are chaotic) — the statistics over many episodes agree, individual episodes need not. With one lane this is
// exactly run_rollout.
struct BatchOptions {
  int lanes = 1;
  int threads = 1;
};
// Makes lane l's robot; called on lane l's thread.
using RobotFactory = std::function<std::shared_ptr<Robot>(int lane)>;
struct RolloutCallbacks {
  // Before episode k starts (on the calling thread): its observer, or none. The observer then runs on the episode's
  // lane thread; it sees every frame only with RolloutOptions::frames_every_step.
  std::function<RolloutObserver(int episode)> start;
  // After episode k ended (on the calling thread, in the order episodes end).
  std::function<void(int episode, const RolloutResult& result)> done;
  // Before each policy call (on the calling thread): one row per episode in the call, in the batch's order, with the
  // episode's steps so far, the step being observed, and the call's input and noise. Closed-loop steering sets each
  // row's α here and reports it in steer_alpha, which the step records; closed-loop patching runs the same inputs
  // under another prompt first.
  struct CallRow {
    int episode = 0;
    const std::vector<RolloutStep>* steps = nullptr;
    const RolloutStep* now = nullptr;
    double steer_alpha = 0;
    const PolicyInput* input = nullptr;
    Policy::NoiseId noise;
  };
  std::function<void(std::vector<CallRow>& rows)> before_call;
};
std::vector<RolloutResult> run_rollouts(const RobotFactory& make_robot, Policy& policy,
                                        const std::vector<uint64_t>& seeds, const RolloutOptions& options,
                                        const BatchOptions& batch, const RolloutCallbacks& callbacks = {});

}  // namespace vlascope
