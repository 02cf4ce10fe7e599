// The servo-bus twin backed by the MuJoCo simulation (sim/mujoco_joint_backend.h): the real driver over a
// pseudo-terminal reads the simulated joints, moves them, and computes the end effector with the
// simulator's own kinematics.
#include <gtest/gtest.h>

#include <thread>

#include "sim/mujoco_joint_backend.h"
#include "hardware/servo_twin.h"
#include "hardware/so100_follower.h"
#include "sim/kinematics.h"

namespace vlascope {
namespace {

struct MujocoRig {
  std::shared_ptr<ServoBusTwin> twin;
  MujocoJointBackend* backend = nullptr;
  std::unique_ptr<PtyServoTwin> pty;
  MujocoRig() {
    TwinOptions o;
    o.calibrated = true;
    auto b = std::make_unique<MujocoJointBackend>();
    backend = b.get();
    twin = std::make_shared<ServoBusTwin>(o, std::move(b));
    pty = std::make_unique<PtyServoTwin>(twin);
  }
  So100Config config() const {
    So100Config c;
    c.bus.port = pty->device_path();
    c.bus.bus.latency_allowance_s = 0.05;
    c.handle_ctrl_c = false;
    c.calibration = twin->expected_calibration();
    return c;
  }
};

TEST(MujocoTwin, DriverReadsAndMovesTheSimulatedArm) {
  MujocoRig rig;
  So100Config config = rig.config();
  config.kinematics = std::make_shared<ArmKinematics>(ArmKinematics::load(scene_path("pick_cube.xml")));
  So100Follower arm(config);
  // Reading: the simulated joints (the sim starts in its home keyframe), through ticks and LeRobot units.
  Observation obs = arm.observe();
  JointVector truth = rig.twin->joint_positions();
  for (int j = 0; j < kNumJoints; ++j) EXPECT_NEAR(obs.joint_positions[j], truth[j], 0.004) << kJointNames[j];
  // Torque on with goal = present: gravity does not pull the arm away.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const JointVector settled = rig.twin->joint_positions();
  for (int j = 0; j < kNumJoints; ++j) EXPECT_NEAR(settled[j], truth[j], 0.01) << kJointNames[j];

  // Moving: raise the arm a little and turn it.
  JointVector target = obs.joint_positions;
  target[kShoulderPan] += 0.3;
  target[kShoulderLift] -= 0.2;
  target[kElbowFlex] += 0.2;
  target[kGripper] = 0.8;
  for (int tick = 0; tick < 45; ++tick) {
    arm.observe();
    arm.act(target);
  }
  obs = arm.observe();
  truth = rig.twin->joint_positions();
  for (int j = 0; j < kNumJoints; ++j) {
    EXPECT_NEAR(obs.joint_positions[j], target[j], 0.02) << kJointNames[j];
    EXPECT_NEAR(truth[j], obs.joint_positions[j], 0.004) << kJointNames[j];
  }
  // The end effector from the injected kinematics equals the simulator's own `ee` site.
  Pose sim_ee;
  rig.twin->with_backend([&](JointBackend&) { sim_ee = rig.backend->simulator().end_effector(); });
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(obs.end_effector.position[k], sim_ee.position[k], 0.003) << k;

  // Torque off: the joints hold where they were (the gearbox), and a hand can move them.
  arm.stop();
  const JointVector before = rig.twin->joint_positions();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const JointVector after = rig.twin->joint_positions();
  for (int j = 0; j < kNumJoints; ++j) EXPECT_NEAR(after[j], before[j], 0.02) << kJointNames[j];
  JointVector pose = after;
  pose[kWristFlex] -= 0.3;
  rig.twin->with_backend([&](JointBackend& b) { b.set_hand(pose); });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_NEAR(arm.read_joint_positions()[kWristFlex], pose[kWristFlex], 0.03);
}

}  // namespace
}  // namespace vlascope
