#include "hardware/feetech_bus.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace vlascope {

using namespace feetech;

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::string milliseconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", s * 1e3);
  return buf;
}
}  // namespace

FeetechBus::FeetechBus(std::unique_ptr<Transport> transport, BusOptions options)
    : transport_(std::move(transport)), options_(options) {
  require(transport_ != nullptr, "FeetechBus: no transport");
}

std::string FeetechBus::servo_label(int id) const {
  if (id == kBroadcastId) return "broadcast";
  std::string label = "servo " + std::to_string(id);
  if (auto it = names_.find(id); it != names_.end()) label += " (" + it->second + ")";
  return label;
}

void FeetechBus::fail(const std::string& message, BusError::Kind kind, int id, uint8_t bits) {
  throw BusError("Feetech bus " + port() + ": " + message, kind, id, bits);
}

void FeetechBus::check_id(int id, bool allow_broadcast) const {
  if (id >= 0 && id <= kMaxServoId) return;
  if (allow_broadcast && id == kBroadcastId) return;
  throw BusError("Feetech bus " + transport_->name() + ": servo ID " + std::to_string(id) + " out of range 0…253",
                 BusError::Kind::io, id);
}

std::string FeetechBus::describe(const std::string& instruction, int address, int length) const {
  const Register* r = register_at(address);
  std::string s = instruction + " ";
  if (r && (length == r->size || length < 0))
    s += std::string(r->name) + " (addr " + std::to_string(address);
  else
    s += "(addr " + std::to_string(address);
  if (length >= 0) s += ", " + std::to_string(length) + (length == 1 ? " byte" : " bytes");
  return s + ")";
}

double FeetechBus::reply_timeout(size_t bytes_out, size_t bytes_back) const {
  const double byte_time = 10.0 / std::max(1, transport_->baud_rate());  // 8N1: 10 bits per byte
  return static_cast<double>(bytes_out + bytes_back) * byte_time + options_.latency_allowance_s;
}

void FeetechBus::send(const std::vector<uint8_t>& packet) {
  try {
    transport_->write(packet.data(), packet.size());
  } catch (const Error& e) {
    throw BusError(std::string("Feetech bus: ") + e.what(), BusError::Kind::io, -1);
  }
  stats_.bytes_written += packet.size();
}

void FeetechBus::update_parser_stats() {
  stats_.checksum_errors = parser_.checksum_errors();
  stats_.header_errors = parser_.header_errors();
  stats_.discarded_bytes = parser_.discarded_bytes();
}

size_t FeetechBus::collect(const std::vector<uint8_t>& packet, const std::vector<int>& ids, int data_length,
                           double timeout, std::vector<StatusReply>& replies, std::vector<bool>& received) {
  ++stats_.attempts;
  size_t missing = static_cast<size_t>(std::count(received.begin(), received.end(), false));
  try {
    transport_->flush_input();  // stale replies of earlier requests must not be taken for this one's
  } catch (const Error& e) {
    throw BusError(std::string("Feetech bus: ") + e.what(), BusError::Kind::io, -1);
  }
  parser_.clear();
  send(packet);
  const double deadline = now_seconds() + timeout;
  uint8_t buffer[512];
  Packet p;
  while (missing > 0) {
    while (missing > 0 && parser_.next(p)) {
      size_t i = 0;
      while (i < ids.size() && !(ids[i] == p.id && !received[i])) ++i;
      if (i == ids.size() || p.params.size() != static_cast<size_t>(data_length)) {
        ++stats_.unexpected_packets;  // a late reply to an earlier request, or another servo's
        continue;
      }
      replies[i].error = p.code;
      replies[i].data = std::move(p.params);
      received[i] = true;
      --missing;
    }
    if (missing == 0) break;
    const double left = deadline - now_seconds();
    if (left <= 0) break;
    size_t n;
    try {
      n = transport_->read(buffer, sizeof buffer, left);
    } catch (const Error& e) {
      update_parser_stats();
      throw BusError(std::string("Feetech bus: ") + e.what(), BusError::Kind::io, -1);
    }
    stats_.bytes_read += n;
    parser_.feed(buffer, n);
  }
  update_parser_stats();
  if (missing > 0) ++stats_.timeouts;
  return missing;
}

