#include "hardware/so100_leader.h"

#include <cstdio>

#include "common/error.h"

namespace vlascope {

using namespace feetech;

So100Leader::So100Leader(So100LeaderConfig config)
    : So100Leader(open_serial_transport(config.bus.port, config.bus.baud_rate, config.bus.transport), config) {}

So100Leader::So100Leader(std::unique_ptr<Transport> transport, So100LeaderConfig config) : config_(std::move(config)) {
  arm_ = std::make_unique<So100Arm>(std::move(transport), config_.bus);
  connect();
}

void So100Leader::connect() {
  const std::string& port = arm_->port();
  arm_->handshake();
  arm_->disable_torque();  // a leader is moved by hand
  if (config_.calibration) {
    calibration_ = *config_.calibration;
    if (!arm_->calibration_matches(calibration_)) {
      std::fprintf(stderr,
                   "SO-100 leader on %s: servos disagree with the calibration file; writing the file's values\n",
                   port.c_str());
      arm_->write_calibration(calibration_);
    }
  } else {
    calibration_ = arm_->read_calibration();
    bool factory = true;
    for (const MotorCalibration& c : calibration_) {
      require(c.range_min < c.range_max, "SO-100 leader on " + port + ": servo " + std::to_string(c.id) +
                                             " has no valid limits; run vlascope calibrate --leader");
      factory = factory && c.homing_offset == 0 && c.range_min == 0 && c.range_max == kMaxTick;
    }
    require(!factory,
            "SO-100 leader on " + port + ": not calibrated; run `vlascope calibrate --port " + port + " --leader`");
  }
  for (int id : config_.bus.ids) arm_->bus().write_register(id, reg::Operating_Mode, 0);
}

JointVector So100Leader::read_lerobot() {
  return ticks_to_lerobot(arm_->read_positions(), calibration_, config_.arm_norm_mode);
}

JointVector So100Leader::read_radians() { return from_lerobot(read_lerobot(), config_.units); }

}  // namespace vlascope
