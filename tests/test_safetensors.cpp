// Safetensors files: exact bytes of the reference format, round trips, the parity checkpoints, bit-exact
// bf16/f16 conversions, and a clean Error (never a crash) for every kind of damaged file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/error.h"
#include "policy/safetensors.h"

namespace vlascope {
namespace {

using namespace std::string_literals;  // "..."s keeps embedded NUL bytes
using ::testing::HasSubstr;

const std::string kParityDir = VLASCOPE_SOURCE_DIR "/../shared/parity/";

uint32_t bits_of(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

float float_of(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return s;
}

// The bytes of a safetensors file with this header text (used as is, no padding) and data section.
std::string file_bytes(const std::string& header, const std::string& data) {
  return le64(header.size()) + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string bytes_of(const SafetensorsFile& file, const TensorInfo& info) {
  return std::string(reinterpret_cast<const char*>(file.data(info)), info.nbytes);
}

class Safetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("vlascope_test_safetensors_" + std::to_string(::getpid()) + "_" +
                                                     ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Writes `bytes` to a file and expects opening it to throw an Error whose message names the file and
  // contains every fragment.
  void expect_rejected(const std::string& bytes, const std::vector<std::string>& fragments) {
    const std::string file = path("bad.safetensors");
    write_bytes(file, bytes);
    try {
      SafetensorsFile opened(file);
      ADD_FAILURE() << "accepted a bad file; expected an error containing \"" << fragments.front() << "\"";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(file));
      for (const std::string& fragment : fragments) EXPECT_THAT(e.what(), HasSubstr(fragment));
    }
  }

  std::filesystem::path dir_;
};

// A small valid file with a BF16, an F32, an I64 and a BOOL tensor and metadata, written by the writer.
std::string small_file(const std::string& path) {
  SafetensorsWriter writer;
  const std::vector<uint16_t> bf16{float_to_bf16(1.5f), float_to_bf16(-2.0f), float_to_bf16(0.25f)};
  const std::vector<float> f32{1.0f, 2.0f, -3.5f, 1e-3f};
  const std::vector<int64_t> i64{(int64_t{1} << 40) + 3};
  const std::vector<uint8_t> flags{1, 0};
  writer.add("w.bf16", DType::kBF16, {3}, bf16.data(), 6);
  writer.add("w.f32", DType::kF32, {2, 2}, f32.data(), 16);
  writer.add("ids", DType::kI64, {1}, i64.data(), 8);
  writer.add("mask", DType::kBool, {2}, flags.data(), 2);
  writer.set_metadata("format", "pt");
  writer.write(path);
  return read_bytes(path);
}

// ---------------------------------------------------------------------------------------------------------
// Element types and conversions

TEST(SafetensorsDType, NamesSizesAndLookupAgree) {
  const std::vector<std::pair<DType, size_t>> all{
      {DType::kF32, 4}, {DType::kF16, 2}, {DType::kBF16, 2}, {DType::kF64, 8}, {DType::kI64, 8},
      {DType::kI32, 4}, {DType::kI16, 2}, {DType::kI8, 1},   {DType::kU8, 1},  {DType::kBool, 1}};
  std::set<std::string> names;
  for (const auto& [dtype, size] : all) {
    EXPECT_EQ(dtype_size(dtype), size) << dtype_name(dtype);
    EXPECT_EQ(dtype_from_name(dtype_name(dtype)), dtype);
    names.insert(dtype_name(dtype));
  }
  EXPECT_EQ(names, (std::set<std::string>{"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"}));
  EXPECT_FALSE(dtype_from_name("f32").has_value());  // the format is case-sensitive
  EXPECT_FALSE(dtype_from_name("F8_E4M3").has_value());
  EXPECT_FALSE(dtype_from_name("").has_value());
}

TEST(SafetensorsConversion, Bf16KnownBitPatterns) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(float_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(float_to_bf16(0.0f), 0x0000);
  EXPECT_EQ(float_to_bf16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bf16(float_of(0x40490FDB)), 0x4049);  // pi
  EXPECT_EQ(float_to_bf16(1.0f / 3.0f), 0x3EAB);           // 0x3EAAAAAB rounds up
  // Exactly halfway: ties go to the even neighbour; just above halfway goes up.
  EXPECT_EQ(float_to_bf16(float_of(0x3F808000)), 0x3F80);
  EXPECT_EQ(float_to_bf16(float_of(0x3F818000)), 0x3F82);
  EXPECT_EQ(float_to_bf16(float_of(0x3F808001)), 0x3F81);
  EXPECT_EQ(float_to_bf16(float_of(0x3F807FFF)), 0x3F80);
  // Infinities stay, the largest floats round up to inf, every NaN becomes torch's 0x7FC0.
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::quiet_NaN()), 0x7FC0);
  EXPECT_EQ(float_to_bf16(-std::numeric_limits<float>::quiet_NaN()), 0x7FC0);
  EXPECT_EQ(float_to_bf16(float_of(0x7F800001)), 0x7FC0);  // signalling NaN whose payload would truncate to inf
  // Denormals: bf16 has float's exponent range, so float denormals map onto bf16 denormals.
  EXPECT_EQ(float_to_bf16(float_of(0x00000001)), 0x0000);
  EXPECT_EQ(float_to_bf16(float_of(0x00018000)), 0x0002);
  EXPECT_EQ(bits_of(bf16_to_float(0x0001)), 0x00010000u);
  EXPECT_EQ(bf16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_float(0xC000), -2.0f);
  EXPECT_TRUE(std::isinf(bf16_to_float(0xFF80)) && bf16_to_float(0xFF80) < 0);
  EXPECT_TRUE(std::isnan(bf16_to_float(0x7FC1)));
}

TEST(SafetensorsConversion, Bf16RoundsEveryMidpointToEven) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t h = 0; h < 0x7F80; ++h) {  // every finite magnitude and its upper neighbour
      const uint16_t lower = static_cast<uint16_t>(sign | h);
      const uint16_t upper = static_cast<uint16_t>(sign | (h + 1));
      ASSERT_EQ(float_to_bf16(bf16_to_float(lower)), lower);
      const uint32_t midpoint = (static_cast<uint32_t>(lower) << 16) | 0x8000;
      ASSERT_EQ(float_to_bf16(float_of(midpoint)), (h & 1) ? upper : lower) << std::hex << midpoint;
      ASSERT_EQ(float_to_bf16(float_of(midpoint - 1)), lower) << std::hex << midpoint;
      ASSERT_EQ(float_to_bf16(float_of(midpoint + 1)), upper) << std::hex << midpoint;
    }
  }
}

