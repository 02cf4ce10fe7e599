// Feetech protocol: packets against hand-computed bytes, sign-magnitude, the control table, and the
// status/instruction parser (resynchronisation, split input, a fuzz test that must never crash).
#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "hardware/feetech_protocol.h"

namespace vlascope::feetech {
namespace {

using Bytes = std::vector<uint8_t>;

TEST(FeetechPacket, PingMatchesHandComputedBytes) {
  // sum = 01 + 02 + 01 = 04, ~04 = FB
  EXPECT_EQ(ping_packet(1), (Bytes{0xFF, 0xFF, 0x01, 0x02, 0x01, 0xFB}));
}

TEST(FeetechPacket, ReadPresentPosition) {
  // ID 1, LEN 4, READ, addr 0x38 (56), 2 bytes: sum = 1+4+2+56+2 = 65 = 0x41, ~ = 0xBE
  EXPECT_EQ(read_packet(1, 56, 2), (Bytes{0xFF, 0xFF, 0x01, 0x04, 0x02, 0x38, 0x02, 0xBE}));
}

TEST(FeetechPacket, WriteGoalPositionLittleEndian) {
  // Goal 2048 = 0x0800 → 00 08. sum = 1+5+3+42+0+8 = 59 = 0x3B, ~ = 0xC4
  EXPECT_EQ(write_packet(1, reg::Goal_Position.address, encode_value(reg::Goal_Position, 2048)),
            (Bytes{0xFF, 0xFF, 0x01, 0x05, 0x03, 0x2A, 0x00, 0x08, 0xC4}));
}

TEST(FeetechPacket, SyncReadLayout) {
  // FE, LEN = n + 4 = 10, 0x82, addr, len, IDs; sum = 254+10+130+56+2+(1+…+6) = 473 → 0xD9, ~ = 0x26.
  // 14 bytes out: so100.md §2.5's timing budget.
  Bytes p = sync_read_packet(56, 2, {1, 2, 3, 4, 5, 6});
  EXPECT_EQ(p, (Bytes{0xFF, 0xFF, 0xFE, 0x0A, 0x82, 0x38, 0x02, 1, 2, 3, 4, 5, 6, 0x26}));
  EXPECT_EQ(p.size(), 14u);
}

TEST(FeetechPacket, SyncWriteLayoutWithSignMagnitude) {
  // Goal 2048 to ID 1 and −100 (bit 15: 0x8064) to ID 2. LEN = (L+1)·n + 4 = 10.
  // sum = 254+10+131+42+2 + 1+0x00+0x08 + 2+0x64+0x80 = 678 → 0xA6, ~ = 0x59
  Bytes p = sync_write_packet(
      42, 2, {{1, encode_value(reg::Goal_Position, 2048)}, {2, encode_value(reg::Goal_Position, -100)}});
  EXPECT_EQ(p, (Bytes{0xFF, 0xFF, 0xFE, 0x0A, 0x83, 0x2A, 0x02, 0x01, 0x00, 0x08, 0x02, 0x64, 0x80, 0x59}));
  // Six goals: 26 bytes, as in §2.5.
  std::vector<std::pair<uint8_t, Bytes>> six;
  for (uint8_t id = 1; id <= 6; ++id) six.push_back({id, {0, 8}});
  EXPECT_EQ(sync_write_packet(42, 2, six).size(), 26u);
  EXPECT_THROW(sync_write_packet(42, 2, {{1, {0x00}}}), Error);  // wrong data length
}

TEST(FeetechPacket, OtherInstructions) {
  EXPECT_EQ(action_packet(), (Bytes{0xFF, 0xFF, 0xFE, 0x02, 0x05, 0xFA}));  // ~(254+2+5)=~0x105 → FA
  EXPECT_EQ(reset_packet(3), (Bytes{0xFF, 0xFF, 0x03, 0x02, 0x0A, 0xF0}));  // ~(3+2+10)=~15 → F0
  EXPECT_EQ(reboot_packet(1), (Bytes{0xFF, 0xFF, 0x01, 0x02, 0x08, 0xF4}));
  EXPECT_EQ(restore_packet(1), (Bytes{0xFF, 0xFF, 0x01, 0x02, 0x06, 0xF6}));
  EXPECT_EQ(calibrate_offset_packet(1), (Bytes{0xFF, 0xFF, 0x01, 0x02, 0x0B, 0xF1}));
  // With a value (fw ≥ 3.10): 2048 → 00 08; sum = 1+4+11+0+8 = 24 → E7
  EXPECT_EQ(calibrate_offset_packet(1, 2048), (Bytes{0xFF, 0xFF, 0x01, 0x04, 0x0B, 0x00, 0x08, 0xE7}));
  // REG WRITE torque on: 1+5... sum = 2+4+4+40+1 = 51 → CC
  EXPECT_EQ(reg_write_packet(2, 40, {1}), (Bytes{0xFF, 0xFF, 0x02, 0x04, 0x04, 0x28, 0x01, 0xCC}));
}

TEST(FeetechPacket, StatusPacketAndChecksum) {
  // Reply of servo 1 with Present_Position 2048: sum = 1+4+0+0+8 = 13 → F2
  EXPECT_EQ(status_packet(1, 0, {0x00, 0x08}), (Bytes{0xFF, 0xFF, 0x01, 0x04, 0x00, 0x00, 0x08, 0xF2}));
  // Overload bit: sum = 1+2+0x20 = 35 → DC
  EXPECT_EQ(status_packet(1, kErrorOverload), (Bytes{0xFF, 0xFF, 0x01, 0x02, 0x20, 0xDC}));
  const uint8_t body[] = {0xFE, 0x04, 0x03, 0x28, 0x00};  // broadcast torque off
  EXPECT_EQ(checksum(body, sizeof body), static_cast<uint8_t>(~(0xFE + 0x04 + 0x03 + 0x28) & 0xFF));
  EXPECT_THROW(encode_packet(1, 3, Bytes(249, 0)), Error);
  EXPECT_NO_THROW(encode_packet(1, 3, Bytes(248, 0)));
}

TEST(SignMagnitude, PerRegisterSignBits) {
  EXPECT_EQ(encode_sign_magnitude(-100, 15), 0x8064);
  EXPECT_EQ(encode_sign_magnitude(-100, 11), 0x0864);
  EXPECT_EQ(encode_sign_magnitude(-100, 10), 0x0464);
  EXPECT_EQ(encode_sign_magnitude(100, 11), 0x0064);
  EXPECT_EQ(decode_sign_magnitude(0x8064, 15), -100);
  EXPECT_EQ(decode_sign_magnitude(0x0864, 11), -100);
  EXPECT_EQ(decode_sign_magnitude(0x0464, 10), -100);
  EXPECT_EQ(decode_sign_magnitude(0x0064, 10), 100);
  EXPECT_EQ(decode_sign_magnitude(0x0800, 11), 0);  // "negative zero"
  EXPECT_THROW(encode_sign_magnitude(2048, 11), Error);
  EXPECT_THROW(encode_sign_magnitude(-1024, 10), Error);
  for (int v = -2047; v <= 2047; v += 7) EXPECT_EQ(decode_sign_magnitude(encode_sign_magnitude(v, 11), 11), v);

  // Through the control table: LeRobot's example homing offset −1768 = 0x0EE8 → E8 0E.
  EXPECT_EQ(encode_value(reg::Homing_Offset, -1768), (Bytes{0xE8, 0x0E}));
  const uint8_t raw[] = {0xE8, 0x0E};
  EXPECT_EQ(decode_value(reg::Homing_Offset, raw), -1768);
  const uint8_t load[] = {0x64, 0x04};
  EXPECT_EQ(decode_value(reg::Present_Load, load), -100);
  EXPECT_THROW(encode_value(reg::Homing_Offset, 2048), Error);
  EXPECT_THROW(encode_value(reg::Torque_Enable, 256), Error);
  EXPECT_THROW(encode_value(reg::Min_Position_Limit, -1), Error);
}

TEST(ControlTable, AddressesSizesAndSignBits) {
  EXPECT_EQ(find_register("Present_Position").address, 56);
  EXPECT_EQ(find_register("Goal_Position").address, 42);
  EXPECT_EQ(find_register("Homing_Offset").sign_bit, 11);
  EXPECT_EQ(find_register("Present_Load").sign_bit, 10);
  EXPECT_EQ(find_register("Goal_Velocity").sign_bit, 15);
  EXPECT_EQ(find_register("Torque_Enable").memory, Memory::ram);
  EXPECT_EQ(find_register("Min_Position_Limit").memory, Memory::eeprom);
  EXPECT_EQ(find_register("Maximum_Acceleration").address, 85);
  EXPECT_FALSE(find_register("Model_Number").writable);
  EXPECT_EQ(register_at(31), &find_register("Homing_Offset"));
  EXPECT_EQ(register_at(32), nullptr);
  try {
    find_register("Present_Positon");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Present_Position"), std::string::npos) << e.what();
  }
  // No two registers overlap, and everything fits in the table.
  std::vector<int> owner(kControlTableSize, -1);
  const auto& table = sts3215_control_table();
  for (size_t i = 0; i < table.size(); ++i)
    for (int a = table[i].address; a < table[i].address + table[i].size; ++a) {
      ASSERT_LT(a, kControlTableSize);
      EXPECT_EQ(owner[a], -1) << table[i].name << " overlaps " << table[owner[a]].name;
      owner[a] = static_cast<int>(i);
    }
  EXPECT_EQ(describe_error_bits(kErrorOverload | kErrorOverheat), "overheat, overload");
  EXPECT_EQ(describe_error_bits(0), "none");
}

// ---- parser -----------------------------------------------------------------------------------------

std::vector<Packet> parse_all(PacketParser& parser, const Bytes& bytes) {
  parser.feed(bytes.data(), bytes.size());
  std::vector<Packet> out;
  Packet p;
  while (parser.next(p)) out.push_back(p);
  return out;
}

TEST(PacketParser, FindsPacketAfterGarbageAndAcrossSplits) {
  PacketParser parser(PacketKind::status);
  Bytes stream{0x00, 0x13, 0xFF, 0x37, 0xFF};  // garbage, including lone FFs
  Bytes a = status_packet(3, 0, {0x10, 0x02});
  Bytes b = status_packet(4, kErrorOverload, {});
  stream.insert(stream.end(), a.begin(), a.end());
  stream.insert(stream.end(), b.begin(), b.end());
  // Feed one byte at a time.
  std::vector<Packet> got;
  for (uint8_t byte : stream) {
    parser.feed(&byte, 1);
    Packet p;
    while (parser.next(p)) got.push_back(p);
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, 3);
  EXPECT_EQ(got[0].params, (Bytes{0x10, 0x02}));
  EXPECT_EQ(got[1].id, 4);
  EXPECT_EQ(got[1].code, kErrorOverload);
  EXPECT_EQ(parser.buffered(), 0u);
  EXPECT_GE(parser.discarded_bytes(), 4u);
}

TEST(PacketParser, ResynchronisesAfterBadChecksumAndBadHeader) {
  PacketParser parser(PacketKind::status);
  Bytes bad = status_packet(1, 0, {0x00, 0x08});
  bad.back() ^= 0x55;                                 // checksum wrong
  Bytes bad_id{0xFF, 0xFF, 0xFE, 0x02, 0x00, 0xFF};   // broadcast ID: never a status
  Bytes bad_len{0xFF, 0xFF, 0x01, 0xFB, 0x00};        // LEN 251 > 250
  Bytes bad_err{0xFF, 0xFF, 0x01, 0x02, 0x80, 0x7C};  // ERR > 0x7F
  Bytes good = status_packet(2, 0, {0x01});
  Bytes stream;
  for (const Bytes* b : {&bad, &bad_id, &bad_len, &bad_err, &good}) stream.insert(stream.end(), b->begin(), b->end());
  auto got = parse_all(parser, stream);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 2);
  EXPECT_EQ(parser.checksum_errors(), 1u);
  EXPECT_GE(parser.header_errors(), 3u);
}

TEST(PacketParser, FalseHeaderInsidePayloadDoesNotLoseTheNextPacket) {
  // A truncated packet (its tail lost) followed by a complete one: the truncated header claims bytes of the
  // next packet, fails the checksum, and the parser must still find the complete packet.
  PacketParser parser(PacketKind::status);
  Bytes truncated = status_packet(5, 0, {0x11, 0x22, 0x33, 0x44});
  truncated.resize(6);
  Bytes good = status_packet(6, 0, {0x00, 0x08});
  Bytes stream = truncated;
  stream.insert(stream.end(), good.begin(), good.end());
  auto got = parse_all(parser, stream);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 6);
}

