#include "hardware/feetech_protocol.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"

namespace vlascope::feetech {

const char* instruction_name(uint8_t code) {
  switch (static_cast<Instruction>(code)) {
    case Instruction::ping:
      return "PING";
    case Instruction::read:
      return "READ";
    case Instruction::write:
      return "WRITE";
    case Instruction::reg_write:
      return "REG WRITE";
    case Instruction::action:
      return "ACTION";
    case Instruction::restore:
      return "RESTORE";
    case Instruction::reboot:
      return "REBOOT";
    case Instruction::backup:
      return "BACKUP";
    case Instruction::reset:
      return "RESET";
    case Instruction::calibrate_offset:
      return "CALIBRATE OFFSET";
    case Instruction::sync_read:
      return "SYNC READ";
    case Instruction::sync_write:
      return "SYNC WRITE";
  }
  return "unknown instruction";
}

std::string describe_error_bits(uint8_t error) {
  if (error == 0) return "none";
  static const std::pair<uint8_t, const char*> kNames[] = {{kErrorVoltage, "input voltage error"},
                                                           {kErrorAngleSensor, "angle sensor error"},
                                                           {kErrorOverheat, "overheat"},
                                                           {kErrorOverCurrent, "over-current"},
                                                           {kErrorOverload, "overload"}};
  std::string out;
  uint8_t known = 0;
  for (const auto& [bit, name] : kNames) {
    known |= bit;
    if (!(error & bit)) continue;
    if (!out.empty()) out += ", ";
    out += name;
  }
  if (error & ~known) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%sreserved bits 0x%02x", out.empty() ? "" : ", ", error & ~known);
    out += buf;
  }
  return out;
}

uint16_t encode_sign_magnitude(int value, int sign_bit) {
  if (!(sign_bit > 0 && sign_bit <= 15))
    throw Error("sign-magnitude: sign bit " + std::to_string(sign_bit) + " out of range");
  const int magnitude = std::abs(value);
  if (!(magnitude < (1 << sign_bit)))
    throw Error("sign-magnitude: |" + std::to_string(value) + "| does not fit in " + std::to_string(sign_bit) +
                " bits");
  return static_cast<uint16_t>(magnitude | (value < 0 ? (1 << sign_bit) : 0));
}

int decode_sign_magnitude(uint16_t raw, int sign_bit) {
  const int magnitude = raw & ((1 << sign_bit) - 1);
  return (raw >> sign_bit) & 1 ? -magnitude : magnitude;
}

// ---- control table ------------------------------------------------------------------------------

const std::vector<Register>& sts3215_control_table() {
  static const std::vector<Register> table = {
      reg::Firmware_Major_Version,
      reg::Firmware_Minor_Version,
      reg::Model_Number,
      reg::ID,
      reg::Baud_Rate,
      reg::Return_Delay_Time,
      reg::Response_Status_Level,
      reg::Min_Position_Limit,
      reg::Max_Position_Limit,
      reg::Max_Temperature_Limit,
      reg::Max_Voltage_Limit,
      reg::Min_Voltage_Limit,
      reg::Max_Torque_Limit,
      reg::Phase,
      reg::Unloading_Condition,
      reg::LED_Alarm_Condition,
      reg::P_Coefficient,
      reg::D_Coefficient,
      reg::I_Coefficient,
      reg::Minimum_Startup_Force,
      reg::CW_Dead_Zone,
      reg::CCW_Dead_Zone,
      reg::Protection_Current,
      reg::Angular_Resolution,
      reg::Homing_Offset,
      reg::Operating_Mode,
      reg::Protective_Torque,
      reg::Protection_Time,
      reg::Overload_Torque,
      reg::Velocity_P,
      reg::Over_Current_Protection_Time,
      reg::Velocity_I,
      reg::Torque_Enable,
      reg::Acceleration,
      reg::Goal_Position,
      reg::Goal_Time,
      reg::Goal_Velocity,
      reg::Torque_Limit,
      reg::Lock,
      reg::Present_Position,
      reg::Present_Velocity,
      reg::Present_Load,
      reg::Present_Voltage,
      reg::Present_Temperature,
      reg::Status,
      reg::Moving,
      reg::Present_Current,
      reg::Moving_Velocity_Threshold,
      reg::DTs,
      reg::Velocity_Unit_factor,
      reg::Hts,
      reg::Maximum_Velocity_Limit,
      reg::Maximum_Acceleration,
      reg::Acceleration_Multiplier,
  };
  return table;
}