TEST(SafetensorsConversion, F16KnownBitPatterns) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_f16(1.0f), 0x3C00);
  EXPECT_EQ(float_to_f16(-2.0f), 0xC000);
  EXPECT_EQ(float_to_f16(0.0f), 0x0000);
  EXPECT_EQ(float_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_f16(0.1f), 0x2E66);
  EXPECT_EQ(float_to_f16(1.0f / 3.0f), 0x3555);
  EXPECT_EQ(float_to_f16(65504.0f), 0x7BFF);  // largest half
  EXPECT_EQ(float_to_f16(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(float_to_f16(65520.0f), 0x7C00);  // halfway to 65536, ties to even = overflow to inf
  EXPECT_EQ(float_to_f16(1e6f), 0x7C00);
  EXPECT_EQ(float_to_f16(-1e6f), 0xFC00);
  EXPECT_EQ(float_to_f16(inf), 0x7C00);
  EXPECT_EQ(float_to_f16(-inf), 0xFC00);
  EXPECT_EQ(float_to_f16(std::numeric_limits<float>::quiet_NaN()), 0x7E00);
  EXPECT_EQ(float_to_f16(-std::numeric_limits<float>::quiet_NaN()), 0xFE00);
  // Ties to even in the normal range: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  EXPECT_EQ(float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // Subnormals: smallest normal 2^-14, smallest subnormal 2^-24; 2^-25 is halfway to zero and rounds to it.
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(float_to_f16(std::ldexp(1023.0f, -24)), 0x03FF);
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(float_to_f16(-std::ldexp(1.0f, -25)), 0x8000);
  EXPECT_EQ(float_to_f16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(float_to_f16(std::ldexp(3.0f, -25)), 0x0002);     // halfway between 1 and 2 subnormal steps
  EXPECT_EQ(float_to_f16(std::ldexp(2047.0f, -25)), 0x0400);  // rounds up out of the subnormals
  EXPECT_EQ(float_to_f16(1e-10f), 0x0000);
  EXPECT_EQ(float_to_f16(float_of(0x00000001)), 0x0000);  // float denormal

  EXPECT_EQ(f16_to_float(0x3C00), 1.0f);
  EXPECT_EQ(f16_to_float(0xC000), -2.0f);
  EXPECT_EQ(f16_to_float(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_float(0x83FF), -std::ldexp(1023.0f, -24));
  EXPECT_EQ(f16_to_float(0x7C00), inf);
  EXPECT_EQ(f16_to_float(0xFC00), -inf);
  EXPECT_TRUE(std::isnan(f16_to_float(0x7E00)));
  EXPECT_TRUE(std::isnan(f16_to_float(0x7C01)));
  EXPECT_TRUE(std::signbit(f16_to_float(0x8000)) && f16_to_float(0x8000) == 0.0f);
}

TEST(SafetensorsConversion, F16RoundsEveryMidpointToEven) {
  for (uint32_t sign : {0u, 0x8000u}) {
    for (uint32_t h = 0; h < 0x7C00; ++h) {
      const uint16_t lower = static_cast<uint16_t>(sign | h);
      const uint16_t upper = static_cast<uint16_t>(sign | (h + 1));
      ASSERT_EQ(float_to_f16(f16_to_float(lower)), lower) << std::hex << lower;
      if (h == 0x7BFF) continue;  // the upper neighbour is inf; 65520 is checked above
      // Halves have at most 11 significant bits, so the midpoint is exact in float.
      const float midpoint = (f16_to_float(lower) + f16_to_float(upper)) * 0.5f;
      const float toward_zero = std::nextafter(midpoint, 0.0f);
      const float away = std::nextafter(midpoint, sign ? -1e9f : 1e9f);
      ASSERT_EQ(float_to_f16(midpoint), (h & 1) ? upper : lower) << std::hex << lower;
      ASSERT_EQ(float_to_f16(toward_zero), lower) << std::hex << lower;
      ASSERT_EQ(float_to_f16(away), upper) << std::hex << lower;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Exact bytes and round trips

// The reference implementation's own serialization test vectors (safetensors/src/tensor.rs), written out
// byte by byte: our reader must parse them and our writer must reproduce them exactly.
TEST_F(Safetensors, MatchesReferenceBytesExactly) {
  const std::string floats_0_to_5 =
      "\x00\x00\x00\x00"
      "\x00\x00\x80\x3f"
      "\x00\x00\x00\x40"
      "\x00\x00\x40\x40"
      "\x00\x00\x80\x40"
      "\x00\x00\xa0\x40"s;
  struct Case {
    std::string expected;
    std::function<void(SafetensorsWriter&)> fill;
  };
  const std::vector<float> values{0, 1, 2, 3, 4, 5};
  const std::vector<Case> cases{
      // 64-byte header, already a multiple of 8: no padding.
      {"\x40\x00\x00\x00\x00\x00\x00\x00"s + R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})" +
           floats_0_to_5,
       [&](SafetensorsWriter& w) {
         w.add("attn.0", DType::kF32, {1, 2, 3}, values.data(), 24);
       }},
      // 65-byte header padded with 7 spaces to 72, so the data starts 8-byte aligned.
      {"\x48\x00\x00\x00\x00\x00\x00\x00"s + R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" +
           "       " + floats_0_to_5,
       [&](SafetensorsWriter& w) {
         w.add("attn0", DType::kF32, {1, 1, 2, 3}, values.data(), 24);
       }},
      // No tensors at all.
      {"\x08\x00\x00\x00\x00\x00\x00\x00{}      "s, [](SafetensorsWriter&) {}},
      // Metadata only.
      {"\x28\x00\x00\x00\x00\x00\x00\x00"s + R"({"__metadata__":{"framework":"pt"}})" + "     ",
       [](SafetensorsWriter& w) { w.set_metadata("framework", "pt"); }},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    const std::string by_hand = path("by_hand.safetensors");
    write_bytes(by_hand, cases[i].expected);
    SafetensorsFile file(by_hand);
    if (i < 2) {
      ASSERT_EQ(file.tensors().size(), 1u);
      const TensorInfo& t = file.tensors()[0];
      EXPECT_EQ(t.name, i == 0 ? "attn.0" : "attn0");
      EXPECT_EQ(t.dtype, DType::kF32);
      EXPECT_EQ(t.shape, i == 0 ? (std::vector<int64_t>{1, 2, 3}) : (std::vector<int64_t>{1, 1, 2, 3}));
      EXPECT_EQ(t.offset, 0u);
      EXPECT_EQ(t.nbytes, 24u);
      EXPECT_EQ(t.numel(), 6);
      EXPECT_EQ(file.to_float(t), values);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(file.data(t)) % 8, 0u);
    } else {
      EXPECT_TRUE(file.tensors().empty());
    }
    EXPECT_EQ(file.metadata(), i == 3 ? (std::map<std::string, std::string>{{"framework", "pt"}})
                                      : (std::map<std::string, std::string>{}));

    SafetensorsWriter writer;
    cases[i].fill(writer);
    const std::string written = path("written.safetensors");
    writer.write(written);
    EXPECT_EQ(read_bytes(written), cases[i].expected);
  }
}

// A file written by hand the way other writers may produce it: tensors listed out of offset order, JSON
// whitespace, an unpadded header, unaligned data, extra fields. The reader must parse it; re-writing what it
// read must give a file that reads back identically.
TEST_F(Safetensors, ReadsHandWrittenFileAndRewritesItIdentically) {
  const std::string header =
      "{ \"mask\": {\"shape\": [3], \"dtype\": \"BOOL\", \"data_offsets\": [0, 3]},\n"
      "  \"tokens\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [9, 25]},\n"
      "  \"half\": {\"dtype\": \"BF16\", \"shape\": [1, 3], \"data_offsets\": [3, 9], \"note\": [1, {}]},\n"
      "  \"__metadata__\": {\"source\": \"hand\", \"empty\": \"\"},\n"
      "  \"none\": {\"dtype\": \"F32\", \"shape\": [0, 4], \"data_offsets\": [25, 25]},\n"
      "  \"scalar\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [25, 29]}\t}  ";
  const std::string data =
      "\x01\x00\x01"                      // mask: true, false, true
      "\x80\x3f"                          // half[0] = 1.0 (0x3F80)
      "\x00\xc0"                          // half[1] = -2.0 (0xC000)
      "\xc0\x7f"                          // half[2] = NaN (0x7FC0)
      "\x07\x00\x00\x00\x00\x00\x00\x00"  // tokens[0] = 7
      "\xfe\xff\xff\xff\xff\xff\xff\xff"  // tokens[1] = -2
      "\x00\x00\x20\x41"s;                // scalar = 10.0
  const std::string original_path = path("hand.safetensors");
  write_bytes(original_path, file_bytes(header, data));
  const SafetensorsFile original(original_path);

  std::vector<std::string> names;
  for (const TensorInfo& t : original.tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"mask", "half", "tokens", "none", "scalar"}));
  EXPECT_EQ(original.metadata(), (std::map<std::string, std::string>{{"source", "hand"}, {"empty", ""}}));
  EXPECT_EQ(original.to_float(original.at("mask")), (std::vector<float>{1, 0, 1}));
  const std::vector<float> half = original.to_float(original.at("half"));
  ASSERT_EQ(half.size(), 3u);
  EXPECT_EQ(half[0], 1.0f);
  EXPECT_EQ(half[1], -2.0f);
  EXPECT_TRUE(std::isnan(half[2]));
  EXPECT_EQ(original.at("half").shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(original.to_float(original.at("tokens")), (std::vector<float>{7, -2}));
  EXPECT_EQ(original.at("none").numel(), 0);
  EXPECT_TRUE(original.to_float(original.at("none")).empty());
  EXPECT_EQ(original.at("scalar").numel(), 1);
  EXPECT_EQ(original.to_float(original.at("scalar")), (std::vector<float>{10.0f}));

  SafetensorsWriter writer;
  for (const TensorInfo& t : original.tensors()) writer.add(t.name, t.dtype, t.shape, original.data(t), t.nbytes);
  for (const auto& [key, value] : original.metadata()) writer.set_metadata(key, value);
  const std::string copy_path = path("copy.safetensors");
  writer.write(copy_path);
  const SafetensorsFile copy(copy_path);
  ASSERT_EQ(copy.tensors().size(), original.tensors().size());
  for (size_t i = 0; i < copy.tensors().size(); ++i) {
    const TensorInfo& a = original.tensors()[i];
    const TensorInfo& b = copy.tensors()[i];
    EXPECT_EQ(b.name, a.name);
    EXPECT_EQ(b.dtype, a.dtype);
    EXPECT_EQ(b.shape, a.shape);
    EXPECT_EQ(b.offset, a.offset);  // insertion order = the original's offset order
    EXPECT_EQ(b.nbytes, a.nbytes);
    EXPECT_EQ(bytes_of(copy, b), bytes_of(original, a)) << a.name;
  }
  EXPECT_EQ(copy.metadata(), original.metadata());
  // The data section is the same bytes; only the header text differs (compact, padded).
  const std::string copy_bytes = read_bytes(copy_path);
  EXPECT_EQ(copy_bytes.substr(copy_bytes.size() - data.size()), data);
  EXPECT_EQ((copy_bytes.size() - data.size()) % 8, 0u);
}

TEST_F(Safetensors, RoundTripsMixedDTypesAndMetadata) {
  const std::vector<float> source{0.1f, -1.5f, 3.0f, 1e-8f, 65504.0f, -0.0f};
  std::vector<uint16_t> bf16;
  for (float v : source) bf16.push_back(float_to_bf16(v));
  const std::vector<float> f32{1.0f, -2.0f, 3.25f, 1e30f, -1e-30f, 0.5f, 7.0f, 8.0f};
  const std::vector<int64_t> i64{0, -1, int64_t{1} << 40, -(int64_t{1} << 50)};
  const std::vector<uint8_t> flags{1, 0, 0, 1, 1};
  const std::vector<uint16_t> f16{float_to_f16(0.5f), float_to_f16(-3.0f)};
  const std::vector<double> f64{0.1, -1e300};
  const std::vector<int32_t> i32{-5, 1 << 20};

  SafetensorsWriter writer;
  writer.add("model.layer.weight", DType::kBF16, {2, 3}, bf16.data(), bf16.size() * 2);
  writer.add("model.layer.bias", DType::kF32, {8}, f32.data(), f32.size() * 4);
  writer.add("lang_tokens", DType::kI64, {2, 2}, i64.data(), i64.size() * 8);
  writer.add("img_masks", DType::kBool, {5}, flags.data(), flags.size());
  writer.add("half", DType::kF16, {2}, f16.data(), 4);
  writer.add("double", DType::kF64, {2}, f64.data(), 16);
  writer.add("ints", DType::kI32, {1, 2}, i32.data(), 8);
  writer.add("scalar", DType::kF32, {}, f32.data(), 4);
  writer.add("empty", DType::kF32, {0, 5}, nullptr, 0);
  writer.set_metadata("format", "pt");
  writer.set_metadata("note", "ünïcödé, \"quotes\" and \\ backslash\n");
  writer.set_metadata("format", "pt");  // setting again replaces, not duplicates
  const std::string file_path = path("mixed.safetensors");
  writer.write(file_path);
  EXPECT_FALSE(std::filesystem::exists(file_path + ".tmp"));

  const SafetensorsFile file(file_path);
  const std::vector<std::string> expected_order{"model.layer.weight",
                                                "model.layer.bias",
                                                "lang_tokens",
                                                "img_masks",
                                                "half",
                                                "double",
                                                "ints",
                                                "scalar",
                                                "empty"};
  ASSERT_EQ(file.tensors().size(), expected_order.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < expected_order.size(); ++i) {
    EXPECT_EQ(file.tensors()[i].name, expected_order[i]);
    EXPECT_EQ(file.tensors()[i].offset, offset) << "tensors are laid out in insertion order";
    offset += file.tensors()[i].nbytes;
  }
  EXPECT_EQ(file.metadata(),
            (std::map<std::string, std::string>{{"format", "pt"}, {"note", "ünïcödé, \"quotes\" and \\ backslash\n"}}));

  const TensorInfo& weight = file.at("model.layer.weight");
  EXPECT_EQ(weight.dtype, DType::kBF16);
  EXPECT_EQ(weight.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(bytes_of(file, weight), raw(bf16));
  const std::vector<float> weight_values = file.to_float(weight);
  for (size_t i = 0; i < source.size(); ++i) EXPECT_EQ(weight_values[i], bf16_to_float(bf16[i]));
  EXPECT_NEAR(weight_values[0], 0.1f, 0.1f / 128);  // bf16 keeps 8 significant bits
  EXPECT_TRUE(std::signbit(weight_values[5]));

  EXPECT_EQ(file.to_float(file.at("model.layer.bias")), f32);
  EXPECT_EQ(bytes_of(file, file.at("lang_tokens")), raw(i64));
  EXPECT_EQ(file.to_float(file.at("lang_tokens")),
            (std::vector<float>{0.0f, -1.0f, std::ldexp(1.0f, 40), -std::ldexp(1.0f, 50)}));
  EXPECT_EQ(file.at("img_masks").dtype, DType::kBool);
  EXPECT_EQ(file.to_float(file.at("img_masks")), (std::vector<float>{1, 0, 0, 1, 1}));
  EXPECT_EQ(file.to_float(file.at("half")), (std::vector<float>{0.5f, -3.0f}));
  EXPECT_EQ(file.to_float(file.at("double")), (std::vector<float>{0.1f, -std::numeric_limits<float>::infinity()}));
  EXPECT_EQ(file.to_float(file.at("ints")), (std::vector<float>{-5.0f, 1048576.0f}));
  EXPECT_EQ(file.at("scalar").shape, std::vector<int64_t>{});
  EXPECT_EQ(file.to_float(file.at("scalar")), (std::vector<float>{1.0f}));
  EXPECT_EQ(file.at("empty").shape, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(file.at("empty").nbytes, 0u);
}

TEST_F(Safetensors, OpensTheParityCheckpoints) {
  const SafetensorsFile weights(kParityDir + "smolvla_tiny_weights.safetensors");
  EXPECT_EQ(weights.tensors().size(), 124u);
  int64_t parameters = 0;
  for (const TensorInfo& t : weights.tensors()) {
    EXPECT_EQ(t.dtype, DType::kF32) << t.name;
    parameters += t.numel();
  }
  EXPECT_EQ(parameters, 1272264);
  EXPECT_EQ(weights.metadata().at("variant"), "tiny");
  EXPECT_EQ(weights.at("model.action_time_mlp_out.bias").shape, (std::vector<int64_t>{96}));
  EXPECT_EQ(weights.at("model.action_time_mlp_out.weight").shape, (std::vector<int64_t>{96, 96}));
  for (float v : weights.to_float(weights.at("model.action_time_mlp_out.weight"))) ASSERT_TRUE(std::isfinite(v));

  const SafetensorsFile io(kParityDir + "smolvla_tiny_io.safetensors");
  EXPECT_EQ(io.tensors().size(), 48u);
  const TensorInfo& tokens = io.at("lang_tokens");
  EXPECT_EQ(tokens.dtype, DType::kI64);
  EXPECT_EQ(tokens.shape, (std::vector<int64_t>{2, 12}));
  for (float token : io.to_float(tokens)) {
    EXPECT_EQ(token, std::floor(token));
    EXPECT_GE(token, 0);
    EXPECT_LT(token, 256);  // the tiny vocabulary
  }
  const TensorInfo& masks = io.at("lang_masks");
  EXPECT_EQ(masks.dtype, DType::kBool);
  const std::vector<float> mask_values = io.to_float(masks);
  EXPECT_EQ(std::accumulate(mask_values.begin(), mask_values.begin() + 12, 0.0f), 12);  // 12 valid tokens
  EXPECT_EQ(std::accumulate(mask_values.begin() + 12, mask_values.end(), 0.0f), 7);     // and 7
  EXPECT_EQ(io.at("img_masks.0").dtype, DType::kBool);
  EXPECT_EQ(io.at("actions").shape, (std::vector<int64_t>{2, 10, 8}));
}

// Re-writing the parity weights (tensors in file order, same metadata) reproduces their data section byte
// for byte and reads back as the same tensors.
TEST_F(Safetensors, RewritesTheParityWeightsLosslessly) {
  const std::string original_path = kParityDir + "smolvla_tiny_weights.safetensors";
  const SafetensorsFile original(original_path);
  SafetensorsWriter writer;
  for (const TensorInfo& t : original.tensors()) writer.add(t.name, t.dtype, t.shape, original.data(t), t.nbytes);
  for (const auto& [key, value] : original.metadata()) writer.set_metadata(key, value);
  const std::string copy_path = path("weights_copy.safetensors");
  writer.write(copy_path);

  const SafetensorsFile copy(copy_path);
  ASSERT_EQ(copy.tensors().size(), original.tensors().size());
  for (size_t i = 0; i < copy.tensors().size(); ++i) {
    EXPECT_EQ(copy.tensors()[i].name, original.tensors()[i].name);
    EXPECT_EQ(copy.tensors()[i].shape, original.tensors()[i].shape);
    EXPECT_EQ(copy.tensors()[i].offset, original.tensors()[i].offset);
  }
  EXPECT_EQ(copy.metadata(), original.metadata());
  const std::string a = read_bytes(original_path);
  const std::string b = read_bytes(copy_path);
  uint64_t data_size = 0;
  for (const TensorInfo& t : original.tensors()) data_size += t.nbytes;
  ASSERT_GE(a.size(), data_size);
  ASSERT_GE(b.size(), data_size);
  EXPECT_TRUE(a.compare(a.size() - data_size, data_size, b, b.size() - data_size, data_size) == 0);
}

TEST_F(Safetensors, MovingKeepsTheMappingAlive) {
  small_file(path("small.safetensors"));
  SafetensorsFile first(path("small.safetensors"));
  const std::vector<float> before = first.to_float(first.at("w.f32"));
  SafetensorsFile second(std::move(first));
  EXPECT_EQ(second.to_float(second.at("w.f32")), before);
  SafetensorsFile third(path("small.safetensors"));
  third = std::move(second);
  EXPECT_EQ(third.to_float(third.at("w.f32")), before);
  EXPECT_EQ(third.path(), path("small.safetensors"));
}

TEST_F(Safetensors, LookupNamesTheFileAndTensor) {
  small_file(path("small.safetensors"));
  const SafetensorsFile file(path("small.safetensors"));
  EXPECT_NE(file.find("w.bf16"), nullptr);
  EXPECT_EQ(file.find("w.bf16")->dtype, DType::kBF16);
  EXPECT_EQ(file.find("missing"), nullptr);
  try {
    file.at("model.missing.weight");
    ADD_FAILURE() << "at() accepted a missing tensor";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path("small.safetensors")));
    EXPECT_THAT(e.what(), HasSubstr("model.missing.weight"));
  }
  // A TensorInfo that did not come from this file could point anywhere: refused.
  TensorInfo forged = *file.find("w.f32");
  forged.offset = 1u << 30;
  EXPECT_THROW(file.data(forged), Error);
  EXPECT_THROW(file.to_float(forged), Error);
  const SafetensorsFile other(path("small.safetensors"));
  EXPECT_THROW(file.data(other.at("w.f32")), Error);
}

// ---------------------------------------------------------------------------------------------------------
// Damaged files

TEST_F(Safetensors, RejectsMissingFilesAndDirectories) {
  try {
    SafetensorsFile file(path("does_not_exist.safetensors"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path("does_not_exist.safetensors")));
    EXPECT_THAT(e.what(), HasSubstr("No such file"));
  }
  try {
    SafetensorsFile file(dir_.string());
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir_.string()));
    EXPECT_THAT(e.what(), HasSubstr("directory"));
  }
}

