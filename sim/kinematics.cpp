#include "sim/kinematics.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace vlascope {

std::array<int, kNumJoints> arm_joint_ids(const mjModel* m) {
  std::array<int, kNumJoints> ids{};
  for (int j = 0; j < kNumJoints; ++j) {
    ids[j] = require_id(m, mjOBJ_JOINT, kJointNames[j]);
    require(m->jnt_type[ids[j]] == mjJNT_HINGE, std::string("joint '") + kJointNames[j] + "' must be a hinge");
  }
  return ids;
}

Quat quat_from_mat(const double mat[9]) {
  Quat q;
  mju_mat2Quat(q.data(), mat);
  return q;
}

Vec3 quat_error(const Quat& target, const Quat& current) {
  Vec3 v;
  mju_subQuat(v.data(), target.data(), current.data());  // rotation from current to target, in current's frame
  // mju_subQuat returns the vector in the frame of `current`; rotate it to world coordinates.
  Vec3 w;
  mju_rotVecQuat(w.data(), v.data(), current.data());
  return w;
}

ArmKinematics::ArmKinematics(ModelPtr model) : model_(std::move(model)) {
  const mjModel* m = model_.get();
  data_ = std::shared_ptr<mjData>(mj_makeData(m), mj_deleteData);
  auto ids = arm_joint_ids(m);
  for (int j = 0; j < kNumJoints; ++j) {
    qpos_adr_[j] = m->jnt_qposadr[ids[j]];
    dof_adr_[j] = m->jnt_dofadr[ids[j]];
    limits_.lower[j] = m->jnt_range[2 * ids[j]];
    limits_.upper[j] = m->jnt_range[2 * ids[j] + 1];
  }
  ee_site_ = require_id(m, mjOBJ_SITE, "ee");
  ee_body_ = m->site_bodyid[ee_site_];
  mj_kinematics(m, data_.get());
  for (int i = 0; i < 3; ++i) pan_axis_[i] = data_->xanchor[3 * ids[kShoulderPan] + i];
}

ArmKinematics ArmKinematics::load(const std::string& scene_path) { return ArmKinematics(load_model(scene_path)); }

void ArmKinematics::set_joints(const JointVector& q) {
  for (int j = 0; j < kNumJoints; ++j) data_->qpos[qpos_adr_[j]] = q[j];
  mj_kinematics(model_.get(), data_.get());
}

Pose ArmKinematics::forward(const JointVector& joint_positions) {
  set_joints(joint_positions);
  Pose pose;
  for (int i = 0; i < 3; ++i) pose.position[i] = data_->site_xpos[3 * ee_site_ + i];
  pose.quaternion = quat_from_mat(data_->site_xmat + 9 * ee_site_);
  return pose;
}

Vec3 ArmKinematics::point(const JointVector& joint_positions, const Vec3& offset) {
  set_joints(joint_positions);
  const double* p = data_->site_xpos + 3 * ee_site_;
  const double* r = data_->site_xmat + 9 * ee_site_;
  Vec3 out;
  for (int i = 0; i < 3; ++i)
    out[i] = p[i] + r[3 * i] * offset[0] + r[3 * i + 1] * offset[1] + r[3 * i + 2] * offset[2];
  return out;
}

IkResult ArmKinematics::inverse(const IkTarget& target, const JointVector& seed, const IkOptions& options) {
  const mjModel* m = model_.get();
  mjData* d = data_.get();
  constexpr int kArm = kGripper;  // the five arm joints; the gripper does not move the ee site
  const bool with_orientation = target.orientation.has_value();
  const int rows = with_orientation ? 6 : 3;

  IkResult result;
  result.joints = seed;
  for (int j = 0; j < kArm; ++j) result.joints[j] = std::clamp(seed[j], limits_.lower[j], limits_.upper[j]);

  std::vector<mjtNum> jacp(3 * m->nv), jacr(3 * m->nv);
  double previous_error = INFINITY;
  for (int iter = 0;; ++iter) {
    set_joints(result.joints);
    mj_comPos(m, d);  // mj_jac needs the com-based frames
    const double* p = d->site_xpos + 3 * ee_site_;
    const double* r = d->site_xmat + 9 * ee_site_;
    mjtNum point[3];
    for (int i = 0; i < 3; ++i)
      point[i] = p[i] + r[3 * i] * target.point_offset[0] + r[3 * i + 1] * target.point_offset[1] +
                 r[3 * i + 2] * target.point_offset[2];

    double e[6] = {};
    for (int i = 0; i < 3; ++i) e[i] = target.position[i] - point[i];
    result.position_error = std::sqrt(e[0] * e[0] + e[1] * e[1] + e[2] * e[2]);
    result.orientation_error = 0;
    if (with_orientation) {
      Vec3 w = quat_error(*target.orientation, quat_from_mat(r));
      for (int i = 0; i < 3; ++i) e[3 + i] = options.orientation_weight * w[i];
      result.orientation_error = std::sqrt(w[0] * w[0] + w[1] * w[1] + w[2] * w[2]);
    }
    result.iterations = iter;
    result.converged = result.position_error < options.position_tolerance &&
                       (!with_orientation || result.orientation_error < options.orientation_tolerance);
    if (result.converged || iter >= options.max_iterations) break;
    // An unreachable target (outside the workspace, or an orientation the 5-DOF arm cannot take) stops improving
    // long before max_iterations: return the closest pose found.
    const double error = mju_norm(e, rows);
    if (previous_error - error < options.min_improvement) break;
    previous_error = error;

    // J: rows × 5 over the arm dofs (rotation rows weighted like the error).
    mj_jac(m, d, jacp.data(), jacr.data(), point, ee_body_);
    double J[6][kArm];
    for (int j = 0; j < kArm; ++j) {
      for (int i = 0; i < 3; ++i) J[i][j] = jacp[i * m->nv + dof_adr_[j]];
      if (with_orientation)
        for (int i = 0; i < 3; ++i) J[3 + i][j] = options.orientation_weight * jacr[i * m->nv + dof_adr_[j]];
    }
    // dq = Jᵀ (J Jᵀ + λ² I)⁻¹ e
    mjtNum A[36], y[6];
    for (int a = 0; a < rows; ++a)
      for (int b = 0; b < rows; ++b) {
        double s = a == b ? options.damping * options.damping : 0;
        for (int j = 0; j < kArm; ++j) s += J[a][j] * J[b][j];
        A[a * rows + b] = s;
      }
    require(mju_cholFactor(A, rows, 1e-12) == rows, "IK: singular damped normal matrix");
    mju_cholSolve(y, A, e, rows);
    double dq[kArm] = {}, largest = 0;
    for (int j = 0; j < kArm; ++j) {
      for (int a = 0; a < rows; ++a) dq[j] += J[a][j] * y[a];
      largest = std::max(largest, std::abs(dq[j]));
    }
    const double scale = largest > options.max_step ? options.max_step / largest : 1.0;
    for (int j = 0; j < kArm; ++j)
      result.joints[j] = std::clamp(result.joints[j] + scale * dq[j], limits_.lower[j], limits_.upper[j]);
  }
  return result;
}

}  // namespace vlascope
