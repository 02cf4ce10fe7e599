// A Feetech servo bus: transactions (instruction out, status back) over a Transport, with timeouts derived
// from the bytes on the wire, bounded retries of failed reads, and errors that name the port, the servo and
// what went wrong:
//
//   Feetech bus /dev/ttyACM0: servo 3 (elbow_flex): READ Present_Position (addr 56, 2 bytes):
//   no reply within 20.5 ms (3 attempts)
//
//   FeetechBus bus(open_serial_transport("/dev/ttyACM0"));
//   bus.set_servo_names({{1, "shoulder_pan"}, …});
//   int model = bus.read_register(1, feetech::reg::Model_Number);
//   std::vector<int> ticks = bus.sync_read_register(feetech::reg::Present_Position, {1, 2, 3, 4, 5, 6});
//   bus.sync_write_register(feetech::reg::Goal_Position, {1, 2, 3, 4, 5, 6}, goals);
//
// Not thread-safe: one owner (the SO-100 follower serialises its control and safety threads with a mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "hardware/feetech_protocol.h"
#include "hardware/serial_transport.h"

namespace vlascope {

struct BusOptions {
  // Waiting for a reply: the bytes on the wire at the transport's baud rate, plus this allowance for USB
  // latency and the servo's response delay (the Feetech SDK allows 50 ms; a CH343/ACM adapter needs ~1 ms).
  double latency_allowance_s = 0.020;
  int read_retries = 2;      // extra attempts after a failed read or sync read (LeRobot's num_read_retries)
  int write_retries = 2;     // extra attempts of a WRITE whose status did not arrive (writes are idempotent)
  bool writes_reply = true;  // servos at Response_Status_Level 1 acknowledge WRITE/REG WRITE/RESET…
};

// What went wrong in a transaction, for callers that react differently (the follower stops the arm on all).
class BusError : public Error {
 public:
  enum class Kind { no_reply, bad_reply, servo_error, io };
  BusError(const std::string& message, Kind kind, int servo_id, uint8_t error_bits = 0)
      : Error(message), kind(kind), servo_id(servo_id), error_bits(error_bits) {}
  Kind kind;
  int servo_id;        // −1 when not about one servo
  uint8_t error_bits;  // the status ERR byte for Kind::servo_error
};

struct StatusReply {
  uint8_t error = 0;          // status ERR byte (feetech::ErrorBit)
  std::vector<uint8_t> data;  // parameters
};

struct BusStats {
  uint64_t transactions = 0;
  uint64_t attempts = 0;  // transactions + retries
  uint64_t retries = 0;
  uint64_t timeouts = 0;            // attempts that ended without the expected replies
  uint64_t failures = 0;            // transactions that threw after all attempts
  uint64_t unexpected_packets = 0;  // valid status packets from the wrong servo or of the wrong size
  uint64_t bytes_written = 0, bytes_read = 0;
  uint64_t checksum_errors = 0, header_errors = 0, discarded_bytes = 0;  // from the parser
};

class FeetechBus {
 public:
  explicit FeetechBus(std::unique_ptr<Transport> transport, BusOptions options = {});

  const std::string& port() const { return transport_->name(); }
  Transport& transport() { return *transport_; }
  const BusOptions& options() const { return options_; }
  void set_options(const BusOptions& options) { options_ = options; }
  // Names used in error messages: "servo 3 (elbow_flex)".
  void set_servo_names(std::map<int, std::string> names) { names_ = std::move(names); }
  std::string servo_label(int id) const;

  // ---- instructions ----
  // PING: the status ERR byte. Throws BusError(no_reply) when the servo does not answer after the retries.
  uint8_t ping(int id);
  // PING with a single attempt and a short timeout; nullopt when nothing answers. For scans.
  std::optional<uint8_t> try_ping(int id, double timeout_s = 0.005);
  // PING to the broadcast ID: every servo answers (in ID order on STS firmware); returns the IDs heard
  // within `timeout_s`. On a crowded real bus replies can collide; scan() is slower but certain.
  std::vector<int> broadcast_ping(double timeout_s = 0.05);
  // Every ID in [first, last] that answers a PING (one attempt each).
  std::vector<int> scan(int first = 0, int last = feetech::kMaxServoId, double timeout_s = 0.005);

  StatusReply read(int id, int address, int length);
  // WRITE; waits for the status unless id is the broadcast ID or options().writes_reply is false.
  // Returns the status ERR byte (0 when no status was expected).
  uint8_t write(int id, int address, const std::vector<uint8_t>& data);
  uint8_t reg_write(int id, int address, const std::vector<uint8_t>& data);
  void action(int id = feetech::kBroadcastId);
  uint8_t reset(int id);
  uint8_t restore_factory(int id);
  void reboot(int id);
  uint8_t calibrate_offset(int id, int value = -1);
  // One status per id, in the order given. A retry asks again only the servos whose replies were missing or
  // garbled (LeRobot repeats the whole sync read); after the retries, BusError(no_reply) names them.
  std::vector<StatusReply> sync_read(int address, int length, const std::vector<int>& ids);
  // SYNC WRITE; no replies. data[i] goes to ids[i] and must be `length` bytes.
  void sync_write(int address, int length, const std::vector<int>& ids, const std::vector<std::vector<uint8_t>>& data);

  // ---- registers (values decoded: little-endian, sign-magnitude) ----
  // When `error_bits` is null a nonzero status ERR byte throws BusError(servo_error); otherwise it is
  // stored there and the value is returned.
  int read_register(int id, const feetech::Register& r, uint8_t* error_bits = nullptr);
  void write_register(int id, const feetech::Register& r, int value, uint8_t* error_bits = nullptr);
  std::vector<int> sync_read_register(const feetech::Register& r, const std::vector<int>& ids,
                                      std::vector<uint8_t>* error_bits = nullptr);
  void sync_write_register(const feetech::Register& r, const std::vector<int>& ids, const std::vector<int>& values);
  // WRITE to the broadcast ID: every servo applies it, none replies. Used to stop the arm when one servo
  // is not answering.
  void broadcast_write_register(const feetech::Register& r, int value);

  const BusStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

 private:
  // Sends `packet` and waits for one status from each of `ids` with `data_length` bytes; retries the whole
  // exchange up to `retries` times. Returns the replies in the order of `ids`.
  std::vector<StatusReply> transact(const std::vector<uint8_t>& packet, const std::vector<int>& ids, int data_length,
                                    int retries, const std::string& what);
  // One attempt: sends `packet`, collects replies of `ids` into replies/received until all arrived or the
  // timeout. Returns how many are still missing.
  size_t collect(const std::vector<uint8_t>& packet, const std::vector<int>& ids, int data_length, double timeout,
                 std::vector<StatusReply>& replies, std::vector<bool>& received);
  [[noreturn]] void fail_no_reply(const std::vector<int>& ids, const std::vector<bool>& received, double timeout,
                                  int attempts, uint64_t garbled_before, const std::string& what);
  void send(const std::vector<uint8_t>& packet);
  double reply_timeout(size_t bytes_out, size_t bytes_back) const;
  std::string describe(const std::string& instruction, int address, int length) const;
  [[noreturn]] void fail(const std::string& message, BusError::Kind kind, int id, uint8_t bits = 0);
  void check_id(int id, bool allow_broadcast) const;
  void update_parser_stats();

  std::unique_ptr<Transport> transport_;
  BusOptions options_;
  std::map<int, std::string> names_;
  feetech::PacketParser parser_{feetech::PacketKind::status};
  BusStats stats_;
};

}  // namespace vlascope