const Register& find_register(std::string_view name) {
  for (const Register& r : sts3215_control_table())
    if (name == r.name) return r;
  std::string candidates;
  for (const Register& r : sts3215_control_table()) {
    std::string lower_r = r.name, lower_n(name);
    for (auto& c : lower_r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (auto& c : lower_n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!lower_n.empty() && lower_r.find(lower_n.substr(0, std::min<size_t>(4, lower_n.size()))) != std::string::npos)
      candidates += (candidates.empty() ? "" : ", ") + std::string(r.name);
  }
  throw Error("STS3215 control table: no register named '" + std::string(name) + "'" +
              (candidates.empty() ? "" : " (did you mean " + candidates + "?)"));
}

const Register* register_at(int address) {
  for (const Register& r : sts3215_control_table())
    if (r.address == address) return &r;
  return nullptr;
}

std::vector<uint8_t> encode_value(const Register& r, int value) {
  uint32_t raw;
  if (r.sign_bit >= 0) {
    const int limit = (1 << r.sign_bit) - 1;
    if (!(std::abs(value) <= limit))
      throw Error(std::string("register ") + r.name + ": value " + std::to_string(value) + " out of range ±" +
                  std::to_string(limit) + " (sign bit " + std::to_string(r.sign_bit) + ")");
    raw = encode_sign_magnitude(value, r.sign_bit);
  } else {
    const int limit = r.size == 1 ? 0xFF : 0xFFFF;
    if (!(value >= 0 && value <= limit))
      throw Error(std::string("register ") + r.name + ": value " + std::to_string(value) + " out of range 0…" +
                  std::to_string(limit));
    raw = static_cast<uint32_t>(value);
  }
  if (r.size == 1) return {static_cast<uint8_t>(raw)};
  return {static_cast<uint8_t>(raw & 0xFF), static_cast<uint8_t>(raw >> 8)};
}

int decode_value(const Register& r, const uint8_t* bytes) {
  const uint16_t raw = r.size == 1 ? bytes[0] : static_cast<uint16_t>(bytes[0] | (bytes[1] << 8));
  return r.sign_bit >= 0 ? decode_sign_magnitude(raw, r.sign_bit) : raw;
}

// ---- packets ------------------------------------------------------------------------------------

uint8_t checksum(const uint8_t* body, size_t size) {
  unsigned sum = 0;
  for (size_t i = 0; i < size; ++i) sum += body[i];
  return static_cast<uint8_t>(~sum & 0xFF);
}

std::vector<uint8_t> encode_packet(uint8_t id, uint8_t code, const uint8_t* params, size_t count) {
  if (!(count <= static_cast<size_t>(kMaxParams)))
    throw Error("Feetech packet for ID " + std::to_string(id) + ": " + std::to_string(count) +
                " parameter bytes (at most " + std::to_string(kMaxParams) + ")");
  std::vector<uint8_t> p;
  p.reserve(count + 6);
  p.push_back(0xFF);
  p.push_back(0xFF);
  p.push_back(id);
  p.push_back(static_cast<uint8_t>(count + 2));
  p.push_back(code);
  p.insert(p.end(), params, params + count);
  p.push_back(checksum(p.data() + 2, p.size() - 2));
  return p;
}

namespace {
std::vector<uint8_t> instr(uint8_t id, Instruction i, const std::vector<uint8_t>& params = {}) {
  return encode_packet(id, static_cast<uint8_t>(i), params);
}
std::vector<uint8_t> with_address(uint8_t address, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> p;
  p.reserve(1 + data.size());
  p.push_back(address);
  for (uint8_t b : data) p.push_back(b);
  return p;
}
}  // namespace

std::vector<uint8_t> ping_packet(uint8_t id) { return instr(id, Instruction::ping); }
std::vector<uint8_t> read_packet(uint8_t id, uint8_t address, uint8_t length) {
  return instr(id, Instruction::read, {address, length});
}
std::vector<uint8_t> write_packet(uint8_t id, uint8_t address, const std::vector<uint8_t>& data) {
  return instr(id, Instruction::write, with_address(address, data));
}
std::vector<uint8_t> reg_write_packet(uint8_t id, uint8_t address, const std::vector<uint8_t>& data) {
  return instr(id, Instruction::reg_write, with_address(address, data));
}
std::vector<uint8_t> action_packet(uint8_t id) { return instr(id, Instruction::action); }
std::vector<uint8_t> reset_packet(uint8_t id) { return instr(id, Instruction::reset); }
std::vector<uint8_t> restore_packet(uint8_t id) { return instr(id, Instruction::restore); }
std::vector<uint8_t> reboot_packet(uint8_t id) { return instr(id, Instruction::reboot); }
std::vector<uint8_t> backup_packet(uint8_t id) { return instr(id, Instruction::backup); }

std::vector<uint8_t> calibrate_offset_packet(uint8_t id, int value) {
  if (value < 0) return instr(id, Instruction::calibrate_offset);
  require(value <= 0xFFFF, "CALIBRATE OFFSET: value " + std::to_string(value) + " does not fit in 2 bytes");
  return instr(id, Instruction::calibrate_offset,
               {static_cast<uint8_t>(value & 0xFF), static_cast<uint8_t>(value >> 8)});
}

std::vector<uint8_t> sync_read_packet(uint8_t address, uint8_t length, const std::vector<uint8_t>& ids) {
  std::vector<uint8_t> p;
  p.reserve(2 + ids.size());
  p.push_back(address);
  p.push_back(length);
  for (uint8_t id : ids) p.push_back(id);
  return instr(kBroadcastId, Instruction::sync_read, p);
}

std::vector<uint8_t> sync_write_packet(uint8_t address, uint8_t length,
                                       const std::vector<std::pair<uint8_t, std::vector<uint8_t>>>& data) {
  std::vector<uint8_t> p;
  p.reserve(2 + data.size() * (1 + length));
  p.push_back(address);
  p.push_back(length);
  for (const auto& [id, bytes] : data) {
    if (!(bytes.size() == length))
      throw Error("SYNC WRITE at address " + std::to_string(address) + ": servo " + std::to_string(id) + " has " +
                  std::to_string(bytes.size()) + " bytes, expected " + std::to_string(length));
    p.push_back(id);
    for (uint8_t b : bytes) p.push_back(b);
  }
  return instr(kBroadcastId, Instruction::sync_write, p);
}

std::vector<uint8_t> status_packet(uint8_t id, uint8_t error, const std::vector<uint8_t>& data) {
  return encode_packet(id, error, data);
}

// ---- parsing ------------------------------------------------------------------------------------

void PacketParser::feed(const uint8_t* data, size_t size) {
  if (start_ > 0 && start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > 4096) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), data, data + size);
}

