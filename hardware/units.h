// Conversion between the simulator's joint radians (the robot interface) and LeRobot's units (what
// datasets, checkpoints and the real arm's calibrated readings use): degrees with the zero at the middle
// of each arm joint's calibrated range, and 0–100 for the gripper (0 = closed). so100.md §1.7.
//
//   sim_rad[j] = sign[j] · deg2rad(lerobot[j]) + offset[j]          for the five arm joints
//   sim_rad[gripper] = gripper_closed + (gripper_open − gripper_closed) · lerobot[gripper] / 100
//
// The defaults come from forward kinematics of the menagerie SO-100 (pan sign flipped, lift −π/2,
// elbow +π/2). Real arms differ: every field can be overridden (hardware/so100_follower.h reads them
// from its configuration).
#pragma once

#include <cmath>

#include "hardware/robot.h"

namespace vlascope {

struct UnitMapping {
  JointVector sign{-1, 1, 1, 1, 1, 1};                       // gripper entry unused
  JointVector offset_rad{0, -M_PI / 2, M_PI / 2, 0, 0, 0};   // gripper entry unused
  double gripper_closed_rad = -0.174;                        // LeRobot 0
  double gripper_open_rad = 1.75;                            // LeRobot 100
};

inline JointVector to_lerobot(const JointVector& sim_rad, const UnitMapping& m = {}) {
  JointVector out{};
  for (int j = 0; j < kGripper; ++j) out[j] = (sim_rad[j] - m.offset_rad[j]) / m.sign[j] * 180.0 / M_PI;
  out[kGripper] = (sim_rad[kGripper] - m.gripper_closed_rad) / (m.gripper_open_rad - m.gripper_closed_rad) * 100.0;
  return out;
}

inline JointVector from_lerobot(const JointVector& lerobot, const UnitMapping& m = {}) {
  JointVector out{};
  for (int j = 0; j < kGripper; ++j) out[j] = m.sign[j] * lerobot[j] * M_PI / 180.0 + m.offset_rad[j];
  out[kGripper] = m.gripper_closed_rad + (m.gripper_open_rad - m.gripper_closed_rad) * lerobot[kGripper] / 100.0;
  return out;
}

}  // namespace vlascope