TEST_F(Safetensors, RejectsShortFilesAndBadHeaderLengths) {
  for (size_t size = 0; size < 8; ++size) {
    SCOPED_TRACE(size);
    expect_rejected(std::string(size, '\x02'), {"shorter than the 8-byte header length"});
  }
  expect_rejected(le64(1000) + "{}", {"header length 1000", "runs past the end of the file (10 bytes)"});
  expect_rejected(le64(100'000'001) + "{}", {"header length 100000001", "exceeds the 100000000-byte limit"});
  expect_rejected(le64(~uint64_t{0}) + "{}", {"exceeds the 100000000-byte limit"});
  expect_rejected(le64(0), {"does not start with '{'"});
  expect_rejected(le64(3) + " {}", {"does not start with '{'"});
  expect_rejected(file_bytes("\xEF\xBB\xBF{}", ""), {"does not start with '{'"});  // UTF-8 byte-order mark
  expect_rejected(file_bytes("[]", ""), {"does not start with '{'"});
}

TEST_F(Safetensors, RejectsMalformedHeaders) {
  const std::string f32x2 = raw(std::vector<float>{1, 2});
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offsets) {
    return "{\"t\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}";
  };
  struct Case {
    std::string header;
    std::vector<std::string> fragments;
  };
  const std::vector<Case> cases{
      {"{\"t\":", {"not valid JSON"}},
      {"{\"t\":{}} x", {"not valid JSON"}},
      {"{\"t\":{\"dtype\":\"F32\"\xFF}}", {"not valid JSON"}},
      {"{\"\xC3\x28\":{}}", {"not valid JSON"}},  // invalid UTF-8 in a tensor name
      {"{\"t\":[1,2]}", {"tensor \"t\"", "entry must be an object"}},
      {"{\"t\":{\"shape\":[2],\"data_offsets\":[0,8]}}", {"tensor \"t\"", "field \"dtype\" is missing"}},
      {entry("4", "[2]", "[0,8]"), {"tensor \"t\"", "field \"dtype\" must be a string"}},
      {entry("\"F8_E4M3\"", "[8]", "[0,8]"), {"tensor \"t\"", "unknown dtype \"F8_E4M3\"", "BF16"}},
      {entry("\"float32\"", "[2]", "[0,8]"), {"tensor \"t\"", "unknown dtype \"float32\""}},
      {"{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", {"tensor \"t\"", "field \"shape\" is missing"}},
      {entry("\"F32\"", "2", "[0,8]"), {"tensor \"t\"", "field \"shape\" must be an array"}},
      {entry("\"F32\"", "[-2]", "[0,8]"), {"tensor \"t\"", "dimension 0 must be a non-negative integer, not -2"}},
      {entry("\"F32\"", "[1,2.0]", "[0,8]"), {"tensor \"t\"", "dimension 1 must be a non-negative integer"}},
      {entry("\"F32\"", "[\"2\"]", "[0,8]"), {"tensor \"t\"", "dimension 0"}},
      {entry("\"F32\"", "[null]", "[0,8]"), {"tensor \"t\"", "dimension 0"}},
      {entry("\"F32\"", "[18446744073709551615]", "[0,8]"), {"tensor \"t\"", "dimension 0"}},
      {entry("\"F32\"", "[1e3]", "[0,8]"), {"tensor \"t\"", "dimension 0 must be a non-negative integer, not 1000.0"}},
      {entry("\"F32\"", "[1e400]", "[0,8]"), {"not valid JSON", "number overflow"}},
      {entry("\"F32\"", "[4294967296,4294967296,16]", "[0,8]"), {"tensor \"t\"", "more than 2^63 elements"}},
      {entry("\"F64\"", "[2305843009213693952]", "[0,8]"), {"tensor \"t\"", "needs more than 2^64 bytes"}},
      {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", {"tensor \"t\"", "field \"data_offsets\" is missing"}},
      {entry("\"F32\"", "[2]", "[8]"), {"tensor \"t\"", "data_offsets\" must be two non-negative integers"}},
      {entry("\"F32\"", "[2]", "[0,4,8]"), {"tensor \"t\"", "data_offsets\" must be two"}},
      {entry("\"F32\"", "[2]", "[\"0\",\"8\"]"), {"tensor \"t\"", "data_offsets\" must be two"}},
      {entry("\"F32\"", "[2]", "[-8,0]"), {"tensor \"t\"", "data_offsets\" must be two"}},
      {entry("\"F32\"", "[2]", "[0.0,8.0]"), {"tensor \"t\"", "data_offsets\" must be two"}},
      {entry("\"F32\"", "[2]", "{\"begin\":0}"), {"tensor \"t\"", "data_offsets\" must be two"}},
      {entry("\"F32\"", "[2]", "[8,0]"), {"tensor \"t\"", "[8, 0] ends before it begins"}},
      {entry("\"F32\"", "[4]", "[0,16]"), {"tensor \"t\"", "[0, 16] runs past the end of the data section (8 bytes)"}},
      {entry("\"F32\"", "[2]", "[0,18446744073709551615]"), {"tensor \"t\"", "runs past the end of the data section"}},
      {entry("\"F32\"", "[3]", "[0,8]"), {"tensor \"t\"", "spans 8 bytes but shape [3] of F32 needs 12"}},
      {entry("\"BF16\"", "[2]", "[0,8]"), {"tensor \"t\"", "spans 8 bytes but shape [2] of BF16 needs 4"}},
      {"{\"__metadata__\":[\"a\"]}", {"\"__metadata__\" must be an object of strings"}},
      {"{\"__metadata__\":\"a\"}", {"\"__metadata__\" must be an object of strings"}},
      {"{\"__metadata__\":{\"seed\":0}}", {"\"__metadata__\"", "value of \"seed\" must be a string, not 0"}},
      {"{\"__metadata__\":{\"a\":{\"b\":\"c\"}}}", {"\"__metadata__\"", "value of \"a\" must be a string"}},
      {"{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"t\":{}}", {"key \"t\" twice"}},
      {"{\"t\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,8]}}", {"key \"dtype\" twice"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header);
    expect_rejected(file_bytes(c.header, f32x2), c.fragments);
  }
}

