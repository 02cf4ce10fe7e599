#include "hardware/so100_follower.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "hardware/stop_signal.h"

namespace vlascope {

using namespace feetech;
using Clock = std::chrono::steady_clock;

JointLimits so100_joint_limits() {
  JointLimits l;
  l.lower = {-1.92, -3.32, -0.174, -1.66, -2.79, -0.174};
  l.upper = {1.92, 0.174, 3.14, 1.66, 2.79, 1.75};
  return l;
}

JointVector so100_home_pose() { return {0, -1.57, 1.57, 1.57, -1.57, 0}; }

UnitMapping read_unit_mapping(const std::string& path) {
  std::ifstream in(path);
  require(in.good(), "unit mapping " + path + ": cannot open");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Error("unit mapping " + path + ": not valid JSON: " + e.what());
  }
  require(j.is_object(), "unit mapping " + path + ": expected a JSON object");
  UnitMapping m;
  auto vector = [&](const char* key, JointVector& out, bool signs) {
    if (!j.contains(key)) return;
    const auto& a = j[key];
    require(a.is_array() && (a.size() == 5 || a.size() == 6),
            "unit mapping " + path + ": " + key + " must be an array of 5 or 6 numbers");
    for (size_t i = 0; i < a.size(); ++i) {
      require(a[i].is_number(), "unit mapping " + path + ": " + key + "[" + std::to_string(i) + "] is not a number");
      out[i] = a[i].get<double>();
      if (signs && i < kGripper)
        require(out[i] == 1 || out[i] == -1,
                "unit mapping " + path + ": " + key + "[" + std::to_string(i) + "] must be 1 or -1");
    }
  };
  vector("sign", m.sign, true);
  vector("offset_rad", m.offset_rad, false);
  auto number = [&](const char* key, double& out) {
    if (!j.contains(key)) return;
    require(j[key].is_number(), "unit mapping " + path + ": " + key + " is not a number");
    out = j[key].get<double>();
  };
  number("gripper_closed_rad", m.gripper_closed_rad);
  number("gripper_open_rad", m.gripper_open_rad);
  require(m.gripper_open_rad != m.gripper_closed_rad, "unit mapping " + path + ": gripper open == closed");
  for (const auto& item : j.items())
    require(item.key() == "sign" || item.key() == "offset_rad" || item.key() == "gripper_closed_rad" ||
                item.key() == "gripper_open_rad",
            "unit mapping " + path + ": unknown key '" + item.key() + "'");
  return m;
}

void write_unit_mapping(const std::string& path, const UnitMapping& m) {
  nlohmann::ordered_json j;
  j["sign"] = std::vector<double>(m.sign.begin(), m.sign.begin() + kGripper);
  j["offset_rad"] = std::vector<double>(m.offset_rad.begin(), m.offset_rad.begin() + kGripper);
  j["gripper_closed_rad"] = m.gripper_closed_rad;
  j["gripper_open_rad"] = m.gripper_open_rad;
  std::ofstream out(path);
  require(out.good(), "unit mapping " + path + ": cannot write");
  out << j.dump(4) << "\n";
}

WatchdogAction parse_watchdog_action(const std::string& text) {
  if (text == "hold") return WatchdogAction::hold;
  if (text == "torque-off" || text == "torque_off") return WatchdogAction::torque_off;
  throw Error("--watchdog-action: unknown action '" + text + "' (hold, torque-off)");
}

So100Follower::So100Follower(So100Config config)
    : So100Follower(open_serial_transport(config.bus.port, config.bus.baud_rate, config.bus.transport), config) {}

So100Follower::So100Follower(std::unique_ptr<Transport> transport, So100Config config) : config_(std::move(config)) {
  require(config_.control_hz > 0 && config_.control_hz <= 1000, "SO-100: control rate must be in (0, 1000] Hz");
  arm_ = std::make_unique<So100Arm>(std::move(transport), config_.bus);
  port_ = arm_->port();
  if (config_.handle_ctrl_c) install_stop_signal_handler();
  try {
    connect();
  } catch (...) {
    std::lock_guard<std::mutex> lock(bus_mutex_);
    safe_stop_locked("connect failed");
    throw;
  }
  start_safety_thread();
}