void FeetechBus::fail_no_reply(const std::vector<int>& ids, const std::vector<bool>& received, double timeout,
                               int attempts, uint64_t garbled_before, const std::string& what) {
  ++stats_.failures;
  std::string absent;
  int first_absent = -1;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (received[i]) continue;
    if (first_absent < 0) first_absent = ids[i];
    absent += (absent.empty() ? "" : ", ") + servo_label(ids[i]);
  }
  const uint64_t garbled = parser_.checksum_errors() + parser_.header_errors() - garbled_before;
  std::string message;
  if (ids.size() == 1)
    message = servo_label(ids[0]) + ": " + what + ": no reply within " + milliseconds(timeout);
  else
    message = what + ": no reply from " + absent + " within " + milliseconds(timeout);
  message += " (" + std::to_string(attempts) + (attempts > 1 ? " attempts" : " attempt");
  if (garbled) message += "; " + std::to_string(garbled) + " garbled packet(s) discarded";
  message += ")";
  fail(message, BusError::Kind::no_reply, first_absent);
}

std::vector<StatusReply> FeetechBus::transact(const std::vector<uint8_t>& packet, const std::vector<int>& ids,
                                              int data_length, int retries, const std::string& what) {
  ++stats_.transactions;
  const double timeout = reply_timeout(packet.size(), ids.size() * status_packet_size(data_length));
  const uint64_t garbled_before = parser_.checksum_errors() + parser_.header_errors();
  std::vector<StatusReply> replies(ids.size());
  std::vector<bool> received(ids.size(), false);
  for (int attempt = 0; attempt <= retries; ++attempt) {
    if (attempt > 0) {
      ++stats_.retries;
      std::fill(received.begin(), received.end(), false);
    }
    if (collect(packet, ids, data_length, timeout, replies, received) == 0) return replies;
  }
  fail_no_reply(ids, received, timeout, retries + 1, garbled_before, what);
}

// ---- instructions --------------------------------------------------------------------------------

uint8_t FeetechBus::ping(int id) {
  check_id(id, false);
  return transact(ping_packet(static_cast<uint8_t>(id)), {id}, 0, options_.read_retries, "PING")[0].error;
}

std::optional<uint8_t> FeetechBus::try_ping(int id, double timeout_s) {
  check_id(id, false);
  BusOptions saved = options_;
  options_.latency_allowance_s = timeout_s;
  try {
    uint8_t e = transact(ping_packet(static_cast<uint8_t>(id)), {id}, 0, 0, "PING")[0].error;
    options_ = saved;
    return e;
  } catch (const BusError& e) {
    options_ = saved;
    if (e.kind == BusError::Kind::no_reply) {
      --stats_.failures;
      return std::nullopt;
    }
    throw;
  }
}

