// Building the Robot a command drives from its command-line options, so every command that moves an arm
// takes the same flags and runs unchanged in simulation or on the real SO-100:
//
//   vlascope <command> --robot sim …
//   vlascope <command> --robot so100 --port /dev/ttyACM0 --robot-id my_arm --cameras scene=0,wrist=2
//
//   ArgParser args(...);
//   add_robot_options(args);
//   if (!args.parse(argc, argv)) return 0;
//   std::unique_ptr<Robot> robot = make_robot(args, kinematics);
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/cli.h"
#include "hardware/calibration.h"
#include "hardware/robot.h"
#include "hardware/so100_follower.h"
#include "hardware/so100_leader.h"
#include "interp/rollout.h"

namespace vlascope {

// Which options: --robot and both worlds' (most commands); the real arm's only (collect --robot so100); or both
// worlds' without --robot (sim-vs-real, which drives both).
enum class RobotOptions { kChoice, kSo100Only, kBothWorlds };
void add_robot_options(ArgParser& args, RobotOptions which = RobotOptions::kChoice);
// The SO-100 follower configuration the options describe (calibration found by --robot-id in LeRobot's
// directory, or --calibration FILE; --units overrides the sign/offset mapping; cameras; safety settings).
So100Config so100_config_from(const ArgParser& args);
// "so100": a connected So100Follower. "sim": the simulator (scene and wrist cameras at --sim-size).
// `kinematics` gives the real arm its end-effector pose; by default the simulator's ArmKinematics of
// scenes/pick_cube.xml, so end-effector heights come from the same model in both worlds.
std::unique_ptr<Robot> make_robot(const ArgParser& args, std::shared_ptr<KinematicModel> kinematics = nullptr);
// The two worlds make_robot chooses between, whatever --robot says.
std::unique_ptr<Robot> make_sim_robot(const ArgParser& args);
std::unique_ptr<So100Follower> make_so100_follower(const ArgParser& args,
                                                   std::shared_ptr<KinematicModel> kinematics = nullptr);

// The robots of batched rollouts (interp/rollout.h): lane 0 is `first` (made by make_robot on the calling thread,
// where lane 0 runs), every other lane a new simulator from the options, made on its own thread.
RobotFactory lane_robots(const ArgParser& args, std::shared_ptr<Robot> first);

// The leader arm of teleoperation: --leader PORT, --leader-id / --leader-calibration. The bus settings
// (--transport, --bus-latency-ms) are the follower's, so the command must define those options too.
void add_leader_options(ArgParser& args);
So100LeaderConfig leader_config_from(const ArgParser& args);

// A calibration file if given, else LeRobot's file named `id` for `role` (an Error naming the directory and
// the `vlascope calibrate` call that makes it when missing), else nullopt: the servos' EEPROM.
std::optional<ArmCalibration> find_calibration(const std::string& file, const std::string& id, DeviceRole role,
                                               const std::string& port);

}  // namespace vlascope
