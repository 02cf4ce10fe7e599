// One SO-100 arm on one servo bus: the six STS3215 servos (IDs 1–6 = shoulder_pan … gripper) and what
// the follower, the leader and the calibration procedure all do with them, the way LeRobot does it
// (so100.md §2.9): handshake, torque on/off with the Lock register, calibration in EEPROM, one sync read
// of all positions, one sync write of all goals.
//
// No safety logic here: the follower (so100_follower.h) adds limits, step limits, the watchdog and Ctrl-C.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "hardware/calibration.h"
#include "hardware/feetech_bus.h"
#include "hardware/robot.h"
#include "hardware/serial_transport.h"

namespace vlascope {

using TickVector = std::array<int, kNumJoints>;

struct So100BusConfig {
  std::string port;  // /dev/ttyACM0, a twin's /dev/pts/N, …
  int baud_rate = 1000000;
  TransportKind transport = TransportKind::automatic;
  BusOptions bus;
  std::array<int, kNumJoints> ids{1, 2, 3, 4, 5, 6};
};

struct FirmwareVersion {
  int major = 0, minor = 0;
  std::string text() const { return std::to_string(major) + "." + std::to_string(minor); }
};

class So100Arm {
 public:
  explicit So100Arm(const So100BusConfig& config);  // opens the port (throws Error naming it)
  So100Arm(std::unique_ptr<Transport> transport, const So100BusConfig& config);

  // Pings every servo, checks the model (777 = STS3215) and that all firmware versions agree. Throws Error
  // naming the port and the servo that is missing or wrong.
  void handshake();
  const FirmwareVersion& firmware() const { return firmware_; }

  TickVector read_positions();                // Present_Position, one SYNC READ
  void write_goals(const TickVector& goals);  // Goal_Position, one SYNC WRITE
  // Like read_positions, but the status error bits come back instead of throwing.
  TickVector read_positions(std::array<uint8_t, kNumJoints>& error_bits);

  // LeRobot's order: disable = Torque_Enable 0 then Lock 0 (EEPROM writable); enable = Torque_Enable 1
  // then Lock 1. Acknowledged writes, one servo at a time.
  void disable_torque();
  void enable_torque();
  // Torque_Enable 0 to the broadcast ID, `repeats` times: no replies needed, so it reaches every servo that
  // still listens even when one of them (or the line) has failed. Never throws.
  void broadcast_torque_off(int repeats = 3) noexcept;

  ArmCalibration read_calibration();                          // Homing_Offset and limits from EEPROM
  void write_calibration(const ArmCalibration& calibration);  // needs torque off (Lock 0)
  // The servos' calibration equals `calibration` (homing offset and limits; drive_mode is not on the servo).
  bool calibration_matches(const ArmCalibration& calibration);

  FeetechBus& bus() { return *bus_; }
  const std::string& port() const { return bus_->port(); }
  const std::array<int, kNumJoints>& ids() const { return ids_; }
  std::string label(int joint) const;  // "servo 3 (elbow_flex)"

 private:
  void init();
  std::unique_ptr<FeetechBus> bus_;
  std::array<int, kNumJoints> ids_;
  FirmwareVersion firmware_;
};

// ---- the whole arm in LeRobot units --------------------------------------------------------------

JointVector ticks_to_lerobot(const TickVector& ticks, const ArmCalibration& calibration,
                             NormMode arm_mode = NormMode::degrees);
TickVector lerobot_to_ticks(const JointVector& values, const ArmCalibration& calibration,
                            NormMode arm_mode = NormMode::degrees);

}  // namespace vlascope
