#include "hardware/servo_twin.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include "common/error.h"
#include "hardware/units.h"

namespace vlascope {

using namespace feetech;

namespace {
constexpr double kTicksPerRad = kTicksPerTurn / (2 * M_PI);

// Per address: writable by the host, and whether it lives in EEPROM (saved when Lock = 0).
struct AddressMap {
  std::array<bool, 256> writable{}, persistent{};
  AddressMap() {
    for (const Register& r : sts3215_control_table())
      for (int a = r.address; a < r.address + r.size; ++a) {
        writable[a] = r.writable;
        persistent[a] = r.memory != Memory::ram;
      }
  }
};
const AddressMap& address_map() {
  static const AddressMap map;
  return map;
}
}  // namespace

// ---- first-order backend --------------------------------------------------------------------------

FirstOrderJointBackend::FirstOrderJointBackend(const JointVector& initial, const JointLimits& stops,
                                               FirstOrderOptions options)
    : q_(initial), target_(initial), hand_(initial), stops_(stops), options_(options) {}

void FirstOrderJointBackend::set_targets(const JointVector& target_rad, const std::array<bool, kNumJoints>& powered) {
  target_ = target_rad;
  powered_ = powered;
}

void FirstOrderJointBackend::step(double dt) {
  if (dt <= 0) return;
  const double decay = std::exp(-dt / options_.time_constant_s);
  for (int j = 0; j < kNumJoints; ++j) {
    const double before = q_[j];
    double q = q_[j];
    if (powered_[j]) {
      double next = target_[j] + (q - target_[j]) * decay;
      const double limit = options_.max_speed * dt;
      q += std::clamp(next - q, -limit, limit);
    } else if (hand_active_) {
      const double limit = options_.hand_speed * dt;
      q += std::clamp(hand_[j] - q, -limit, limit);
    }
    q = std::clamp(q, stops_.lower[j], stops_.upper[j]);
    q_[j] = q;
    v_[j] = (q - before) / dt;
  }
}

JointVector FirstOrderJointBackend::efforts() const {
  JointVector e{};
  for (int j = 0; j < kNumJoints; ++j)
    if (powered_[j]) e[j] = std::clamp((target_[j] - q_[j]) / 0.2, -1.0, 1.0);  // saturates at 0.2 rad error
  return e;
}

void FirstOrderJointBackend::set_hand(const JointVector& pose) {
  for (int j = 0; j < kNumJoints; ++j) hand_[j] = std::clamp(pose[j], stops_.lower[j], stops_.upper[j]);
  hand_active_ = true;
}

void FirstOrderJointBackend::release_hand() { hand_active_ = false; }

bool FirstOrderJointBackend::hand_arrived(double tolerance) const {
  for (int j = 0; j < kNumJoints; ++j)
    if (!powered_[j] && std::abs(q_[j] - hand_[j]) > tolerance) return false;
  return true;
}

void FirstOrderJointBackend::teleport(const JointVector& q) {
  for (int j = 0; j < kNumJoints; ++j) q_[j] = std::clamp(q[j], stops_.lower[j], stops_.upper[j]);
  v_ = {};
}

// ---- mounting ---------------------------------------------------------------------------------------

double ServoMounting::ticks(int joint, double q) const {
  return tick_at_reference[joint] + direction[joint] * (q - reference_rad[joint]) * kTicksPerRad;
}

double ServoMounting::radians(int joint, double t) const {
  return reference_rad[joint] + (t - tick_at_reference[joint]) / (direction[joint] * kTicksPerRad);
}

ServoMounting default_so100_mounting() {
  const UnitMapping units;
  ServoMounting m;
  const JointVector half_range{1.92, 1.75, 1.745, 1.66, 2.79, 0};  // menagerie ranges (so100.md §1.2)
  for (int j = 0; j < kGripper; ++j) {
    m.reference_rad[j] = units.offset_rad[j];
    m.direction[j] = units.sign[j];
    m.stops.lower[j] = m.reference_rad[j] - half_range[j];
    m.stops.upper[j] = m.reference_rad[j] + half_range[j];
  }
  m.stops.lower[kGripper] = units.gripper_closed_rad;
  m.stops.upper[kGripper] = units.gripper_open_rad;
  m.reference_rad[kGripper] = (units.gripper_closed_rad + units.gripper_open_rad) / 2;
  m.direction[kGripper] = 1;
  m.tick_at_reference = {2048 + 310, 2048 - 420, 2048 + 190, 2048 - 260, 2048 + 75, 2048 - 130};
  return m;
}

ArmCalibration lerobot_calibration_of(const ServoMounting& m, const std::array<int, kNumJoints>& ids) {
  ArmCalibration cal{};
  for (int j = 0; j < kNumJoints; ++j) {
    MotorCalibration& c = cal[j];
    c.id = ids[j];
    c.drive_mode = 0;
    c.homing_offset = static_cast<int>(std::lround(m.ticks(j, m.reference_rad[j]))) - kMaxTick / 2;
    if (j == kWristRoll) {
      c.range_min = 0;
      c.range_max = kMaxTick;
      continue;
    }
    const int a = static_cast<int>(std::lround(m.ticks(j, m.stops.lower[j]))) - c.homing_offset;
    const int b = static_cast<int>(std::lround(m.ticks(j, m.stops.upper[j]))) - c.homing_offset;
    c.range_min = std::min(a, b);
    c.range_max = std::max(a, b);
  }
  return cal;
}

// ---- the servos -------------------------------------------------------------------------------------

ServoBusTwin::ServoBusTwin(TwinOptions options, std::unique_ptr<JointBackend> backend)
    : options_(std::move(options)), backend_(std::move(backend)), rng_(options_.seed) {
  require(backend_ != nullptr, "servo twin: no joint backend");
  servos_.resize(kNumJoints);
  const JointVector q = backend_->positions();
  const ArmCalibration cal = expected_calibration();
  for (int j = 0; j < kNumJoints; ++j) {
    Servo& s = servos_[j];
    s.joint = j;
    s.actual_ticks = options_.mounting.ticks(j, q[j]);
    factory_reset(s, false);
    if (options_.calibrated) {
      put(s, reg::Homing_Offset, cal[j].homing_offset);
      put(s, reg::Min_Position_Limit, cal[j].range_min);
      put(s, reg::Max_Position_Limit, cal[j].range_max);
      put(s, reg::Phase, get(s, reg::Phase) & ~0x10);
      s.saved = s.table;
    }
  }
  sync_registers_from_backend();
  for (Servo& s : servos_) {
    std::memcpy(&s.table[reg::Goal_Position.address], &s.table[reg::Present_Position.address], 2);
  }
  push_targets_to_backend();
}

std::shared_ptr<ServoBusTwin> ServoBusTwin::first_order(TwinOptions options, FirstOrderOptions model) {
  auto backend =
      std::make_unique<FirstOrderJointBackend>(options.mounting.reference_rad, options.mounting.stops, model);
  return std::make_shared<ServoBusTwin>(std::move(options), std::move(backend));
}

void ServoBusTwin::factory_reset(Servo& s, bool keep_id) {
  const int id = keep_id ? id_of(s) : options_.ids[s.joint];
  s.table.fill(0);
  s.table[reg::Firmware_Major_Version.address] = static_cast<uint8_t>(options_.firmware_major);
  s.table[reg::Firmware_Minor_Version.address] = static_cast<uint8_t>(options_.firmware_minor);
  put(s, reg::Model_Number, options_.model_number);
  put(s, reg::ID, id);
  put(s, reg::Baud_Rate, 0);
  put(s, reg::Return_Delay_Time, 0);
  put(s, reg::Response_Status_Level, 1);
  put(s, reg::Min_Position_Limit, 0);
  put(s, reg::Max_Position_Limit, kMaxTick);
  put(s, reg::Max_Temperature_Limit, 70);
  put(s, reg::Max_Voltage_Limit, 140);
  put(s, reg::Min_Voltage_Limit, 40);
  put(s, reg::Max_Torque_Limit, 1000);
  put(s, reg::Phase, 0x1C);  // bit 4 set: multi-turn feedback, which LeRobot's configure clears
  put(s, reg::Unloading_Condition, 0x2C);
  put(s, reg::LED_Alarm_Condition, 0x2F);
  put(s, reg::P_Coefficient, 32);
  put(s, reg::D_Coefficient, 32);
  put(s, reg::I_Coefficient, 0);
  put(s, reg::Minimum_Startup_Force, 16);
  put(s, reg::CW_Dead_Zone, 1);
  put(s, reg::CCW_Dead_Zone, 1);
  put(s, reg::Protection_Current, 511);
  put(s, reg::Angular_Resolution, 1);
  put(s, reg::Homing_Offset, 0);
  put(s, reg::Operating_Mode, 0);
  put(s, reg::Protective_Torque, 20);
  put(s, reg::Protection_Time, 200);
  put(s, reg::Overload_Torque, 80);
  put(s, reg::Velocity_P, 10);
  put(s, reg::Over_Current_Protection_Time, 200);
  put(s, reg::Velocity_I, 200);
  put(s, reg::Moving_Velocity_Threshold, 1);
  put(s, reg::DTs, 0);
  put(s, reg::Velocity_Unit_factor, 0);
  put(s, reg::Maximum_Velocity_Limit, 0);
  put(s, reg::Maximum_Acceleration, 0);
  put(s, reg::Acceleration_Multiplier, 0);
  s.saved = s.table;
  // RAM after power-up.
  put(s, reg::Torque_Enable, 0);
  put(s, reg::Acceleration, 0);
  put(s, reg::Torque_Limit, get(s, reg::Max_Torque_Limit));
  put(s, reg::Lock, 1);
  s.reg_pending = false;
}

ServoBusTwin::Servo* ServoBusTwin::find(int id) {
  for (Servo& s : servos_)
    if (id_of(s) == id) return &s;
  return nullptr;
}

const ServoBusTwin::Servo& ServoBusTwin::servo_or_throw(int id) const {
  for (const Servo& s : servos_)
    if (id_of(s) == id) return s;
  throw Error("servo twin: no servo with ID " + std::to_string(id));
}

int ServoBusTwin::get(const Servo& s, const Register& r) const { return decode_value(r, &s.table[r.address]); }

void ServoBusTwin::put(Servo& s, const Register& r, int value) {
  std::vector<uint8_t> bytes = encode_value(r, value);
  std::copy(bytes.begin(), bytes.end(), s.table.begin() + r.address);
}

uint8_t ServoBusTwin::error_byte(const Servo& s) const { return faults_.overload.count(id_of(s)) ? kErrorOverload : 0; }

void ServoBusTwin::sync_registers_from_backend() {
  const JointVector q = backend_->positions(), v = backend_->velocities(), e = backend_->efforts();
  for (Servo& s : servos_) {
    const int j = s.joint;
    s.actual_ticks = options_.mounting.ticks(j, q[j]);
    int present = static_cast<int>(std::lround(s.actual_ticks)) - get(s, reg::Homing_Offset);
    if (!(get(s, reg::Phase) & 0x10)) present = ((present % kTicksPerTurn) + kTicksPerTurn) % kTicksPerTurn;
    present = std::clamp(present, -32767, 32767);
    put(s, reg::Present_Position, present);
    const int speed = static_cast<int>(std::lround(v[j] * options_.mounting.direction[j] * kTicksPerRad));
    put(s, reg::Present_Velocity, std::clamp(speed, -32767, 32767));
    put(s, reg::Present_Load, std::clamp(static_cast<int>(std::lround(e[j] * 1000)), -1023, 1023));
    put(s, reg::Present_Voltage, 120);
    put(s, reg::Present_Temperature, 32);
    put(s, reg::Status, error_byte(s));
    put(s, reg::Moving, std::abs(speed) > 20 ? 1 : 0);
    put(s, reg::Present_Current, std::min(2000, static_cast<int>(std::lround(std::abs(e[j]) * 400))));
  }
}

void ServoBusTwin::push_targets_to_backend() {
  JointVector target = backend_->positions();
  std::array<bool, kNumJoints> powered{};
  for (const Servo& s : servos_) {
    const int j = s.joint;
    powered[j] = get(s, reg::Torque_Enable) == 1 && get(s, reg::Operating_Mode) == 0;
    if (!powered[j]) continue;
    int goal = get(s, reg::Goal_Position);
    const int lo = get(s, reg::Min_Position_Limit), hi = get(s, reg::Max_Position_Limit);
    if (lo < hi) goal = std::clamp(goal, lo, hi);  // the servo's angle limits (0 … 0 would mean multi-turn)
    int actual = goal + get(s, reg::Homing_Offset);
    if (!(get(s, reg::Phase) & 0x10)) actual = ((actual % kTicksPerTurn) + kTicksPerTurn) % kTicksPerTurn;
    target[j] = options_.mounting.radians(j, actual);
  }
  backend_->set_targets(target, powered);
}

void ServoBusTwin::apply_write(Servo& s, uint8_t address, const uint8_t* data, size_t size, double now) {
  const AddressMap& map = address_map();
  const int torque_before = get(s, reg::Torque_Enable);
  for (size_t i = 0; i < size && address + i < 256; ++i) {
    const size_t a = address + i;
    if (!map.writable[a]) continue;  // read-only bytes are left alone
    s.table[a] = data[i];
    if (map.persistent[a] && get(s, reg::Lock) == 0) s.saved[a] = data[i];
  }
  const size_t end = address + size;
  auto covers = [&](const Register& r) { return address <= r.address && end >= r.address + r.size; };
  if (covers(reg::Goal_Position)) {
    goals_.push_back({now, id_of(s), get(s, reg::Goal_Position)});
    if (goals_.size() > 200000) goals_.erase(goals_.begin(), goals_.begin() + 100000);
  }
  if (covers(reg::Torque_Enable) && get(s, reg::Torque_Enable) == 128) {
    // "128: the current position becomes 2048": a homing offset, stored like OFSCAL does.
    put(s, reg::Homing_Offset, static_cast<int>(std::lround(s.actual_ticks)) - 2048);
    for (int a = reg::Homing_Offset.address; a < reg::Homing_Offset.address + 2; ++a) s.saved[a] = s.table[a];
    put(s, reg::Torque_Enable, torque_before);
  }
  push_targets_to_backend();
  sync_registers_from_backend();
}

std::vector<uint8_t> ServoBusTwin::corrupt(std::vector<uint8_t> bytes) {
  if (faults_.drop_rate <= 0 && faults_.corrupt_rate <= 0) return bytes;
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<uint8_t> out;
  out.reserve(bytes.size());
  for (uint8_t b : bytes) {
    if (u(rng_) < faults_.drop_rate) {
      ++stats_.dropped_bytes;
      continue;
    }
    if (u(rng_) < faults_.corrupt_rate) {
      b ^= static_cast<uint8_t>(1 + rng_() % 255);
      ++stats_.corrupted_bytes;
    }
    out.push_back(b);
  }
  return out;
}

void ServoBusTwin::reply(const Servo& s, const std::vector<uint8_t>& data, double now, std::vector<Outgoing>& out,
                         int as_id) {
  const int id = as_id >= 0 ? as_id : id_of(s);
  std::vector<uint8_t> bytes = status_packet(static_cast<uint8_t>(id), error_byte(s), data);
  const double byte_time = options_.wire_baud > 0 ? 10.0 / options_.wire_baud : 0;
  const double start = std::max(now + faults_.reply_delay_s, line_free_);
  const double done = start + bytes.size() * byte_time;
  line_free_ = done;
  ++stats_.replies;
  if (faults_.drop_next_replies > 0) {
    --faults_.drop_next_replies;
    stats_.dropped_bytes += bytes.size();
    return;
  }
  if (faults_.garble_next_replies > 0) {
    // The checksum byte: the header and length stay intact, so the host discards exactly this reply.
    --faults_.garble_next_replies;
    bytes.back() ^= 0xFF;
    ++stats_.corrupted_bytes;
  }
  bytes = corrupt(std::move(bytes));
  if (!bytes.empty()) out.push_back({done, std::move(bytes)});
}

void ServoBusTwin::handle(const Packet& p, double now, std::vector<Outgoing>& out) {
  const auto ins = static_cast<Instruction>(p.code);
  const bool broadcast = p.id == kBroadcastId;
  // Servos this packet is for; silent servos neither act nor answer.
  std::vector<Servo*> targets;
  for (Servo& s : servos_)
    if ((broadcast || id_of(s) == p.id) && !faults_.silent.count(id_of(s))) targets.push_back(&s);
  auto acknowledges = [&](const Servo& s) { return !broadcast && get(s, reg::Response_Status_Level) >= 1; };
  const std::vector<uint8_t>& a = p.params;

  switch (ins) {
    case Instruction::ping:
      ++stats_.pings;
      for (Servo* s : targets) reply(*s, {}, now, out);  // broadcast PING: everyone answers, in ID order
      return;
    case Instruction::read: {
      ++stats_.reads;
      if (a.size() != 2 || broadcast) return;
      for (Servo* s : targets) {
        std::vector<uint8_t> data(a[1], 0);
        for (size_t i = 0; i < data.size() && a[0] + i < 256; ++i) data[i] = s->table[a[0] + i];
        reply(*s, data, now, out);
      }
      return;
    }
    case Instruction::write:
      ++stats_.writes;
      if (a.empty()) return;
      for (Servo* s : targets) {
        const int id = id_of(*s);  // a write to the ID register is acknowledged by the old ID
        apply_write(*s, a[0], a.data() + 1, a.size() - 1, now);
        if (acknowledges(*s)) reply(*s, {}, now, out, id);
      }
      return;
    case Instruction::reg_write:
      ++stats_.other;
      if (a.empty()) return;
      for (Servo* s : targets) {
        s->reg_pending = true;
        s->reg_address = a[0];
        s->reg_data.assign(a.begin() + 1, a.end());
        if (acknowledges(*s)) reply(*s, {}, now, out);
      }
      return;
    case Instruction::action:
      ++stats_.other;
      for (Servo* s : targets) {
        if (s->reg_pending) apply_write(*s, s->reg_address, s->reg_data.data(), s->reg_data.size(), now);
        s->reg_pending = false;
        if (acknowledges(*s)) reply(*s, {}, now, out);
      }
      return;
    case Instruction::reset:
      ++stats_.other;
      for (Servo* s : targets) {
        put(*s, reg::Status, error_byte(*s));
        if (acknowledges(*s)) reply(*s, {}, now, out);
      }
      return;
    case Instruction::restore:
      ++stats_.other;
      for (Servo* s : targets) {
        factory_reset(*s, true);
        push_targets_to_backend();
        sync_registers_from_backend();
        if (acknowledges(*s)) reply(*s, {}, now, out);
      }
      return;
    case Instruction::reboot:
      ++stats_.other;
      for (Servo* s : targets) restart(*s);
      return;  // a rebooting servo does not answer
    case Instruction::backup:
      ++stats_.other;
      for (Servo* s : targets)
        if (acknowledges(*s)) reply(*s, {}, now, out);
      return;
    case Instruction::calibrate_offset:
      ++stats_.other;
      for (Servo* s : targets) {
        const int value = a.size() == 2 ? a[0] | (a[1] << 8) : 2048;
        const int offset = static_cast<int>(std::lround(s->actual_ticks)) - value;
        if (std::abs(offset) <= 2047) {
          put(*s, reg::Homing_Offset, offset);
          for (int k = reg::Homing_Offset.address; k < reg::Homing_Offset.address + 2; ++k) s->saved[k] = s->table[k];
          sync_registers_from_backend();
        }
        if (acknowledges(*s)) reply(*s, {}, now, out);
      }
      return;
    case Instruction::sync_read: {
      ++stats_.sync_reads;
      if (!broadcast || a.size() < 3) return;
      const uint8_t address = a[0], length = a[1];
      for (size_t i = 2; i < a.size(); ++i) {
        Servo* s = find(a[i]);
        if (!s || faults_.silent.count(a[i])) continue;
        std::vector<uint8_t> data(length, 0);
        for (size_t k = 0; k < data.size() && address + k < 256; ++k) data[k] = s->table[address + k];
        reply(*s, data, now, out);
      }
      return;
    }
    case Instruction::sync_write: {
      ++stats_.sync_writes;
      if (!broadcast || a.size() < 2) return;
      const uint8_t address = a[0], length = a[1];
      if ((a.size() - 2) % (length + 1u) != 0) return;  // malformed: a real servo cannot find its block either
      for (size_t i = 2; i + length < a.size(); i += length + 1u) {
        Servo* s = find(a[i]);
        if (!s || faults_.silent.count(a[i])) continue;
        apply_write(*s, address, a.data() + i + 1, length, now);
      }
      return;
    }
  }
  ++stats_.other;  // unknown instruction: ignored, as a servo would
}

std::vector<ServoBusTwin::Outgoing> ServoBusTwin::receive(const uint8_t* data, size_t size, double now) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Outgoing> out;
  advance_locked(now);
  std::vector<uint8_t> incoming = corrupt(std::vector<uint8_t>(data, data + size));
  // Like servo firmware, give up on a packet whose remaining bytes do not follow promptly: otherwise one
  // corrupted LEN byte would make the servos swallow the next several requests.
  if (parser_.buffered() > 0 && now - last_byte_time_ > kPacketTimeout) {
    ++stats_.timed_out_packets;
    parser_.clear();
  }
  last_byte_time_ = now;
  parser_.feed(incoming.data(), incoming.size());
  const double byte_time = options_.wire_baud > 0 ? 10.0 / options_.wire_baud : 0;
  Packet p;
  while (parser_.next(p)) {
    ++stats_.packets;
    // On a wire the servo sees the request only after its last byte.
    handle(p, now + (kHeaderSize + p.params.size() + 2) * byte_time, out);
  }
  stats_.bad_packets = parser_.checksum_errors() + parser_.header_errors();
  return out;
}