So100Follower::~So100Follower() {
  quit_ = true;
  if (safety_thread_.joinable()) safety_thread_.join();
  std::lock_guard<std::mutex> lock(bus_mutex_);
  if (config_.torque_off_on_close && torque_on_) {
    arm_->broadcast_torque_off();
    try {
      arm_->disable_torque();
    } catch (...) {
      // the broadcast already went out; nothing else to try
    }
    torque_on_ = false;
  }
}

std::vector<std::string> So100Follower::camera_names() const {
  std::vector<std::string> names;
  for (const CameraConfig& c : config_.cameras) names.push_back(c.name);
  return names;
}

// ---- connecting ----------------------------------------------------------------------------------

void So100Follower::connect() {
  std::lock_guard<std::mutex> lock(bus_mutex_);
  arm_->handshake();
  arm_->disable_torque();  // and Lock 0: EEPROM writable for calibration and configuration

  if (config_.calibration) {
    calibration_ = *config_.calibration;
    for (int j = 0; j < kNumJoints; ++j)
      require(calibration_[j].id == config_.bus.ids[j], "SO-100 on " + port_ + ": the calibration's " + kJointNames[j] +
                                                            " is servo " + std::to_string(calibration_[j].id) +
                                                            ", but the arm is configured with ID " +
                                                            std::to_string(config_.bus.ids[j]));
    if (!arm_->calibration_matches(calibration_)) {
      require(config_.write_calibration_on_mismatch,
              "SO-100 on " + port_ +
                  ": the servos' homing offsets/limits differ from the calibration file; "
                  "recalibrate (vlascope calibrate) or allow writing the file's values");
      std::fprintf(stderr, "SO-100 on %s: servos disagree with the calibration file; writing the file's values\n",
                   port_.c_str());
      arm_->write_calibration(calibration_);
    }
  } else {
    calibration_ = arm_->read_calibration();
    bool factory = true;
    for (const MotorCalibration& c : calibration_) {
      require(c.range_min < c.range_max, "SO-100 on " + port_ + ": servo " + std::to_string(c.id) +
                                             " has position limits " + std::to_string(c.range_min) + "…" +
                                             std::to_string(c.range_max) + "; run vlascope calibrate");
      factory = factory && c.homing_offset == 0 && c.range_min == 0 && c.range_max == kMaxTick;
    }
    require(!factory, "SO-100 on " + port_ +
                          ": the servos hold factory settings (no homing offset, limits 0…4095): "
                          "the arm is not calibrated; run `vlascope calibrate --port " +
                          port_ + "`");
  }

  if (config_.configure) configure_servos();

  for (const CameraConfig& c : config_.cameras) cameras_.push_back(std::make_unique<Camera>(c));

  // Goal := present before torque on: a servo whose goal register is stale would otherwise jump to it.
  arm_->write_goals(hold_goal_locked(arm_->read_positions()));
  arm_->enable_torque();
  torque_on_ = true;
  running_ = true;
  read_locked();
  episode_start_ = last_reading_;
}

