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

#include "common/cli.h"
#include "hardware/robot.h"
#include "hardware/so100_follower.h"

namespace vlascope {

void add_robot_options(ArgParser& args);
// The SO-100 follower configuration the options describe (calibration found by --robot-id in LeRobot's
// directory, or --calibration FILE; --units overrides the sign/offset mapping; cameras; safety settings).
So100Config so100_config_from(const ArgParser& args);
// "so100": a connected So100Follower. "sim": the simulator (scene and wrist cameras at --sim-size).
// `kinematics` gives the real arm its end-effector pose; by default the simulator's ArmKinematics of
// scenes/pick_cube.xml, so end-effector heights come from the same model in both worlds.
std::unique_ptr<Robot> make_robot(const ArgParser& args, std::shared_ptr<KinematicModel> kinematics = nullptr);

}  // namespace vlascope