void ServoBusTwin::advance(double now) {
  std::lock_guard<std::mutex> lock(mutex_);
  advance_locked(now);
}

void ServoBusTwin::advance_locked(double now) {
  if (clock_ < 0) clock_ = now;
  if (now <= clock_) return;
  push_targets_to_backend();
  double remaining = std::min(1.0, now - clock_);
  while (remaining > 1e-12) {
    const double h = std::min(backend_->max_step(), remaining);
    backend_->step(h);
    remaining -= h;
  }
  clock_ = now;
  sync_registers_from_backend();
}

TwinFaults ServoBusTwin::faults() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return faults_;
}

void ServoBusTwin::set_faults(const TwinFaults& faults) {
  std::lock_guard<std::mutex> lock(mutex_);
  faults_ = faults;
  sync_registers_from_backend();
}

JointVector ServoBusTwin::joint_positions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return backend_->positions();
}

int ServoBusTwin::register_value(int id, const Register& r) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return get(servo_or_throw(id), r);
}

int ServoBusTwin::saved_register_value(int id, const Register& r) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return decode_value(r, &servo_or_throw(id).saved[r.address]);
}

void ServoBusTwin::set_register_value(int id, const Register& r, int value) {
  std::lock_guard<std::mutex> lock(mutex_);
  Servo& s = const_cast<Servo&>(servo_or_throw(id));
  put(s, r, value);
  for (int a = r.address; a < r.address + r.size; ++a)
    if (address_map().persistent[a]) s.saved[a] = s.table[a];
  push_targets_to_backend();
  sync_registers_from_backend();
}