void So100Follower::configure_servos() {
  // LeRobot's SO follower configure(), with torque disabled (connect() did that).
  for (int j = 0; j < kNumJoints; ++j) {
    const int id = config_.bus.ids[j];
    FeetechBus& bus = arm_->bus();
    bus.write_register(id, reg::Return_Delay_Time, 0);
    bus.write_register(id, reg::Maximum_Acceleration, 254);
    bus.write_register(id, reg::Acceleration, 254);
    const int phase = bus.read_register(id, reg::Phase);
    if (phase & 0x10) bus.write_register(id, reg::Phase, phase & ~0x10);  // single-turn feedback: 0…4095
    bus.write_register(id, reg::Operating_Mode, 0);                       // position mode
    bus.write_register(id, reg::P_Coefficient, config_.p_coefficient);
    bus.write_register(id, reg::I_Coefficient, config_.i_coefficient);
    bus.write_register(id, reg::D_Coefficient, config_.d_coefficient);
    if (j == kGripper) {
      bus.write_register(id, reg::Max_Torque_Limit, config_.gripper_max_torque);
      bus.write_register(id, reg::Protection_Current, config_.gripper_protection_current);
      bus.write_register(id, reg::Overload_Torque, config_.gripper_overload_torque);
    }
  }
}

// ---- safety ----------------------------------------------------------------------------------------

void So100Follower::start_safety_thread() {
  safety_thread_ = std::thread([this] { safety_loop(); });
}

void So100Follower::safety_loop() {
  while (!quit_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (stop_requested()) {
      if (torque_on_) safe_stop("Ctrl-C");
      continue;
    }
    if (config_.watchdog_timeout_s <= 0 || !torque_on_ || !running_ || held_) continue;
    if (steady_seconds() - last_reading_ <= config_.watchdog_timeout_s) continue;
    std::lock_guard<std::mutex> lock(bus_mutex_);
    // Again under the lock: enable_torque() (reset) may have held it while this thread looked, with
    // running_ already set and last_reading_ not yet fresh; it has read the arm by now.
    const double silent = steady_seconds() - last_reading_;
    if (!torque_on_ || !running_ || held_ || silent <= config_.watchdog_timeout_s) continue;
    ++counters_.watchdog_trips;
    char why[128];
    std::snprintf(why, sizeof why, "watchdog: no joint reading for %.2f s", silent);
    if (config_.watchdog_action == WatchdogAction::torque_off) {
      safe_stop_locked(why);
      continue;
    }
    try {
      TickVector here;
      read_locked(&here);  // freshest position; also feeds the watchdog
      arm_->write_goals(hold_goal_locked(here));
      held_ = true;
      std::fprintf(stderr, "SO-100 on %s: %s; holding position until the next command\n", port_.c_str(), why);
    } catch (const std::exception& e) {
      safe_stop_locked(std::string(why) + ", and holding failed: " + e.what());
    }
  }
}

void So100Follower::safe_stop(const std::string& reason) noexcept {
  std::lock_guard<std::mutex> lock(bus_mutex_);
  safe_stop_locked(reason);
}

void So100Follower::safe_stop_locked(const std::string& reason) noexcept {
  ++counters_.safe_stops;
  running_ = false;
  held_ = false;
  try {
    if (stop_reason_.empty()) stop_reason_ = reason;
  } catch (...) {
  }
  // Broadcast first: it needs no reply, so it reaches every servo still listening even if one is dead.
  arm_->broadcast_torque_off(3);
  try {
    std::vector<int> ids(config_.bus.ids.begin(), config_.bus.ids.end());
    std::vector<uint8_t> bits;
    std::vector<int> on = arm_->bus().sync_read_register(reg::Torque_Enable, ids, &bits);
    for (size_t i = 0; i < ids.size(); ++i)
      if (on[i] != 0) arm_->bus().write_register(ids[i], reg::Torque_Enable, 0, &bits[i]);
  } catch (...) {
    // A servo that does not answer cannot be verified; the broadcasts were sent.
  }
  torque_on_ = false;
}

void So100Follower::ensure_running(const char* what) {
  if (stop_requested()) throw Error("SO-100 on " + port_ + ": " + what + ": interrupted (Ctrl-C); torque is off");
  if (!running_) {
    std::lock_guard<std::mutex> lock(bus_mutex_);
    throw Error("SO-100 on " + port_ + ": " + what + " while the arm is stopped (" +
                (stop_reason_.empty() ? "torque off" : stop_reason_) + "); call reset() to resume");
  }
}