TEST_F(Safetensors, RejectsOverlapsHolesAndUncoveredBytes) {
  const std::string twelve_bytes(12, '\x01');
  const std::string a = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";
  const std::string b = "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":";
  const std::string e = "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":";
  expect_rejected(file_bytes("{" + a + "[0,8]}," + b + "[4,12]}}", twelve_bytes),
                  {"tensor \"b\" (data bytes [4, 12)) overlaps tensor \"a\" (data bytes [0, 8))"});
  expect_rejected(file_bytes("{" + a + "[0,8]}," + b + "[0,8]}}", std::string(8, '\x01')),
                  {"tensor \"b\"", "overlaps tensor \"a\""});
  // A zero-sized tensor may sit between tensors, not inside one (as the reference requires).
  expect_rejected(file_bytes("{" + a + "[0,8]}," + e + "[4,4]}}", std::string(8, '\x01')),
                  {"tensor \"e\"", "overlaps tensor \"a\""});
  expect_rejected(file_bytes("{" + a + "[0,8]}," + b + "[12,20]}}", std::string(20, '\x01')),
                  {"data section bytes [8, 12) belong to no tensor", "between tensor \"a\" and tensor \"b\""});
  expect_rejected(file_bytes("{" + a + "[4,12]}}", twelve_bytes),
                  {"data section bytes [0, 4) belong to no tensor", "before tensor \"a\""});
  expect_rejected(file_bytes("{" + a + "[0,8]}}", twelve_bytes),
                  {"data section bytes [8, 12) belong to no tensor", "after the last tensor \"a\""});
  expect_rejected(file_bytes("{}", "xyz"), {"data section bytes [0, 3) belong to no tensor"});
  // Tensors listed in any order, with a zero-sized one between two others, tiling everything: fine.
  const std::string c = "\"c\":{\"dtype\":\"I8\",\"shape\":[2,2],\"data_offsets\":";
  write_bytes(path("ok.safetensors"), file_bytes("{" + a + "[4,12]}," + e + "[4,4]}," + b + "[12,20]}," + c + "[0,4]}}",
                                                 std::string(20, '\x01')));
  const SafetensorsFile ok(path("ok.safetensors"));
  std::vector<std::string> order;
  for (const TensorInfo& t : ok.tensors()) order.push_back(t.name);
  EXPECT_EQ(order, (std::vector<std::string>{"c", "e", "a", "b"}));
}

