// The Feetech SCS/STS serial protocol (protocol 0, STS/SMS series) as spoken by the STS3215 servos of the
// SO-100 arm: packet framing, checksums, instructions, status error bits, sign-magnitude values and the
// STS3215 control table as data. so100.md §2.2–2.7.
//
//   instruction (host → servo):  FF FF | ID | LEN | INSTR | P1 … Pn | CHK     LEN = n + 2
//   status      (servo → host):  FF FF | ID | LEN | ERR   | P1 … Pn | CHK
//   CHK = ~(ID + LEN + INSTR/ERR + P1 + … + Pn) & 0xFF; multi-byte values little-endian.
//
// Everything here is plain functions on bytes: no I/O. The bus (feetech_bus.h) sends what these functions
// build; the servo-bus twin (servo_twin.h) parses the same packets from the other side.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vlascope::feetech {

constexpr uint8_t kBroadcastId = 0xFE;
constexpr uint8_t kMaxServoId = 0xFD;  // 253; status packets with a larger ID are garbage
constexpr int kMaxPacketLength = 250;  // largest LEN field the Feetech SDK accepts
constexpr int kMaxParams = kMaxPacketLength - 2;
constexpr int kHeaderSize = 4;      // FF FF ID LEN
constexpr int kStatusOverhead = 6;  // FF FF ID LEN ERR CHK: bytes of a status packet besides its data
constexpr int kModelSts3215 = 777;
constexpr int kTicksPerTurn = 4096;          // 12-bit absolute encoder
constexpr int kMaxTick = kTicksPerTurn - 1;  // LeRobot's "max_res" (the 4095 of its degree conversion)

enum class Instruction : uint8_t {
  ping = 0x01,
  read = 0x02,
  write = 0x03,
  reg_write = 0x04,
  action = 0x05,
  restore = 0x06,  // factory parameters except the ID
  reboot = 0x08,   // no reply; the servo restarts (~800 ms on hardware)
  backup = 0x09,
  reset = 0x0A,             // clears the status / multi-turn count
  calibrate_offset = 0x0B,  // OFSCAL: present position becomes 2048 (or the 2-byte value given)
  sync_read = 0x82,
  sync_write = 0x83,
};
const char* instruction_name(uint8_t code);  // "READ", "SYNC WRITE", … or "instruction 0x.."

// Status ERR byte (and register 65 "Status"): so100.md §2.4.
enum ErrorBit : uint8_t {
  kErrorVoltage = 0x01,
  kErrorAngleSensor = 0x02,
  kErrorOverheat = 0x04,
  kErrorOverCurrent = 0x08,
  kErrorOverload = 0x20,
};
std::string describe_error_bits(uint8_t error);  // "overload, overheat"; "none" for 0

// Sign-magnitude values (§2.7): |v| in the low `sign_bit` bits, bit `sign_bit` set when negative.
// encode throws Error when |v| does not fit; decode ignores bits above the sign bit.
uint16_t encode_sign_magnitude(int value, int sign_bit);
int decode_sign_magnitude(uint16_t raw, int sign_bit);

// ---- control table ------------------------------------------------------------------------------

enum class Memory : uint8_t { eeprom, ram, factory };

struct Register {
  const char* name;  // LeRobot's name (motors/feetech/tables.py)
  uint8_t address;
  uint8_t size;     // 1 or 2 bytes
  int8_t sign_bit;  // −1: unsigned; else the sign-magnitude bit (15, 11 or 10)
  Memory memory;
  bool writable;
};