template <class F>
auto So100Follower::guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    safe_stop(std::string(what) + ": " + e.what());
    throw;
  }
}

std::string So100Follower::stop_reason() const {
  std::lock_guard<std::mutex> lock(bus_mutex_);
  return stop_reason_;
}

SafetyCounters So100Follower::safety_counters() const {
  std::lock_guard<std::mutex> lock(bus_mutex_);
  return counters_;
}

BusStats So100Follower::bus_stats() {
  std::lock_guard<std::mutex> lock(bus_mutex_);
  return arm_->bus().stats();
}

// ---- units -------------------------------------------------------------------------------------------

JointVector So100Follower::ticks_to_radians(const TickVector& ticks) const {
  return from_lerobot(ticks_to_lerobot(ticks, calibration_, config_.arm_norm_mode), config_.units);
}

TickVector So100Follower::radians_to_ticks(const JointVector& radians) const {
  return lerobot_to_ticks(to_lerobot(radians, config_.units), calibration_, config_.arm_norm_mode);
}

// ---- reading and writing -------------------------------------------------------------------------------

JointVector So100Follower::read_locked(TickVector* ticks_out) {
  std::array<uint8_t, kNumJoints> bits{};
  const TickVector ticks = arm_->read_positions(bits);
  for (int j = 0; j < kNumJoints; ++j)
    if (bits[j])
      throw BusError("SO-100 on " + port_ + ": " + arm_->label(j) + " reports " + describe_error_bits(bits[j]),
                     BusError::Kind::servo_error, config_.bus.ids[j], bits[j]);
  const JointVector q = ticks_to_radians(ticks);
  last_positions_ = q;
  have_positions_ = true;
  last_reading_ = steady_seconds();
  if (ticks_out) *ticks_out = ticks;
  return q;
}

std::pair<double, double> So100Follower::allowed_range(int joint) const {
  // The calibrated range is checked here, before the step limit, not only as a clamp on the ticks sent:
  // a clamp after the step check could move a goal any distance (an arm outside a narrowed range). The
  // tick clamp that follows only absorbs rounding.
  TickVector low{}, high{};
  for (int j = 0; j < kNumJoints; ++j) low[j] = calibration_[j].range_min, high[j] = calibration_[j].range_max;
  const double a = ticks_to_radians(low)[joint], b = ticks_to_radians(high)[joint];  // a joint's sign may flip them
  const double lower = std::max(config_.joint_limits.lower[joint], std::min(a, b));
  const double upper = std::min(config_.joint_limits.upper[joint], std::max(a, b));
  if (lower > upper) {
    char why[256];
    std::snprintf(why, sizeof why,
                  ": %s's calibrated range [%.3f, %.3f] rad and its joint limits [%.3f, %.3f] do not overlap; check "
                  "the calibration file and the unit mapping",
                  kJointNames[joint], std::min(a, b), std::max(a, b), config_.joint_limits.lower[joint],
                  config_.joint_limits.upper[joint]);
    throw Error("SO-100 on " + port_ + why);
  }
  return {lower, upper};
}

double So100Follower::goal_inside_limits_locked(int joint, double goal, double present) {
  // The step limit keeps a goal between the present position and the limits, so the goal is inside the
  // limits whenever the arm is, or is outside by at most one step (then the limit is at most a step away).
  // An arm further out (left there by hand with torque off, pushed there, or a unit mapping or limits that
  // do not fit it) has no goal that is both inside the limits and within one step: clamping to the limit
  // would jump it there at the servo's full speed, and stepping would command a pose outside the limits.
  // Neither is safe, so the arm stops (torque off) and the error says what to fix. "Limits" here are the
  // joint limits narrowed to the calibrated range.
  const auto [lower, upper] = allowed_range(joint);
  const double inside = std::clamp(goal, lower, upper);
  const double step = config_.max_step_rad[joint];
  if (step > 0 && std::abs(inside - present) > step + 1e-9) {
    char why[320];
    std::snprintf(why, sizeof why,
                  ": %s is at %.3f rad, %.3f rad outside its joint limits and calibrated range [%.3f, %.3f], more "
                  "than one step "
                  "(%.3f rad): no goal is both inside the limits and within a step; move the joint inside by hand "
                  "(torque is off) or check the unit mapping and joint limits",
                  kJointNames[joint], present, present < lower ? lower - present : present - upper, lower, upper, step);
    throw Error("SO-100 on " + port_ + why);
  }
  if (inside != goal) ++counters_.limit_clamps;
  return inside;
}