bool ServoBusTwin::torque_enabled(int id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return get(servo_or_throw(id), reg::Torque_Enable) == 1;
}

std::vector<GoalRecord> ServoBusTwin::goal_log() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return goals_;
}

void ServoBusTwin::clear_goal_log() {
  std::lock_guard<std::mutex> lock(mutex_);
  goals_.clear();
}

TwinStats ServoBusTwin::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void ServoBusTwin::power_cycle() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (Servo& s : servos_) restart(s);
}

void ServoBusTwin::restart(Servo& s) {
  const AddressMap& map = address_map();
  for (int a = 0; a < 256; ++a) s.table[a] = map.persistent[a] ? s.saved[a] : 0;
  put(s, reg::Torque_Limit, get(s, reg::Max_Torque_Limit));
  put(s, reg::Lock, 1);
  s.reg_pending = false;
  sync_registers_from_backend();
  std::memcpy(&s.table[reg::Goal_Position.address], &s.table[reg::Present_Position.address], 2);
  push_targets_to_backend();
}

void ServoBusTwin::with_backend(const std::function<void(JointBackend&)>& f) {
  std::lock_guard<std::mutex> lock(mutex_);
  f(*backend_);
  push_targets_to_backend();
  sync_registers_from_backend();
}

// ---- pseudo-terminal ---------------------------------------------------------------------------------

