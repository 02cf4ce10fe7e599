// The robot interface: the one boundary between control code (rollouts, experiments, teleoperation) and a
// robot, simulated or real. Like ros2_control's hardware interface it is narrow: read an observation, write
// joint targets, start an episode, stop safely. A rollout written against Robot does not know whether it
// runs in MuJoCo (sim/) or on an SO-100 (hardware/so100_follower.h).
//
// Units (see DEVELOPERS.md): joint values are simulator radians in the menagerie SO-100 convention
// (so100.md §1.2–1.3; q = 0 is the arm stretched along −Y, the gripper is the Jaw angle, + = open).
// Positions are metres in the world frame, Z up. LeRobot units (degrees, 0–100 gripper) are converted in
// hardware/units.h, nowhere else.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/image.h"

namespace vlascope {

constexpr int kNumJoints = 6;
using JointVector = std::array<double, kNumJoints>;

// LeRobot's motor names, in servo-ID order (ID = index + 1).
enum JointIndex : int { kShoulderPan = 0, kShoulderLift, kElbowFlex, kWristFlex, kWristRoll, kGripper };
inline constexpr std::array<const char*, kNumJoints> kJointNames = {
    "shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"};

struct Pose {
  std::array<double, 3> position{};                // metres, world frame
  std::array<double, 4> quaternion{1, 0, 0, 0};    // w, x, y, z
};

struct JointLimits {
  JointVector lower{}, upper{};  // radians
};

struct Observation {
  double timestamp = 0;                 // seconds since the episode started (sim: simulated time)
  JointVector joint_positions{};        // radians
  JointVector joint_velocities{};       // radians per second
  Pose end_effector;                    // the `ee` point between the jaw tips, from the shared kinematic model
  std::map<std::string, Image> images;  // camera name → RGB frame; empty when observed with CameraFrames::kSkip
};

// What only a simulator can know: the object's pose and whether the task is done. The real arm has none.
struct TaskState {
  Pose object;                  // the cube
  bool object_grasped = false;  // both jaws touch it and it is off the table
  bool success = false;         // lifted and held (sim/expert.h defines the threshold)
};

// Forward kinematics of the arm. The simulator provides it (sim/kinematics.h); the real arm is handed the
// simulator's model so that end-effector heights in both worlds come from the same kinematics.
class KinematicModel {
 public:
  virtual ~KinematicModel() = default;
  virtual Pose forward(const JointVector& joint_positions) = 0;
};

enum class CameraFrames { kRead, kSkip };

class Robot {
 public:
  virtual ~Robot() = default;

  virtual std::string name() const = 0;                       // "sim", "so100"
  virtual std::vector<std::string> camera_names() const = 0;  // e.g. {"scene", "wrist"}
  virtual double control_hz() const = 0;                      // 30 by default
  virtual JointLimits joint_limits() const = 0;

  // Starts an episode. The simulator rebuilds its scene from the seed (cube pose, colour, lighting);
  // the real arm drives to the home pose at a safe speed and uses the seed only as a label.
  virtual void reset(uint64_t seed) = 0;

  // Read: the current joint state, end-effector pose and, with CameraFrames::kRead, one frame per camera. The
  // simulator renders a frame only when asked (a render per camera is most of a control tick), so a loop asks for
  // frames only when something reads them: the policy at a chunk boundary, a video, a live view. The real arm's
  // cameras run at their own rate either way; kSkip only leaves the latest frame uncopied.
  virtual Observation observe(CameraFrames frames) = 0;
  Observation observe() { return observe(CameraFrames::kRead); }

  // Write: joint position targets (radians). Returns at the start of the next control tick: the
  // simulator integrates one control period; the real arm sleeps until the tick's deadline. Targets
  // outside the joint limits are clamped, never executed. Returns the targets actually sent, after every
  // clamp of the robot's safety chain (joint limits, the real arm's step limit and calibrated range), as
  // LeRobot's send_action does: what a rollout records as what the arm was told.
  virtual JointVector act(const JointVector& targets) = 0;

  // Leaves the robot safe (the real arm holds position or turns torque off). Idempotent.
  virtual void stop() {}

  // Ground truth for evaluation; only the simulator has it.
  virtual std::optional<TaskState> task_state() { return std::nullopt; }
};

}  // namespace vlascope
