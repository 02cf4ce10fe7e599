#include "sim/mujoco_joint_backend.h"

#include <algorithm>
#include <cmath>

#include "sim/kinematics.h"

namespace vlascope {

SimOptions twin_sim_options(const std::string& scene) {
  SimOptions o;
  o.scene = scene;
  o.cameras = {};
  o.control_hz = 500;  // with the scene's 2 ms step: act() is one physics step
  o.substeps = 1;
  o.randomization.start_pose_noise = 0;
  return o;
}

MujocoJointBackend::MujocoJointBackend(SimOptions options) : sim_(std::move(options)) {
  const mjModel* m = sim_.model();
  const auto joints = arm_joint_ids(m);
  for (int j = 0; j < kNumJoints; ++j) {
    dof_adr_[j] = m->jnt_dofadr[joints[j]];
    actuator_[j] = require_id(m, mjOBJ_ACTUATOR, kJointNames[j]);
  }
  target_ = held_ = hand_ = sim_.joint_positions();
}

void MujocoJointBackend::set_targets(const JointVector& target_rad, const std::array<bool, kNumJoints>& powered) {
  const JointVector q = sim_.joint_positions();
  for (int j = 0; j < kNumJoints; ++j)
    if (powered_[j] && !powered[j]) held_[j] = q[j];  // torque just went off: the gearbox holds here
  target_ = target_rad;
  powered_ = powered;
}

void MujocoJointBackend::set_hand(const JointVector& pose) {
  const JointLimits lim = sim_.joint_limits();
  for (int j = 0; j < kNumJoints; ++j) hand_[j] = std::clamp(pose[j], lim.lower[j], lim.upper[j]);
  hand_active_ = true;
}

void MujocoJointBackend::teleport(const JointVector& q) {
  sim_.set_joint_positions(q);
  held_ = hand_ = target_ = sim_.joint_positions();
}

void MujocoJointBackend::step(double dt) {
  const double h = sim_.timestep();
  carry_ += dt;
  while (carry_ >= h - 1e-12) {
    carry_ -= h;
    JointVector ctrl{};
    for (int j = 0; j < kNumJoints; ++j) {
      if (powered_[j]) {
        ctrl[j] = target_[j];
      } else {
        if (hand_active_) {
          const double limit = hand_speed_ * h;
          held_[j] += std::clamp(hand_[j] - held_[j], -limit, limit);
        }
        ctrl[j] = held_[j];
      }
    }
    sim_.act(ctrl);
  }
}

JointVector MujocoJointBackend::velocities() const {
  JointVector v{};
  for (int j = 0; j < kNumJoints; ++j) v[j] = sim_.data()->qvel[dof_adr_[j]];
  return v;
}

JointVector MujocoJointBackend::efforts() const {
  const mjModel* m = sim_.model();
  JointVector e{};
  for (int j = 0; j < kNumJoints; ++j) {
    const int a = actuator_[j];
    const double range = std::max(std::abs(m->actuator_forcerange[2 * a]), std::abs(m->actuator_forcerange[2 * a + 1]));
    e[j] = range > 0 ? std::clamp(sim_.data()->actuator_force[a] / range, -1.0, 1.0) : 0.0;
  }
  return e;
}

}  // namespace vlascope