PtyServoTwin::PtyServoTwin(std::shared_ptr<ServoBusTwin> twin, const std::string& link) : twin_(std::move(twin)) {
  require(twin_ != nullptr, "servo twin: nothing to serve");
  master_ = posix_openpt(O_RDWR | O_NOCTTY);
  if (master_ < 0) throw Error(std::string("servo twin: posix_openpt failed: ") + std::strerror(errno));
  char name[128];
  if (grantpt(master_) != 0 || unlockpt(master_) != 0 || ptsname_r(master_, name, sizeof name) != 0) {
    const std::string why = std::strerror(errno);
    ::close(master_);
    throw Error("servo twin: cannot set up the pseudo-terminal: " + why);
  }
  slave_path_ = name;
  // Keep the slave open ourselves: the line stays up while clients come and go, and its raw mode is set
  // before any client opens it (otherwise the line discipline would echo and translate bytes).
  slave_ = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave_ < 0) {
    const std::string why = std::strerror(errno);
    ::close(master_);
    throw Error("servo twin: cannot open " + slave_path_ + ": " + why);
  }
  termios tio{};
  tcgetattr(slave_, &tio);
  cfmakeraw(&tio);
  tcsetattr(slave_, TCSANOW, &tio);
  fcntl(master_, F_SETFL, fcntl(master_, F_GETFL) | O_NONBLOCK);
  fcntl(master_, F_SETFD, FD_CLOEXEC);
  if (!link.empty()) {
    struct stat st {};
    if (::lstat(link.c_str(), &st) == 0) {
      if (!S_ISLNK(st.st_mode)) {
        ::close(slave_);
        ::close(master_);
        throw Error("servo twin: --link " + link + " exists and is not a symlink; not replacing it");
      }
      ::unlink(link.c_str());
    }
    if (::symlink(slave_path_.c_str(), link.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      ::close(slave_);
      ::close(master_);
      throw Error("servo twin: cannot create link " + link + ": " + why);
    }
    link_ = link;
  }
  thread_ = std::thread([this] { run(); });
}