TEST_F(Safetensors, AcceptsEmptyAndPaddedFiles) {
  write_bytes(path("empty.safetensors"), file_bytes("{}", ""));
  const SafetensorsFile empty(path("empty.safetensors"));
  EXPECT_TRUE(empty.tensors().empty());
  EXPECT_TRUE(empty.metadata().empty());

  write_bytes(path("null_metadata.safetensors"), file_bytes("{\"__metadata__\":null}\n\t \r", ""));
  EXPECT_TRUE(SafetensorsFile(path("null_metadata.safetensors")).metadata().empty());

  const std::string padded =
      std::string("{\"x\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}") + std::string(1000, ' ');
  write_bytes(path("padded.safetensors"), file_bytes(padded, "abc"));
  const SafetensorsFile file(path("padded.safetensors"));
  EXPECT_EQ(file.to_float(file.at("x")), (std::vector<float>{'a', 'b', 'c'}));
  EXPECT_EQ(bytes_of(file, file.at("x")), "abc");

  // Zero-sized tensors anywhere (even past every other tensor) and with huge other dimensions.
  const std::string zeros =
      "{\"z1\":{\"dtype\":\"F64\",\"shape\":[0],\"data_offsets\":[0,0]},"
      "\"z2\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,0],\"data_offsets\":[0,0]},"
      "\"x\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[0,2]},"
      "\"z3\":{\"dtype\":\"BOOL\",\"shape\":[3,0,2],\"data_offsets\":[2,2]},"
      "\"z4\":{\"dtype\":\"I64\",\"shape\":[9223372036854775807,2,0],\"data_offsets\":[2,2]}}";
  write_bytes(path("zeros.safetensors"), file_bytes(zeros, "\x05\xFB"));
  const SafetensorsFile zero_file(path("zeros.safetensors"));
  ASSERT_EQ(zero_file.tensors().size(), 5u);
  EXPECT_EQ(zero_file.at("z2").numel(), 0);
  EXPECT_EQ(zero_file.at("z4").numel(), 0);
  EXPECT_EQ(zero_file.at("z4").nbytes, 0u);
  EXPECT_EQ(zero_file.to_float(zero_file.at("x")), (std::vector<float>{5, -5}));
  EXPECT_TRUE(zero_file.to_float(zero_file.at("z3")).empty());
}

