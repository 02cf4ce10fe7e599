// Kinematics of the SO-100 from its MuJoCo model: forward kinematics of the `ee` site, its Jacobian and
// damped-least-squares inverse kinematics.
//
// ArmKinematics keeps its own mjData, so it never disturbs a running simulation; it is the KinematicModel
// (hardware/robot.h) that the simulator uses and that the real arm is handed, so end-effector poses in both
// worlds come from the same numbers. Not thread-safe: one instance per thread.
#pragma once

#include <array>
#include <optional>
#include <string>

#include "hardware/robot.h"
#include "sim/model.h"

namespace vlascope {

using Vec3 = std::array<double, 3>;
using Quat = std::array<double, 4>;  // w, x, y, z

struct IkTarget {
  Vec3 position{};                  // where the point should go, world frame (m)
  std::optional<Quat> orientation;  // the ee site's orientation; nullopt = position only
  Vec3 point_offset{};              // the controlled point in the ee site frame (0 = the ee site itself)
};

struct IkOptions {
  int max_iterations = 200;
  double damping = 0.02;                // λ of the damped least squares (m); larger = smoother, slower near targets
  double orientation_weight = 0.1;      // metres of position error that one radian of orientation error counts as
  double position_tolerance = 1e-4;     // m
  double orientation_tolerance = 1e-3;  // rad
  double max_step = 0.2;                // rad per iteration, per joint
  double min_improvement = 1e-7;        // stop when an iteration lowers the (weighted) error by less (m)
};

struct IkResult {
  JointVector joints{};          // the gripper entry is copied from the seed
  double position_error = 0;     // m, at the end
  double orientation_error = 0;  // rad, at the end (0 when no orientation was asked)
  int iterations = 0;
  bool converged = false;
};

class ArmKinematics : public KinematicModel {
 public:
  explicit ArmKinematics(ModelPtr model);                    // shares a loaded scene (needs site `ee`)
  static ArmKinematics load(const std::string& scene_path);  // loads the scene itself

  Pose forward(const JointVector& joint_positions) override;  // the `ee` site
  // Position of a point given in the ee frame, and the ee rotation matrix (row-major), at joint_positions.
  Vec3 point(const JointVector& joint_positions, const Vec3& offset_in_ee);

  // Damped least squares on MuJoCo's Jacobians over the five arm joints, starting at `seed`, clamped to the
  // joint limits at every iteration.
  IkResult inverse(const IkTarget& target, const JointVector& seed, const IkOptions& options = {});

  JointLimits limits() const { return limits_; }
  Vec3 pan_axis() const { return pan_axis_; }  // a point on the (vertical) shoulder_pan axis, world frame
  const mjModel* model() const { return model_.get(); }

 private:
  void set_joints(const JointVector& q);  // writes qpos and runs the kinematics

  ModelPtr model_;
  std::shared_ptr<mjData> data_;
  std::array<int, kNumJoints> qpos_adr_{}, dof_adr_{};
  int ee_site_ = -1;
  int ee_body_ = -1;
  JointLimits limits_;
  Vec3 pan_axis_{};
};

// Joint ids, qpos and dof addresses of the six LeRobot-named joints, in kJointNames order. Throws Error naming the
// missing joint.
std::array<int, kNumJoints> arm_joint_ids(const mjModel* m);

Quat quat_from_mat(const double mat[9]);
// Rotation that turns a into b (both unit quaternions) as a rotation vector (axis × angle, rad).
Vec3 quat_error(const Quat& target, const Quat& current);

}  // namespace vlascope