std::vector<int> FeetechBus::broadcast_ping(double timeout_s) {
  ++stats_.transactions;
  ++stats_.attempts;
  try {
    transport_->flush_input();
  } catch (const Error& e) {
    throw BusError(std::string("Feetech bus: ") + e.what(), BusError::Kind::io, -1);
  }
  parser_.clear();
  send(ping_packet(kBroadcastId));
  std::vector<int> ids;
  const double deadline = now_seconds() + timeout_s;
  uint8_t buffer[512];
  Packet p;
  for (;;) {
    while (parser_.next(p))
      if (p.params.empty() && std::find(ids.begin(), ids.end(), p.id) == ids.end()) ids.push_back(p.id);
    const double left = deadline - now_seconds();
    if (left <= 0) break;
    size_t n;
    try {
      n = transport_->read(buffer, sizeof buffer, left);
    } catch (const Error& e) {
      throw BusError(std::string("Feetech bus: ") + e.what(), BusError::Kind::io, -1);
    }
    stats_.bytes_read += n;
    parser_.feed(buffer, n);
  }
  update_parser_stats();
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::vector<int> FeetechBus::scan(int first, int last, double timeout_s) {
  std::vector<int> found;
  for (int id = std::max(0, first); id <= std::min<int>(last, kMaxServoId); ++id)
    if (try_ping(id, timeout_s)) found.push_back(id);
  return found;
}

StatusReply FeetechBus::read(int id, int address, int length) {
  check_id(id, false);
  if (!(length > 0 && length <= kMaxParams))
    throw Error("Feetech bus " + port() + ": READ length " + std::to_string(length));
  return transact(read_packet(static_cast<uint8_t>(id), static_cast<uint8_t>(address), static_cast<uint8_t>(length)),
                  {id}, length, options_.read_retries, describe("READ", address, length))[0];
}

uint8_t FeetechBus::write(int id, int address, const std::vector<uint8_t>& data) {
  check_id(id, true);
  auto packet = write_packet(static_cast<uint8_t>(id), static_cast<uint8_t>(address), data);
  if (id == kBroadcastId || !options_.writes_reply) {
    send(packet);
    ++stats_.transactions;
    return 0;
  }
  return transact(packet, {id}, 0, options_.write_retries, describe("WRITE", address, static_cast<int>(data.size())))[0]
      .error;
}

uint8_t FeetechBus::reg_write(int id, int address, const std::vector<uint8_t>& data) {
  check_id(id, true);
  auto packet = reg_write_packet(static_cast<uint8_t>(id), static_cast<uint8_t>(address), data);
  if (id == kBroadcastId || !options_.writes_reply) {
    send(packet);
    ++stats_.transactions;
    return 0;
  }
  // A repeated REG WRITE only replaces the buffered value, so retrying is safe.
  return transact(packet, {id}, 0, options_.write_retries,
                  describe("REG WRITE", address, static_cast<int>(data.size())))[0]
      .error;
}

void FeetechBus::action(int id) {
  check_id(id, true);
  auto packet = action_packet(static_cast<uint8_t>(id));
  if (id == kBroadcastId || !options_.writes_reply) {
    send(packet);
    ++stats_.transactions;
    return;
  }
  transact(packet, {id}, 0, 0, "ACTION");  // not retried: a second ACTION could apply a newer REG WRITE
}

uint8_t FeetechBus::reset(int id) {
  check_id(id, false);
  return transact(reset_packet(static_cast<uint8_t>(id)), {id}, 0, options_.write_retries, "RESET")[0].error;
}

uint8_t FeetechBus::restore_factory(int id) {
  check_id(id, false);
  return transact(restore_packet(static_cast<uint8_t>(id)), {id}, 0, 0, "RESTORE")[0].error;
}

void FeetechBus::reboot(int id) {
  check_id(id, true);
  send(reboot_packet(static_cast<uint8_t>(id)));
  ++stats_.transactions;
}

uint8_t FeetechBus::calibrate_offset(int id, int value) {
  check_id(id, false);
  return transact(calibrate_offset_packet(static_cast<uint8_t>(id), value), {id}, 0, 0, "CALIBRATE OFFSET")[0].error;
}

std::vector<StatusReply> FeetechBus::sync_read(int address, int length, const std::vector<int>& ids) {
  if (!(!ids.empty())) throw Error("Feetech bus " + port() + ": SYNC READ without servos");
  if (!(length > 0 && length <= kMaxParams))
    throw Error("Feetech bus " + port() + ": SYNC READ length " + std::to_string(length));
  for (int id : ids) check_id(id, false);
  ++stats_.transactions;
  const std::string what = describe("SYNC READ", address, length);
  const uint64_t garbled_before = parser_.checksum_errors() + parser_.header_errors();
  std::vector<StatusReply> replies(ids.size());
  std::vector<bool> received(ids.size(), false);
  double timeout = 0;
  for (int attempt = 0; attempt <= options_.read_retries; ++attempt) {
    // Ask only the servos still missing; the others' replies from earlier attempts stand.
    std::vector<int> ask;
    std::vector<size_t> where;
    for (size_t i = 0; i < ids.size(); ++i)
      if (!received[i]) {
        ask.push_back(ids[i]);
        where.push_back(i);
      }
    std::vector<uint8_t> id_bytes(ask.begin(), ask.end());
    const auto packet = sync_read_packet(static_cast<uint8_t>(address), static_cast<uint8_t>(length), id_bytes);
    timeout = reply_timeout(packet.size(), ask.size() * status_packet_size(length));
    std::vector<StatusReply> got(ask.size());
    std::vector<bool> got_received(ask.size(), false);
    if (attempt > 0) ++stats_.retries;
    collect(packet, ask, length, timeout, got, got_received);
    size_t missing = 0;
    for (size_t k = 0; k < ask.size(); ++k) {
      if (got_received[k]) {
        replies[where[k]] = std::move(got[k]);
        received[where[k]] = true;
      } else {
        ++missing;
      }
    }
    if (missing == 0) return replies;
  }
  fail_no_reply(ids, received, timeout, options_.read_retries + 1, garbled_before, what);
}

void FeetechBus::sync_write(int address, int length, const std::vector<int>& ids,
                            const std::vector<std::vector<uint8_t>>& data) {
  if (!(ids.size() == data.size()))
    throw Error("Feetech bus " + port() + ": SYNC WRITE with " + std::to_string(ids.size()) + " servos but " +
                std::to_string(data.size()) + " values");
  std::vector<std::pair<uint8_t, std::vector<uint8_t>>> entries;
  entries.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    check_id(ids[i], false);
    entries.emplace_back(static_cast<uint8_t>(ids[i]), data[i]);
  }
  send(sync_write_packet(static_cast<uint8_t>(address), static_cast<uint8_t>(length), entries));
  ++stats_.transactions;
}