TEST_F(Safetensors, RejectsDeepNestingWithoutExhaustingTheStack) {
  auto nested = [](size_t depth) {
    // Root object and tensor entry are two levels; the "extra" field (ignored) adds `depth` more.
    return "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":" + std::string(depth, '[') +
           std::string(depth, ']') + "}}";
  };
  const std::string one_float = raw(std::vector<float>{1});
  write_bytes(path("deep_ok.safetensors"), file_bytes(nested(126), one_float));
  EXPECT_NO_THROW(SafetensorsFile(path("deep_ok.safetensors")));
  expect_rejected(file_bytes(nested(127), one_float), {"nested deeper than 128 levels"});
  expect_rejected(file_bytes("{\"t\":" + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}", ""),
                  {"nested deeper than 128 levels"});
  expect_rejected(file_bytes("{\"t\":" + std::string(1'000'000, '['), ""), {"nested deeper than 128 levels"});
}

TEST_F(Safetensors, RejectsEveryTruncation) {
  const std::string bytes = small_file(path("small.safetensors"));
  ASSERT_NO_THROW(SafetensorsFile(path("small.safetensors")));
  for (size_t size = 0; size < bytes.size(); ++size) {
    SCOPED_TRACE("truncated to " + std::to_string(size) + " of " + std::to_string(bytes.size()) + " bytes");
    expect_rejected(bytes.substr(0, size), {""});
  }
}

