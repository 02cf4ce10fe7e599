#include "hardware/so100_arm.h"

#include <set>

#include "common/error.h"

namespace vlascope {

using namespace feetech;

So100Arm::So100Arm(const So100BusConfig& config)
    : So100Arm(open_serial_transport(config.port, config.baud_rate, config.transport), config) {}

So100Arm::So100Arm(std::unique_ptr<Transport> transport, const So100BusConfig& config)
    : bus_(std::make_unique<FeetechBus>(std::move(transport), config.bus)), ids_(config.ids) {
  init();
}

void So100Arm::init() {
  std::set<int> unique(ids_.begin(), ids_.end());
  require(unique.size() == ids_.size(), "SO-100 on " + port() + ": servo IDs must be distinct");
  std::map<int, std::string> names;
  for (int j = 0; j < kNumJoints; ++j) names[ids_[j]] = kJointNames[j];
  bus_->set_servo_names(names);
}

std::string So100Arm::label(int joint) const { return bus_->servo_label(ids_[joint]); }

void So100Arm::handshake() {
  for (int j = 0; j < kNumJoints; ++j) {
    try {
      bus_->ping(ids_[j]);
    } catch (const BusError& e) {
      if (e.kind != BusError::Kind::no_reply) throw;
      throw BusError("SO-100 on " + port() + ": " + label(j) +
                         " does not answer a PING. Check the power supply, the "
                         "cable to this servo and its ID (`vlascope servo scan --port " +
                         port() +
                         "` lists the IDs "
                         "that answer). [" +
                         e.what() + "]",
                     BusError::Kind::no_reply, ids_[j]);
    }
    uint8_t error = 0;
    const int model = bus_->read_register(ids_[j], reg::Model_Number, &error);
    if (model != kModelSts3215)
      throw BusError("SO-100 on " + port() + ": " + label(j) + " is model " + std::to_string(model) + ", expected " +
                         std::to_string(kModelSts3215) + " (STS3215)",
                     BusError::Kind::bad_reply, ids_[j]);
  }
  std::vector<int> ids(ids_.begin(), ids_.end());
  std::vector<int> major = bus_->sync_read_register(reg::Firmware_Major_Version, ids, nullptr);
  std::vector<int> minor = bus_->sync_read_register(reg::Firmware_Minor_Version, ids, nullptr);
  firmware_ = {major[0], minor[0]};
  for (int j = 1; j < kNumJoints; ++j) {
    if (major[j] == major[0] && minor[j] == minor[0]) continue;
    std::string all;
    for (int k = 0; k < kNumJoints; ++k)
      all += (k ? ", " : "") + std::string(kJointNames[k]) + " " + std::to_string(major[k]) + "." +
             std::to_string(minor[k]);
    throw BusError("SO-100 on " + port() + ": servos run different firmware versions (" + all +
                       "); LeRobot requires them to match. Update them with Feetech's tool.",
                   BusError::Kind::bad_reply, ids_[j]);
  }
}

TickVector So100Arm::read_positions() {
  std::vector<int> v = bus_->sync_read_register(reg::Present_Position, std::vector<int>(ids_.begin(), ids_.end()));
  TickVector out;
  std::copy(v.begin(), v.end(), out.begin());
  return out;
}

TickVector So100Arm::read_positions(std::array<uint8_t, kNumJoints>& error_bits) {
  std::vector<uint8_t> bits;
  std::vector<int> v =
      bus_->sync_read_register(reg::Present_Position, std::vector<int>(ids_.begin(), ids_.end()), &bits);
  TickVector out;
  std::copy(v.begin(), v.end(), out.begin());
  std::copy(bits.begin(), bits.end(), error_bits.begin());
  return out;
}

void So100Arm::write_goals(const TickVector& goals) {
  bus_->sync_write_register(reg::Goal_Position, std::vector<int>(ids_.begin(), ids_.end()),
                            std::vector<int>(goals.begin(), goals.end()));
}

void So100Arm::disable_torque() {
  for (int id : ids_) {
    uint8_t bits = 0;  // error bits (e.g. a latched overload) must not stop us from turning torque off
    bus_->write_register(id, reg::Torque_Enable, 0, &bits);
    bus_->write_register(id, reg::Lock, 0, &bits);
  }
}

void So100Arm::enable_torque() {
  for (int id : ids_) {
    bus_->write_register(id, reg::Torque_Enable, 1);
    bus_->write_register(id, reg::Lock, 1);
  }
}

void So100Arm::broadcast_torque_off(int repeats) noexcept {
  for (int i = 0; i < repeats; ++i) {
    try {
      bus_->broadcast_write_register(reg::Torque_Enable, 0);
    } catch (...) {
      // The port itself failed; nothing more can be sent.
      return;
    }
  }
}

ArmCalibration So100Arm::read_calibration() {
  const std::vector<int> ids(ids_.begin(), ids_.end());
  std::vector<int> offset = bus_->sync_read_register(reg::Homing_Offset, ids);
  std::vector<int> lo = bus_->sync_read_register(reg::Min_Position_Limit, ids);
  std::vector<int> hi = bus_->sync_read_register(reg::Max_Position_Limit, ids);
  ArmCalibration cal{};
  for (int j = 0; j < kNumJoints; ++j) cal[j] = {ids_[j], 0, offset[j], lo[j], hi[j]};
  return cal;
}

void So100Arm::write_calibration(const ArmCalibration& calibration) {
  for (int j = 0; j < kNumJoints; ++j) {
    require(calibration[j].id == ids_[j], "SO-100 on " + port() + ": calibration of " + kJointNames[j] + " is for ID " +
                                              std::to_string(calibration[j].id) + ", the arm uses ID " +
                                              std::to_string(ids_[j]));
    bus_->write_register(ids_[j], reg::Homing_Offset, calibration[j].homing_offset);
    bus_->write_register(ids_[j], reg::Min_Position_Limit, calibration[j].range_min);
    bus_->write_register(ids_[j], reg::Max_Position_Limit, calibration[j].range_max);
  }
}

bool So100Arm::calibration_matches(const ArmCalibration& calibration) {
  ArmCalibration on_servos = read_calibration();
  for (int j = 0; j < kNumJoints; ++j) {
    const MotorCalibration &a = on_servos[j], &b = calibration[j];
    if (a.id != b.id || a.homing_offset != b.homing_offset || a.range_min != b.range_min || a.range_max != b.range_max)
      return false;
  }
  return true;
}

JointVector ticks_to_lerobot(const TickVector& ticks, const ArmCalibration& calibration, NormMode arm_mode) {
  const auto modes = lerobot_norm_modes(arm_mode);
  JointVector out{};
  for (int j = 0; j < kNumJoints; ++j) out[j] = ticks_to_lerobot(ticks[j], calibration[j], modes[j]);
  return out;
}

TickVector lerobot_to_ticks(const JointVector& values, const ArmCalibration& calibration, NormMode arm_mode) {
  const auto modes = lerobot_norm_modes(arm_mode);
  TickVector out{};
  for (int j = 0; j < kNumJoints; ++j) out[j] = lerobot_to_ticks(values[j], calibration[j], modes[j]);
  return out;
}

}  // namespace vlascope
