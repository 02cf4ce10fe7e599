// The SO-100 leader arm (teleoperation): the same six servos, torque off, read only. Its LeRobot values
// are the follower's commands, as in LeRobot's teleoperate loop.
#pragma once

#include <optional>

#include "hardware/calibration.h"
#include "hardware/so100_arm.h"
#include "hardware/units.h"

namespace vlascope {

struct So100LeaderConfig {
  So100BusConfig bus;
  std::optional<ArmCalibration> calibration;  // nullopt: the servos' EEPROM (must not be factory state)
  NormMode arm_norm_mode = NormMode::degrees;
  UnitMapping units;
};

class So100Leader {
 public:
  explicit So100Leader(So100LeaderConfig config);
  So100Leader(std::unique_ptr<Transport> transport, So100LeaderConfig config);

  JointVector read_lerobot();  // one SYNC READ; LeRobot degrees / 0–100
  JointVector read_radians();  // simulator radians through the unit mapping
  const ArmCalibration& calibration() const { return calibration_; }
  So100Arm& arm() { return *arm_; }

 private:
  void connect();
  So100LeaderConfig config_;
  std::unique_ptr<So100Arm> arm_;
  ArmCalibration calibration_{};
};

}  // namespace vlascope
