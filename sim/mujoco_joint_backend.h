// The servo-bus twin backed by the MuJoCo simulation (sim/Simulator): the emulated servos' goal positions
// drive the simulated position actuators, and the simulated joint angles become their Present_Position. With
// it, `vlascope twin --backend mujoco` is an SO-100 whose physics (gravity, inertia, contacts with the table
// and the cube) is the simulator's, behind the real driver's serial protocol.
//
// Torque off: the simulated actuators cannot be switched off, so an unpowered joint holds the angle it had
// when its torque went off (the STS3215's 1:345 gearbox mostly holds the arm, too), and a "hand" can move it.
#pragma once

#include <memory>

#include "hardware/servo_twin.h"
#include "sim/simulator.h"

namespace vlascope {

// Simulator options for a twin: no cameras, one physics step per act(), no start-pose noise.
SimOptions twin_sim_options(const std::string& scene = "");

class MujocoJointBackend : public JointBackend {
 public:
  explicit MujocoJointBackend(SimOptions options = twin_sim_options());

  std::string name() const override { return "mujoco"; }
  void set_targets(const JointVector& target_rad, const std::array<bool, kNumJoints>& powered) override;
  void step(double dt) override;  // whole physics steps; the remainder carries over to the next call
  JointVector positions() const override { return sim_.joint_positions(); }
  JointVector velocities() const override;
  JointVector efforts() const override;  // actuator force / force range
  double max_step() const override { return sim_.timestep(); }
  void set_hand(const JointVector& pose) override;
  void release_hand() override { hand_active_ = false; }

  Simulator& simulator() { return sim_; }
  void teleport(const JointVector& q);  // for tests and tools

 private:
  Simulator sim_;
  std::array<int, kNumJoints> dof_adr_{}, actuator_{};
  JointVector target_{}, held_{}, hand_{};
  std::array<bool, kNumJoints> powered_{};
  bool hand_active_ = false;
  double hand_speed_ = 3.0;  // rad/s, as the first-order backend's hand
  double carry_ = 0;         // simulated time owed to the next step() call
};

}  // namespace vlascope