TickVector So100Follower::hold_goal_locked(const TickVector& present) {
  const JointVector q = ticks_to_radians(present);
  JointVector inside = q;
  for (int j = 0; j < kNumJoints; ++j) inside[j] = goal_inside_limits_locked(j, q[j], q[j]);
  const TickVector moved = radians_to_ticks(inside);
  TickVector goal = present;
  for (int j = 0; j < kNumJoints; ++j) {
    // Present itself where it is inside: the ticks → radians → ticks round trip truncates and could move it.
    if (inside[j] != q[j]) goal[j] = moved[j];
    goal[j] = std::clamp(goal[j], calibration_[j].range_min, calibration_[j].range_max);
  }
  return goal;
}

JointVector So100Follower::write_locked(const JointVector& targets) {
  for (int j = 0; j < kNumJoints; ++j)
    if (!std::isfinite(targets[j])) throw Error("SO-100 on " + port_ + ": non-finite target for " + kJointNames[j]);
  JointVector goal = targets;
  for (int j = 0; j < kNumJoints; ++j) {
    const auto [lower, upper] = allowed_range(j);
    const double clamped = std::clamp(goal[j], lower, upper);
    if (clamped != goal[j]) ++counters_.limit_clamps;
    goal[j] = clamped;
  }
  // The step limit is relative to where the arm is, so it needs a reading from this tick.
  const double fresh = 1.5 / config_.control_hz;
  if (!have_positions_ || steady_seconds() - last_reading_ > fresh) read_locked();
  for (int j = 0; j < kNumJoints; ++j) {
    const double step = config_.max_step_rad[j];
    if (step <= 0) continue;
    const double limited = std::clamp(goal[j], last_positions_[j] - step, last_positions_[j] + step);
    if (limited != goal[j]) ++counters_.step_clamps;
    goal[j] = limited;
  }
  for (int j = 0; j < kNumJoints; ++j) goal[j] = goal_inside_limits_locked(j, goal[j], last_positions_[j]);
  TickVector ticks = radians_to_ticks(goal);
  for (int j = 0; j < kNumJoints; ++j) {
    const int clamped = std::clamp(ticks[j], calibration_[j].range_min, calibration_[j].range_max);
    if (clamped != ticks[j]) ++counters_.limit_clamps;
    ticks[j] = clamped;
  }
  arm_->write_goals(ticks);
  held_ = false;
  return ticks_to_radians(ticks);
}

void So100Follower::sleep_until_tick() {
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / config_.control_hz));
  const auto now = Clock::now();
  if (!tick_started_) {
    next_tick_ = now;
    tick_started_ = true;
  }
  next_tick_ += period;
  if (next_tick_ < now) {
    std::lock_guard<std::mutex> lock(bus_mutex_);
    ++counters_.overruns;
    next_tick_ = now;
  }
  std::this_thread::sleep_until(next_tick_);
}

JointVector So100Follower::read_joint_positions() {
  return guarded("read", [&] {
    if (stop_requested()) throw Error("SO-100 on " + port_ + ": interrupted (Ctrl-C); torque is off");
    std::lock_guard<std::mutex> lock(bus_mutex_);
    return read_locked();
  });
}

JointVector So100Follower::write_joint_targets(const JointVector& targets) {
  ensure_running("write_joint_targets");
  return guarded("write", [&] {
    std::lock_guard<std::mutex> lock(bus_mutex_);
    return write_locked(targets);
  });
}