PtyServoTwin::~PtyServoTwin() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (!link_.empty()) ::unlink(link_.c_str());
  if (slave_ >= 0) ::close(slave_);
  if (master_ >= 0) ::close(master_);
}

void PtyServoTwin::run() {
  std::deque<ServoBusTwin::Outgoing> pending;
  uint8_t buffer[1024];
  while (!stop_) {
    double now = steady_seconds();
    while (!pending.empty() && pending.front().send_time <= now) {
      const std::vector<uint8_t>& bytes = pending.front().bytes;
      size_t done = 0;
      const double give_up = now + 0.1;
      while (done < bytes.size() && steady_seconds() < give_up) {
        ssize_t n = ::write(master_, bytes.data() + done, bytes.size() - done);
        if (n > 0)
          done += static_cast<size_t>(n);
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
          break;
        else {
          pollfd p{master_, POLLOUT, 0};
          ::poll(&p, 1, 1);
        }
      }
      pending.pop_front();
    }
    double wait = 0.001;
    if (!pending.empty()) wait = std::clamp(pending.front().send_time - now, 0.0, wait);
    timespec ts{0, static_cast<long>(wait * 1e9)};
    pollfd p{master_, POLLIN, 0};
    if (::ppoll(&p, 1, &ts, nullptr) > 0 && (p.revents & POLLIN)) {
      ssize_t n = ::read(master_, buffer, sizeof buffer);
      if (n > 0) {
        for (auto& o : twin_->receive(buffer, static_cast<size_t>(n), steady_seconds())) {
          auto at = std::upper_bound(pending.begin(), pending.end(), o.send_time,
                                     [](double t, const ServoBusTwin::Outgoing& x) { return t < x.send_time; });
          pending.insert(at, std::move(o));
        }
      }
    }
    twin_->advance(steady_seconds());
  }
}