// ---- registers -----------------------------------------------------------------------------------

int FeetechBus::read_register(int id, const Register& r, uint8_t* error_bits) {
  StatusReply reply = read(id, r.address, r.size);
  if (error_bits)
    *error_bits = reply.error;
  else if (reply.error)
    fail(servo_label(id) + ": READ " + r.name + ": servo reports " + describe_error_bits(reply.error),
         BusError::Kind::servo_error, id, reply.error);
  return decode_value(r, reply.data.data());
}

void FeetechBus::write_register(int id, const Register& r, int value, uint8_t* error_bits) {
  if (!(r.writable)) throw Error(std::string("Feetech bus ") + port() + ": register " + r.name + " is read-only");
  std::vector<uint8_t> bytes;
  try {
    bytes = encode_value(r, value);
  } catch (const Error& e) {
    fail(servo_label(id) + ": WRITE " + r.name + ": " + e.what(), BusError::Kind::io, id);
  }
  uint8_t error = write(id, r.address, bytes);
  if (error_bits)
    *error_bits = error;
  else if (error)
    fail(servo_label(id) + ": WRITE " + r.name + " = " + std::to_string(value) + ": servo reports " +
             describe_error_bits(error),
         BusError::Kind::servo_error, id, error);
}

std::vector<int> FeetechBus::sync_read_register(const Register& r, const std::vector<int>& ids,
                                                std::vector<uint8_t>* error_bits) {
  std::vector<StatusReply> replies = sync_read(r.address, r.size, ids);
  std::vector<int> values(ids.size());
  if (error_bits) error_bits->assign(ids.size(), 0);
  for (size_t i = 0; i < ids.size(); ++i) {
    values[i] = decode_value(r, replies[i].data.data());
    if (error_bits)
      (*error_bits)[i] = replies[i].error;
    else if (replies[i].error)
      fail(servo_label(ids[i]) + ": SYNC READ " + r.name + ": servo reports " + describe_error_bits(replies[i].error),
           BusError::Kind::servo_error, ids[i], replies[i].error);
  }
  return values;
}

void FeetechBus::sync_write_register(const Register& r, const std::vector<int>& ids, const std::vector<int>& values) {
  if (!(r.writable)) throw Error(std::string("Feetech bus ") + port() + ": register " + r.name + " is read-only");
  if (!(ids.size() == values.size()))
    throw Error("Feetech bus " + port() + ": SYNC WRITE " + r.name + ": " + std::to_string(ids.size()) + " servos, " +
                std::to_string(values.size()) + " values");
  std::vector<std::vector<uint8_t>> data(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    try {
      data[i] = encode_value(r, values[i]);
    } catch (const Error& e) {
      fail(servo_label(ids[i]) + ": SYNC WRITE " + r.name + ": " + e.what(), BusError::Kind::io, ids[i]);
    }
  }
  sync_write(r.address, r.size, ids, data);
}

void FeetechBus::broadcast_write_register(const Register& r, int value) {
  if (!(r.writable)) throw Error(std::string("Feetech bus ") + port() + ": register " + r.name + " is read-only");
  send(write_packet(kBroadcastId, r.address, encode_value(r, value)));
  ++stats_.transactions;
}

}  // namespace vlascope