JointVector So100Follower::read_lerobot() { return to_lerobot(read_joint_positions(), config_.units); }

void So100Follower::act_lerobot(const JointVector& values) { act(from_lerobot(values, config_.units)); }

Observation So100Follower::observe(CameraFrames frames) {
  return guarded("observe", [&] {
    if (stop_requested()) throw Error("SO-100 on " + port_ + ": interrupted (Ctrl-C); torque is off");
    Observation obs;
    double t;
    {
      std::lock_guard<std::mutex> lock(bus_mutex_);
      obs.joint_positions = read_locked();
      t = last_reading_;
      if (previous_time_ > 0 && t > previous_time_)
        for (int j = 0; j < kNumJoints; ++j)
          obs.joint_velocities[j] = (obs.joint_positions[j] - previous_positions_[j]) / (t - previous_time_);
      previous_positions_ = obs.joint_positions;
      previous_time_ = t;
    }
    obs.timestamp = t - episode_start_;
    if (config_.kinematics) obs.end_effector = config_.kinematics->forward(obs.joint_positions);
    if (frames == CameraFrames::kRead)
      for (auto& camera : cameras_) obs.images[camera->config().name] = camera->latest().image;
    return obs;
  });
}

JointVector So100Follower::act(const JointVector& targets) {
  ensure_running("act");
  return guarded("act", [&] {
    JointVector sent;
    {
      std::lock_guard<std::mutex> lock(bus_mutex_);
      sent = write_locked(targets);
    }
    sleep_until_tick();
    return sent;
  });
}

void So100Follower::enable_torque() {
  if (stop_requested()) throw Error("SO-100 on " + port_ + ": interrupted (Ctrl-C); torque stays off");
  guarded("enable torque", [&] {
    std::lock_guard<std::mutex> lock(bus_mutex_);
    if (torque_on_ && running_) return;
    arm_->write_goals(hold_goal_locked(arm_->read_positions()));
    arm_->enable_torque();
    torque_on_ = true;
    running_ = true;
    held_ = false;
    stop_reason_.clear();
    read_locked();
  });
}

void So100Follower::disable_torque() {
  guarded("disable torque", [&] {
    std::lock_guard<std::mutex> lock(bus_mutex_);
    running_ = false;
    if (stop_reason_.empty()) stop_reason_ = "torque disabled";
    arm_->disable_torque();
    torque_on_ = false;
  });
}

void So100Follower::stop() { safe_stop("stop()"); }

void So100Follower::reset(uint64_t seed) {
  (void)seed;  // the real world cannot be reseeded; the seed only labels the episode
  enable_torque();
  guarded("reset", [&] {
    JointVector from;
    {
      std::lock_guard<std::mutex> lock(bus_mutex_);
      from = read_locked();
    }
    JointVector home = config_.home_rad;
    double distance = 0;
    for (int j = 0; j < kNumJoints; ++j) {
      home[j] = std::clamp(home[j], config_.joint_limits.lower[j], config_.joint_limits.upper[j]);
      distance = std::max(distance, std::abs(home[j] - from[j]));
    }
    const int steps = std::max(1, static_cast<int>(std::ceil(distance / config_.reset_speed * config_.control_hz)));
    tick_started_ = false;
    for (int k = 1; k <= steps; ++k) {
      JointVector target;
      for (int j = 0; j < kNumJoints; ++j) target[j] = from[j] + (home[j] - from[j]) * k / steps;
      act(target);
    }
    const int settle = static_cast<int>(std::ceil(0.3 * config_.control_hz));
    for (int k = 0; k < settle; ++k) act(home);
  });
  std::lock_guard<std::mutex> lock(bus_mutex_);
  episode_start_ = steady_seconds();
  previous_time_ = -1;
  tick_started_ = false;
}

}  // namespace vlascope