namespace reg {
// clang-format off
constexpr Register Firmware_Major_Version{"Firmware_Major_Version", 0, 1, -1, Memory::eeprom, false};
constexpr Register Firmware_Minor_Version{"Firmware_Minor_Version", 1, 1, -1, Memory::eeprom, false};
constexpr Register Model_Number          {"Model_Number",           3, 2, -1, Memory::eeprom, false};
constexpr Register ID                    {"ID",                     5, 1, -1, Memory::eeprom, true};
constexpr Register Baud_Rate             {"Baud_Rate",              6, 1, -1, Memory::eeprom, true};
constexpr Register Return_Delay_Time     {"Return_Delay_Time",      7, 1, -1, Memory::eeprom, true};
constexpr Register Response_Status_Level {"Response_Status_Level",  8, 1, -1, Memory::eeprom, true};
constexpr Register Min_Position_Limit    {"Min_Position_Limit",     9, 2, -1, Memory::eeprom, true};
constexpr Register Max_Position_Limit    {"Max_Position_Limit",    11, 2, -1, Memory::eeprom, true};
constexpr Register Max_Temperature_Limit {"Max_Temperature_Limit", 13, 1, -1, Memory::eeprom, true};
constexpr Register Max_Voltage_Limit     {"Max_Voltage_Limit",     14, 1, -1, Memory::eeprom, true};
constexpr Register Min_Voltage_Limit     {"Min_Voltage_Limit",     15, 1, -1, Memory::eeprom, true};
constexpr Register Max_Torque_Limit      {"Max_Torque_Limit",      16, 2, -1, Memory::eeprom, true};
constexpr Register Phase                 {"Phase",                 18, 1, -1, Memory::eeprom, true};
constexpr Register Unloading_Condition   {"Unloading_Condition",   19, 1, -1, Memory::eeprom, true};
constexpr Register LED_Alarm_Condition   {"LED_Alarm_Condition",   20, 1, -1, Memory::eeprom, true};
constexpr Register P_Coefficient         {"P_Coefficient",         21, 1, -1, Memory::eeprom, true};
constexpr Register D_Coefficient         {"D_Coefficient",         22, 1, -1, Memory::eeprom, true};
constexpr Register I_Coefficient         {"I_Coefficient",         23, 1, -1, Memory::eeprom, true};
constexpr Register Minimum_Startup_Force {"Minimum_Startup_Force", 24, 2, -1, Memory::eeprom, true};
constexpr Register CW_Dead_Zone          {"CW_Dead_Zone",          26, 1, -1, Memory::eeprom, true};
constexpr Register CCW_Dead_Zone         {"CCW_Dead_Zone",         27, 1, -1, Memory::eeprom, true};
constexpr Register Protection_Current    {"Protection_Current",    28, 2, -1, Memory::eeprom, true};
constexpr Register Angular_Resolution    {"Angular_Resolution",    30, 1, -1, Memory::eeprom, true};
constexpr Register Homing_Offset         {"Homing_Offset",         31, 2, 11, Memory::eeprom, true};
constexpr Register Operating_Mode        {"Operating_Mode",        33, 1, -1, Memory::eeprom, true};
constexpr Register Protective_Torque     {"Protective_Torque",     34, 1, -1, Memory::eeprom, true};
constexpr Register Protection_Time       {"Protection_Time",       35, 1, -1, Memory::eeprom, true};
constexpr Register Overload_Torque       {"Overload_Torque",       36, 1, -1, Memory::eeprom, true};
constexpr Register Velocity_P            {"Velocity_closed_loop_P_proportional_coefficient", 37, 1, -1, Memory::eeprom, true};
constexpr Register Over_Current_Protection_Time{"Over_Current_Protection_Time", 38, 1, -1, Memory::eeprom, true};
constexpr Register Velocity_I            {"Velocity_closed_loop_I_integral_coefficient", 39, 1, -1, Memory::eeprom, true};
constexpr Register Torque_Enable         {"Torque_Enable",         40, 1, -1, Memory::ram, true};
constexpr Register Acceleration          {"Acceleration",          41, 1, -1, Memory::ram, true};
constexpr Register Goal_Position         {"Goal_Position",         42, 2, 15, Memory::ram, true};
constexpr Register Goal_Time             {"Goal_Time",             44, 2, -1, Memory::ram, true};
constexpr Register Goal_Velocity         {"Goal_Velocity",         46, 2, 15, Memory::ram, true};
constexpr Register Torque_Limit          {"Torque_Limit",          48, 2, -1, Memory::ram, true};
constexpr Register Lock                  {"Lock",                  55, 1, -1, Memory::ram, true};
constexpr Register Present_Position      {"Present_Position",      56, 2, 15, Memory::ram, false};
constexpr Register Present_Velocity      {"Present_Velocity",      58, 2, 15, Memory::ram, false};
constexpr Register Present_Load          {"Present_Load",          60, 2, 10, Memory::ram, false};
constexpr Register Present_Voltage       {"Present_Voltage",       62, 1, -1, Memory::ram, false};
constexpr Register Present_Temperature   {"Present_Temperature",   63, 1, -1, Memory::ram, false};
constexpr Register Status                {"Status",                65, 1, -1, Memory::ram, false};
constexpr Register Moving                {"Moving",                66, 1, -1, Memory::ram, false};
constexpr Register Present_Current       {"Present_Current",       69, 2, -1, Memory::ram, false};
constexpr Register Moving_Velocity_Threshold{"Moving_Velocity_Threshold", 80, 1, -1, Memory::factory, true};
constexpr Register DTs                   {"DTs",                   81, 1, -1, Memory::factory, true};
constexpr Register Velocity_Unit_factor  {"Velocity_Unit_factor",  82, 1, -1, Memory::factory, true};
constexpr Register Hts                   {"Hts",                   83, 1, -1, Memory::factory, true};
constexpr Register Maximum_Velocity_Limit{"Maximum_Velocity_Limit",84, 1, -1, Memory::factory, true};
constexpr Register Maximum_Acceleration  {"Maximum_Acceleration",  85, 1, -1, Memory::factory, true};
constexpr Register Acceleration_Multiplier{"Acceleration_Multiplier", 86, 1, -1, Memory::factory, true};
// clang-format on
}  // namespace reg