// Setting the high bit of any byte of the length or the header makes the length absurd, breaks UTF-8 or
// breaks JSON: every one must be rejected.
TEST_F(Safetensors, RejectsEveryHeaderByteWithItsHighBitFlipped) {
  const std::string bytes = small_file(path("small.safetensors"));
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  for (size_t i = 0; i < 8 + header_size; ++i) {
    SCOPED_TRACE("byte " + std::to_string(i));
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x80);
    expect_rejected(damaged, {""});
  }
}

// Thousands of randomly damaged files: each either opens, with tensors that exactly tile its data section,
// or throws vlascope::Error. Anything else (another exception, a crash, an ASan report) fails.
TEST_F(Safetensors, SurvivesRandomlyDamagedFiles) {
  const std::string base = small_file(path("small.safetensors"));
  const std::string file = path("fuzz.safetensors");
  std::mt19937_64 rng(20240607);
  auto uniform = [&](size_t n) { return n == 0 ? size_t{0} : static_cast<size_t>(rng() % n); };
  const std::vector<std::string> tokens{"{",
                                        "}",
                                        "[",
                                        "]",
                                        ",",
                                        ":",
                                        "\"",
                                        "0",
                                        "-1",
                                        "1e9",
                                        "null",
                                        "\"F32\"",
                                        "\"BOOL\"",
                                        "18446744073709551615",
                                        "9223372036854775808",
                                        "\"__metadata__\"",
                                        "[0,0]",
                                        "[]",
                                        "{}",
                                        " ",
                                        "\\",
                                        "\xC3",
                                        "\xFF"};
  auto header_size_of = [](const std::string& bytes) {
    uint64_t n = 0;
    if (bytes.size() >= 8) std::memcpy(&n, bytes.data(), 8);
    return n;
  };
  // Replaces bytes [at, at + length) of the header with `text` and fixes the length prefix to match.
  auto splice = [&](std::string& bytes, size_t at, size_t length, const std::string& text) {
    const uint64_t header_size = header_size_of(bytes) + text.size() - length;
    bytes.replace(at, length, text);
    bytes.replace(0, 8, le64(header_size));
  };
  int accepted = 0;
  int rejected = 0;
  for (int iteration = 0; iteration < 4000; ++iteration) {
    std::string bytes = base;
    const int mutations = 1 + static_cast<int>(uniform(3));
    for (int m = 0; m < mutations; ++m) {
      const size_t size = bytes.size();
      // [8, header_end) is the header as the length prefix declares it, clipped to the file.
      const size_t header_end = size < 8 ? size : 8 + std::min<uint64_t>(header_size_of(bytes), size - 8);
      switch (uniform(7)) {
        case 0:  // flip one bit of the length or the header
          if (header_end > 0) bytes[uniform(header_end)] ^= static_cast<char>(1 << uniform(8));
          break;
        case 1:  // overwrite a byte of the data section: harmless on its own
          if (header_end < size) bytes[header_end + uniform(size - header_end)] = static_cast<char>(rng());
          break;
        case 2:  // truncate or extend
          bytes.resize(uniform(size + 16), static_cast<char>(rng()));
          break;
        case 3:  // replace a short header span with a JSON token
          if (header_end > 8) {
            const size_t at = 8 + uniform(header_end - 8);
            splice(bytes, at, std::min(uniform(6), size - at), tokens[uniform(tokens.size())]);
          }
          break;
        case 4: {  // replace a run of digits (a dimension or an offset) with a random integer
          std::vector<size_t> digits;
          for (size_t i = 8; i < header_end; ++i) {
            if (bytes[i] >= '0' && bytes[i] <= '9') digits.push_back(i);
          }
          if (digits.empty()) break;
          const size_t begin = digits[uniform(digits.size())];
          size_t end = begin;
          while (end < header_end && bytes[end] >= '0' && bytes[end] <= '9') ++end;
          splice(bytes, begin, end - begin, std::to_string(static_cast<int64_t>(rng()) >> uniform(64)));
          break;
        }
        case 5:  // a random length prefix, absurd or plausible
          if (size >= 8) bytes.replace(0, 8, le64(uniform(2) ? rng() : uniform(size)));
          break;
        case 6:  // repeat a chunk of the header
          if (header_end > 8) {
            const size_t at = 8 + uniform(header_end - 8);
            splice(bytes, at, 0, bytes.substr(at, uniform(24)));
          }
          break;
      }
    }
    write_bytes(file, bytes);
    try {
      const SafetensorsFile opened(file);
      ++accepted;
      uint64_t covered = 0;
      for (const TensorInfo& t : opened.tensors()) {
        covered += t.nbytes;
        ASSERT_EQ(static_cast<uint64_t>(t.numel()) * dtype_size(t.dtype), t.nbytes) << t.name;
        ASSERT_EQ(opened.to_float(t).size(), static_cast<size_t>(t.numel()));
      }
      ASSERT_EQ(8 + header_size_of(bytes) + covered, bytes.size()) << "accepted tensors must tile the data section";
    } catch (const Error&) {
      ++rejected;
    }
  }
  std::printf("fuzz: %d damaged files accepted, %d rejected\n", accepted, rejected);
  EXPECT_GT(accepted, 100);  // data-section damage and harmless header edits
  EXPECT_GT(rejected, 2000);
}