void PacketParser::drop(size_t n) {
  start_ += n;
  discarded_ += n;
}

bool PacketParser::next(Packet& out) {
  for (;;) {
    const size_t avail = buffer_.size() - start_;
    const uint8_t* b = buffer_.data() + start_;
    // Find the FF FF header; keep a lone trailing FF, it may be the first half of one.
    size_t skip = 0;
    while (skip + 1 < avail && !(b[skip] == 0xFF && b[skip + 1] == 0xFF)) ++skip;
    if (skip + 1 >= avail) {
      const size_t keep = (avail > 0 && b[avail - 1] == 0xFF) ? 1 : 0;
      drop(avail - keep);
      return false;
    }
    if (skip > 0) {
      drop(skip);
      continue;
    }
    if (avail < static_cast<size_t>(kHeaderSize) + 1) return false;  // need ID, LEN and the code
    const uint8_t id = b[2], len = b[3], code = b[4];
    const bool id_ok = kind_ == PacketKind::status ? id <= kMaxServoId : id <= kBroadcastId;
    const bool len_ok = len >= 2 && len <= kMaxPacketLength;
    const bool code_ok = kind_ == PacketKind::instruction || code <= 0x7F;
    if (!id_ok || !len_ok || !code_ok) {
      ++header_errors_;
      drop(1);
      continue;
    }
    const size_t total = kHeaderSize + static_cast<size_t>(len);
    if (avail < total) return false;
    if (checksum(b + 2, total - 3) != b[total - 1]) {
      ++checksum_errors_;
      drop(1);
      continue;
    }
    out.id = id;
    out.code = code;
    out.params.assign(b + 5, b + total - 1);
    start_ += total;
    return true;
  }
}

void PacketParser::clear() {
  buffer_.clear();
  start_ = 0;
}

std::string hex(const uint8_t* data, size_t size) {
  std::string out;
  char buf[4];
  for (size_t i = 0; i < size; ++i) {
    std::snprintf(buf, sizeof buf, i ? " %02x" : "%02x", data[i]);
    out += buf;
  }
  return out;
}

}  // namespace vlascope::feetech
