// The scripted expert: picks up the cube and lifts it, producing demonstrations to imitate.
//
// Given the start joints and the cube pose it plans the whole episode up front, one joint-target vector per
// control tick: Cartesian minimum-jerk segments for the grasp point (reach above the cube, descend, close the
// jaws, lift straight up, hold), turned into joints by damped-least-squares IK warm-started from the previous
// tick. The targets are therefore smooth in time and a deterministic function of (start, cube, parameters), which
// is what a small policy can learn from images and joint states.
//
// Variants share the instruction text (kPickInstruction) and differ only in how the task is done:
//   high  lift ~20 cm      low   lift ~8 cm       (nominal speed)
//   fast  1.5× speed       slow  0.65× speed      (lift ~14 cm)
// Per-episode noise (segment durations ±10%, lift height ±1 cm, approach height ±1 cm, grasp point ±1 mm) makes
// every demonstration different; it is drawn from the episode seed, so an episode is reproducible.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hardware/robot.h"
#include "sim/kinematics.h"

namespace vlascope {

class Simulator;

inline constexpr const char* kPickInstruction = "pick up the cube and lift it";

// Same numbers as dataset's Phase (dataset/dataset.h), which sim/ does not depend on.
enum class ExpertPhase : int8_t { kReach = 1, kGrasp = 2, kLift = 3, kHold = 4 };
const char* expert_phase_name(ExpertPhase phase);

struct ExpertParams {
  std::string variant;            // label stored with the episode ("" for custom parameters)
  double lift_height = 0.14;      // m: how far the cube rises above its resting position
  double speed = 1.0;             // 1 = nominal; every segment's duration is divided by it
  double pregrasp_height = 0.07;  // m above the grasp point before the vertical descent
  double hold_time = 1.0;         // s at speed 1
  double gripper_open = 0.8;      // rad (tip gap ≈ 75 mm)
  double gripper_closed = -0.15;  // rad: below the contact angle, so the servo keeps squeezing
  double noise = 1.0;             // scale of the per-episode variation; 0 = the nominal plan
  // Execution noise (DART, Laskey et al. 2017): while reaching, the targets *sent* to the arm drift from the plan
  // (an Ornstein–Uhlenbeck process per arm joint, this standard deviation in rad, time constant 0.4 s, fading out
  // over the last 0.5 s before the descent onto the cube, so the jaws never knock it); the targets *recorded* stay
  // the plan's. A demonstration then shows the
  // arm off its path with the action that brings it back, which a policy can only learn by looking at where the
  // cube is — without it, joint states alone predict the next target and the policy ignores the images.
  double execution_noise = 0.0;
};

// The named variants (high, low, fast, slow); throws Error listing them for an unknown name.
ExpertParams expert_variant(const std::string& name);
const std::vector<std::string>& expert_variant_names();

struct ExpertPlan {
  std::vector<JointVector> targets;  // one per control tick
  std::vector<ExpertPhase> phases;
  int descent_start = 0;  // first tick of the vertical descent onto the cube (the end of the reach above it)
  double lift_height = 0;                                          // after noise (m)
  double duration() const { return targets.size() / control_hz; }  // seconds
  double control_hz = 30;
  double max_ik_error = 0;  // m, largest position residual of the IK along the plan
  int ik_iterations = 0;    // summed over the plan (cost diagnostics)
};

class ScriptedExpert {
 public:
  ScriptedExpert(ArmKinematics& kinematics, double control_hz);

  // Plans a pick-and-lift from the arm's joints `start` for the cube at `cube` (its centre and yaw).
  ExpertPlan plan(const JointVector& start, const Pose& cube, const ExpertParams& params, uint64_t seed);

  // Where the cube's centre sits in the ee site frame when held: between the pads near the tips, against the fixed
  // jaw (x points from the moving to the fixed jaw, z out of the fingertips).
  static constexpr Vec3 kGraspPoint = {-0.008, 0.0, -0.001};

 private:
  ArmKinematics& kinematics_;
  double control_hz_;
};

// One expert episode in the simulator: reset(seed), plan, then observe → act for every tick. on_frame sees the
// observation taken before each action (what a dataset records as that frame) and the plan's target (with
// execution noise, the arm was sent that target plus the noise).
struct ExpertEpisode {
  bool success = false;
  int frames = 0;
  double duration = 0;       // s
  double lift_height = 0;    // planned (m)
  double max_cube_lift = 0;  // highest cube rise above its resting height (m)
  double max_ik_error = 0;   // m
  // Tracking: target sent at tick k vs joint position one control period later, radians (the gripper only while
  // reaching: holding the cube it squeezes below its target by design).
  JointVector tracking_rms{}, tracking_max{};
};
using FrameCallback =
    std::function<void(int tick, const Observation& observation, const JointVector& action, ExpertPhase phase)>;
ExpertEpisode run_expert_episode(Simulator& sim, const ExpertParams& params, uint64_t seed,
                                 const FrameCallback& on_frame = {});

}  // namespace vlascope