// ---------------------------------------------------------------------------------------------------------
// Writer

TEST_F(Safetensors, WriterRejectsBadTensors) {
  const std::vector<float> four{1, 2, 3, 4};
  SafetensorsWriter writer;
  writer.add("a", DType::kF32, {4}, four.data(), 16);
  auto expect_error = [](const std::function<void()>& call, const std::string& fragment) {
    try {
      call();
      ADD_FAILURE() << "expected an error containing \"" << fragment << "\"";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr(fragment));
    }
  };
  expect_error([&] { writer.add("a", DType::kF32, {4}, four.data(), 16); }, "tensor \"a\" was added twice");
  expect_error([&] { writer.add("b", DType::kF32, {3}, four.data(), 16); },
               "tensor \"b\": 16 bytes given but shape [3] of F32 needs 12");
  expect_error([&] { writer.add("b", DType::kBF16, {4}, four.data(), 16); }, "shape [4] of BF16 needs 8");
  expect_error([&] { writer.add("b", DType::kF32, {-1, -4}, four.data(), 16); }, "negative dimension");
  expect_error([&] { writer.add("b", DType::kF64, {int64_t{1} << 62, 8}, four.data(), 16); }, "more than 2^64");
  expect_error([&] { writer.add("b", DType::kF32, {4}, nullptr, 16); }, "data is null");
  expect_error([&] { writer.add("__metadata__", DType::kF32, {4}, four.data(), 16); }, "reserved");
  expect_error([&] { writer.add("", DType::kF32, {4}, four.data(), 16); }, "empty");
  expect_error([&] { writer.add("bad\xFF", DType::kF32, {4}, four.data(), 16); }, "not valid UTF-8");
  expect_error([&] { writer.set_metadata("k", "\xC3\x28"); }, "metadata value of \"k\" is not valid UTF-8");
  expect_error([&] { writer.set_metadata("\xFF", "v"); }, "metadata key is not valid UTF-8");

  // The failed calls left nothing behind: the file holds exactly the one good tensor.
  writer.write(path("one.safetensors"));
  const SafetensorsFile file(path("one.safetensors"));
  ASSERT_EQ(file.tensors().size(), 1u);
  EXPECT_EQ(file.to_float(file.at("a")), four);
  EXPECT_TRUE(file.metadata().empty());
}

TEST_F(Safetensors, WriterReplacesFilesAtomically) {
  const std::vector<float> old_values{1, 2};
  const std::vector<float> new_values{3, 4, 5};
  const std::string target = path("model.safetensors");
  SafetensorsWriter first;
  first.add("w", DType::kF32, {2}, old_values.data(), 8);
  first.write(target);
  write_bytes(target + ".tmp", "left over from a crashed write");  // must not matter
  SafetensorsWriter second;
  second.add("w", DType::kF32, {3}, new_values.data(), 12);
  second.write(target);
  EXPECT_FALSE(std::filesystem::exists(target + ".tmp"));
  auto stored = [&] {
    const SafetensorsFile file(target);
    return file.to_float(file.at("w"));
  };
  EXPECT_EQ(stored(), new_values);

  // A failed write names the file, removes its temporary and leaves the old file alone.
  try {
    second.write(path("no_such_dir/model.safetensors"));
    ADD_FAILURE() << "wrote into a missing directory";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(path("no_such_dir/model.safetensors")));
  }
  const std::string occupied = path("occupied");
  std::filesystem::create_directories(occupied + "/child");
  try {
    second.write(occupied);  // rename over a non-empty directory fails
    ADD_FAILURE() << "renamed over a directory";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(occupied));
  }
  EXPECT_FALSE(std::filesystem::exists(occupied + ".tmp"));
  EXPECT_TRUE(std::filesystem::is_directory(occupied + "/child"));
  EXPECT_EQ(stored(), new_values);
}

}  // namespace
}  // namespace vlascope