constexpr int kControlTableSize = 87;  // addresses 0…86 exist on the STS3215
// Address where EEPROM ends and RAM begins (Torque_Enable).
constexpr int kFirstRamAddress = 40;

// Every register above, in address order.
const std::vector<Register>& sts3215_control_table();
// By LeRobot name (case-sensitive); throws Error listing the closest names when unknown.
const Register& find_register(std::string_view name);
// The register starting at `address`, or nullptr.
const Register* register_at(int address);

// A register value as the bytes that go on the wire (little-endian, sign-magnitude applied).
// Throws Error naming the register when the value does not fit.
std::vector<uint8_t> encode_value(const Register& r, int value);
int decode_value(const Register& r, const uint8_t* bytes);  // reads r.size bytes

// ---- packets ------------------------------------------------------------------------------------

uint8_t checksum(const uint8_t* body, size_t size);  // over ID … last parameter

// A decoded packet. For an instruction `code` is the instruction, for a status it is the ERR byte.
struct Packet {
  uint8_t id = 0;
  uint8_t code = 0;
  std::vector<uint8_t> params;
};

// Frames `params` as FF FF id len code params chk. Throws Error if there are more than kMaxParams.
std::vector<uint8_t> encode_packet(uint8_t id, uint8_t code, const uint8_t* params, size_t count);
inline std::vector<uint8_t> encode_packet(uint8_t id, uint8_t code, const std::vector<uint8_t>& params) {
  return encode_packet(id, code, params.data(), params.size());
}

std::vector<uint8_t> ping_packet(uint8_t id);
std::vector<uint8_t> read_packet(uint8_t id, uint8_t address, uint8_t length);
std::vector<uint8_t> write_packet(uint8_t id, uint8_t address, const std::vector<uint8_t>& data);
std::vector<uint8_t> reg_write_packet(uint8_t id, uint8_t address, const std::vector<uint8_t>& data);
std::vector<uint8_t> action_packet(uint8_t id = kBroadcastId);
std::vector<uint8_t> reset_packet(uint8_t id);
std::vector<uint8_t> restore_packet(uint8_t id);
std::vector<uint8_t> reboot_packet(uint8_t id);
std::vector<uint8_t> backup_packet(uint8_t id);
// OFSCAL: without a value the present position becomes 2048; with one (fw ≥ 3.10) it becomes `value`.
std::vector<uint8_t> calibrate_offset_packet(uint8_t id, int value = -1);
// SYNC READ to the broadcast ID: addr, length, ID1…IDn. Every listed servo replies with its own status.
std::vector<uint8_t> sync_read_packet(uint8_t address, uint8_t length, const std::vector<uint8_t>& ids);
// SYNC WRITE to the broadcast ID: addr, L, then [ID, L bytes] per servo. No replies. Throws Error when a
// servo's data is not exactly `length` bytes.
std::vector<uint8_t> sync_write_packet(uint8_t address, uint8_t length,
                                       const std::vector<std::pair<uint8_t, std::vector<uint8_t>>>& data);
std::vector<uint8_t> status_packet(uint8_t id, uint8_t error, const std::vector<uint8_t>& data = {});

// Bytes a transaction puts on the wire, for timeouts and the timing budget (§2.5).
inline size_t status_packet_size(size_t data_length) { return kStatusOverhead + data_length; }

// ---- parsing ------------------------------------------------------------------------------------

enum class PacketKind { instruction, status };

// An incremental parser for a byte stream of packets. Feed it whatever arrived; take out complete packets.
// Invalid headers (wrong ID/LEN/ERR range) and checksum failures drop one byte and resynchronise on the
// next FF FF, so a valid packet that follows garbage is still found. Never reads past its buffer; bytes
// that cannot start a packet are discarded as soon as they are seen, so only packets not yet taken out
// (and at most one incomplete packet) stay buffered.
class PacketParser {
 public:
  explicit PacketParser(PacketKind kind) : kind_(kind) {}

  void feed(const uint8_t* data, size_t size);
  // Takes the next valid packet out of the stream; false when more bytes are needed.
  bool next(Packet& out);
  void clear();

  size_t buffered() const { return buffer_.size() - start_; }
  uint64_t discarded_bytes() const { return discarded_; }  // skipped while resynchronising
  uint64_t checksum_errors() const { return checksum_errors_; }
  uint64_t header_errors() const { return header_errors_; }

 private:
  void drop(size_t n);

  PacketKind kind_;
  std::vector<uint8_t> buffer_;
  size_t start_ = 0;
  uint64_t discarded_ = 0, checksum_errors_ = 0, header_errors_ = 0;
};

std::string hex(const uint8_t* data, size_t size);  // "ff ff 01 02 …" for error messages and logs
inline std::string hex(const std::vector<uint8_t>& bytes) { return hex(bytes.data(), bytes.size()); }

}  // namespace vlascope::feetech