TEST(PacketParser, WaitsForIncompletePacket) {
  PacketParser parser(PacketKind::instruction);
  Bytes p = sync_read_packet(56, 2, {1, 2, 3});
  parser.feed(p.data(), p.size() - 1);
  Packet out;
  EXPECT_FALSE(parser.next(out));
  EXPECT_EQ(parser.buffered(), p.size() - 1);
  parser.feed(&p.back(), 1);
  ASSERT_TRUE(parser.next(out));
  EXPECT_EQ(out.id, kBroadcastId);
  EXPECT_EQ(out.code, static_cast<uint8_t>(Instruction::sync_read));
  EXPECT_EQ(out.params, (Bytes{56, 2, 1, 2, 3}));
}

TEST(PacketParser, FuzzArbitraryBytesNeverCrashAndOnlyYieldValidPackets) {
  std::mt19937 rng(1234);
  for (PacketKind kind : {PacketKind::status, PacketKind::instruction}) {
    PacketParser parser(kind);
    size_t packets = 0;
    for (int round = 0; round < 20000; ++round) {
      // Random bytes biased toward 0xFF so that headers (and false headers) are common.
      Bytes chunk(rng() % 64);
      for (auto& b : chunk) b = (rng() % 4 == 0) ? 0xFF : static_cast<uint8_t>(rng());
      parser.feed(chunk.data(), chunk.size());
      Packet p;
      while (parser.next(p)) {
        ++packets;
        ASSERT_LE(p.params.size(), static_cast<size_t>(kMaxParams));
        if (kind == PacketKind::status) {
          ASSERT_LE(p.id, kMaxServoId);
          ASSERT_LE(p.code, 0x7F);
        }
        Bytes re = encode_packet(p.id, p.code, p.params);  // re-encoding gives a checksum-valid packet
        ASSERT_EQ(re.size(), p.params.size() + 6);
      }
      ASSERT_LE(parser.buffered(), static_cast<size_t>(kHeaderSize + kMaxPacketLength + 64));
    }
    SUCCEED() << packets << " accidental packets";
  }
}

TEST(PacketParser, FuzzValidPacketsAmidGarbageAreRecovered) {
  std::mt19937 rng(99);
  PacketParser parser(PacketKind::status);
  int sent = 0, found = 0;
  for (int round = 0; round < 2000; ++round) {
    Bytes garbage(rng() % 12);
    for (auto& b : garbage) b = static_cast<uint8_t>(rng());
    Bytes data(rng() % 8);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    const uint8_t id = static_cast<uint8_t>(1 + rng() % 6);
    Bytes packet = status_packet(id, 0, data);
    Bytes stream = garbage;
    stream.insert(stream.end(), packet.begin(), packet.end());
    // Random chunking.
    size_t at = 0;
    while (at < stream.size()) {
      size_t n = std::min(stream.size() - at, static_cast<size_t>(1 + rng() % 9));
      parser.feed(stream.data() + at, n);
      at += n;
    }
    ++sent;
    Packet p;
    while (parser.next(p))
      if (p.id == id && p.params == data) ++found;
  }
  // A false header in the garbage can swallow a packet only if its checksum happens to be valid.
  EXPECT_GE(found, sent * 97 / 100) << found << " of " << sent;
}

}  // namespace
}  // namespace vlascope::feetech