// ---- loopback ----------------------------------------------------------------------------------------

LoopbackTransport::LoopbackTransport(std::shared_ptr<ServoBusTwin> twin, std::string name)
    : twin_(std::move(twin)), name_(std::move(name)) {
  require(twin_ != nullptr, "loopback transport: no twin");
}

void LoopbackTransport::write(const uint8_t* data, size_t size) {
  for (auto& o : twin_->receive(data, size, steady_seconds())) pending_.push_back(std::move(o));
  std::stable_sort(
      pending_.begin(), pending_.end(),
      [](const ServoBusTwin::Outgoing& a, const ServoBusTwin::Outgoing& b) { return a.send_time < b.send_time; });
}

size_t LoopbackTransport::read(uint8_t* data, size_t capacity, double timeout_s) {
  const double deadline = steady_seconds() + std::max(0.0, timeout_s);
  for (;;) {
    const double now = steady_seconds();
    if (!pending_.empty() && pending_.front().send_time <= now) {
      std::vector<uint8_t>& bytes = pending_.front().bytes;
      const size_t n = std::min(capacity, bytes.size());
      std::memcpy(data, bytes.data(), n);
      if (n == bytes.size())
        pending_.pop_front();
      else
        bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
      return n;
    }
    if (now >= deadline) return 0;
    const double until = pending_.empty() ? deadline : std::min(deadline, pending_.front().send_time);
    std::this_thread::sleep_for(std::chrono::duration<double>(std::max(0.0, until - now)));
  }
}

void LoopbackTransport::flush_input() {
  const double now = steady_seconds();
  while (!pending_.empty() && pending_.front().send_time <= now) pending_.pop_front();
}

}  // namespace vlascope
