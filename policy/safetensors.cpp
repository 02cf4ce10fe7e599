#include "policy/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "common/error.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors data is little-endian; so is this reader");

namespace vlascope {
namespace {

// The reference implementation's limits: headers above 100 MB are refused, and serde_json refuses JSON
// nested deeper than 128 levels (a real header needs three).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kMaxJsonDepth = 128;

struct DTypeSpec {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DTypeSpec kDTypes[] = {
    {DType::kF32, "F32", 4}, {DType::kF16, "F16", 2},   {DType::kBF16, "BF16", 2}, {DType::kF64, "F64", 8},
    {DType::kI64, "I64", 8}, {DType::kI32, "I32", 4},   {DType::kI16, "I16", 2},   {DType::kI8, "I8", 1},
    {DType::kU8, "U8", 1},   {DType::kBool, "BOOL", 1},
};

const DTypeSpec& spec_of(DType dtype) {
  for (const DTypeSpec& spec : kDTypes) {
    if (spec.dtype == dtype) return spec;
  }
  throw Error("safetensors: invalid DType value " + std::to_string(static_cast<int>(dtype)));
}

std::string supported_dtypes() {
  std::string names;
  for (const DTypeSpec& spec : kDTypes) names += (names.empty() ? "" : " ") + std::string(spec.name);
  return names;
}

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

template <typename T>
T load(const uint8_t* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A JSON value for an error message, cut short so a garbage header cannot produce a megabyte of message.
std::string excerpt(const nlohmann::json& value) {
  std::string s = value.dump();
  return s.size() <= 40 ? s : s.substr(0, 37) + "...";
}

bool is_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();  // dump() validates UTF-8 and throws type_error 316 if it is not
    return true;
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

// A non-negative JSON integer (nlohmann stores those as unsigned, except "-0"), or nullopt.
std::optional<uint64_t> as_count(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() == 0) return 0;
  return std::nullopt;
}

// First pass over the header text: syntax, nesting depth and duplicate keys, none of which survive into a
// parsed nlohmann::json (it keeps the last duplicate silently, and its DOM would grow with the nesting).
class HeaderStructureCheck : public nlohmann::json_sax<nlohmann::json> {
 public:
  std::string problem;  // empty while the header is fine

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open(); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_array() override { return close(); }
  bool key(string_t& key) override {
    if (open_keys_.back().insert(key).second) return true;
    problem = "header has the key " + in_quotes(key) + " twice in one object";
    return false;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    problem = std::string("header is not valid JSON: ") + e.what();
    return false;
  }

 private:
  bool open() {
    if (open_keys_.size() == kMaxJsonDepth) {
      problem = "header JSON is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    open_keys_.emplace_back();  // arrays get an unused key set, which keeps open and close symmetric
    return true;
  }
  bool close() {
    open_keys_.pop_back();
    return true;
  }
  std::vector<std::set<std::string>> open_keys_;  // keys seen so far in each open object or array
};

std::map<std::string, std::string> parse_metadata(const std::string& path, const nlohmann::json& value) {
  std::map<std::string, std::string> metadata;
  if (value.is_null()) return metadata;  // the reference reads null as "no metadata"
  const std::string where = path + ": \"__metadata__\"";
  require(value.is_object(), where + " must be an object of strings, not " + excerpt(value));
  for (const auto& [key, entry] : value.items()) {
    require(entry.is_string(), where + ": value of " + in_quotes(key) + " must be a string, not " + excerpt(entry));
    metadata[key] = entry.get<std::string>();
  }
  return metadata;
}

TensorInfo parse_tensor(const std::string& path, const std::string& name, const nlohmann::json& entry,
                        uint64_t data_size) {
  const std::string where = path + ": tensor " + in_quotes(name);
  require(entry.is_object(),
          where + ": entry must be an object with dtype, shape and data_offsets, not " + excerpt(entry));
  TensorInfo info;
  info.name = name;

  const auto dtype = entry.find("dtype");
  require(dtype != entry.end(), where + ": field \"dtype\" is missing");
  require(dtype->is_string(), where + ": field \"dtype\" must be a string, not " + excerpt(*dtype));
  const std::optional<DType> parsed_dtype = dtype_from_name(dtype->get<std::string>());
  require(parsed_dtype.has_value(),
          where + ": field \"dtype\": unknown dtype " + excerpt(*dtype) + " (supported: " + supported_dtypes() + ")");
  info.dtype = *parsed_dtype;

  const auto shape = entry.find("shape");
  require(shape != entry.end(), where + ": field \"shape\" is missing");
  require(shape->is_array(), where + ": field \"shape\" must be an array, not " + excerpt(*shape));
  for (size_t i = 0; i < shape->size(); ++i) {
    const std::optional<uint64_t> dim = as_count((*shape)[i]);
    require(dim && *dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
            where + ": field \"shape\": dimension " + std::to_string(i) + " must be a non-negative integer, not " +
                excerpt((*shape)[i]));
    info.shape.push_back(static_cast<int64_t>(*dim));
  }
  // A zero dimension makes the tensor empty whatever the others say; otherwise the product must fit.
  uint64_t numel = 1;
  if (std::find(info.shape.begin(), info.shape.end(), 0) != info.shape.end()) {
    numel = 0;
  } else {
    for (int64_t dim : info.shape) {
      require(!__builtin_mul_overflow(numel, static_cast<uint64_t>(dim), &numel) &&
                  numel <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
              where + ": field \"shape\" " + shape_string(info.shape) + " has more than 2^63 elements");
    }
  }
  require(!__builtin_mul_overflow(numel, static_cast<uint64_t>(dtype_size(info.dtype)), &info.nbytes),
          where + ": field \"shape\" " + shape_string(info.shape) + " of " + dtype_name(info.dtype) +
              " needs more than 2^64 bytes");

  const auto offsets = entry.find("data_offsets");
  require(offsets != entry.end(), where + ": field \"data_offsets\" is missing");
  std::optional<uint64_t> begin, end;
  if (offsets->is_array() && offsets->size() == 2) {
    begin = as_count((*offsets)[0]);
    end = as_count((*offsets)[1]);
  }
  require(begin && end,
          where + ": field \"data_offsets\" must be two non-negative integers [begin, end], not " + excerpt(*offsets));
  const std::string range = "[" + std::to_string(*begin) + ", " + std::to_string(*end) + "]";
  require(*begin <= *end, where + ": field \"data_offsets\" " + range + " ends before it begins");
  require(*end <= data_size, where + ": field \"data_offsets\" " + range + " runs past the end of the data section (" +
                                 std::to_string(data_size) + " bytes)");
  require(*end - *begin == info.nbytes, where + ": field \"data_offsets\" " + range + " spans " +
                                            std::to_string(*end - *begin) + " bytes but shape " +
                                            shape_string(info.shape) + " of " + dtype_name(info.dtype) + " needs " +
                                            std::to_string(info.nbytes));
  info.offset = *begin;
  return info;
}

// Tensors sorted by offset must tile [0, data_size) exactly, as the reference implementation requires.
void check_coverage(const std::string& path, const std::vector<TensorInfo>& tensors, uint64_t data_size) {
  auto bytes = [](uint64_t begin, uint64_t end) {
    return "bytes [" + std::to_string(begin) + ", " + std::to_string(end) + ")";
  };
  uint64_t covered = 0;                  // the data section is tiled up to here
  const TensorInfo* previous = nullptr;  // the tensor ending at `covered`
  for (const TensorInfo& t : tensors) {
    if (t.offset < covered) {  // then previous is set: covered > 0
      throw Error(path + ": tensor " + in_quotes(t.name) + " (data " + bytes(t.offset, t.offset + t.nbytes) +
                  ") overlaps tensor " + in_quotes(previous->name) + " (data " +
                  bytes(previous->offset, previous->offset + previous->nbytes) + ")");
    }
    if (t.offset > covered) {
      const std::string after = previous ? "between tensor " + in_quotes(previous->name) + " and" : "before";
      throw Error(path + ": data section " + bytes(covered, t.offset) + " belong to no tensor (a hole " + after +
                  " tensor " + in_quotes(t.name) + ")");
    }
    if (t.nbytes > 0) {
      covered = t.offset + t.nbytes;
      previous = &t;
    }
  }
  if (covered != data_size) {
    const std::string where = previous ? "after the last tensor " + in_quotes(previous->name) : "the header lists none";
    throw Error(path + ": data section " + bytes(covered, data_size) + " belong to no tensor (" + where + ")");
  }
}

void write_all(int fd, const void* data, size_t size, const std::string& tmp_path) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw Error(tmp_path + ": write failed: " + std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

// Makes a rename inside `dir` durable.
void fsync_directory(const std::string& dir, const std::string& path) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": written, but its directory " + dir + " cannot be opened: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int fsync_errno = errno;
  ::close(fd);
  if (rc != 0)
    throw Error(path + ": written, but fsync of directory " + dir + " failed: " + std::strerror(fsync_errno));
}

}  // namespace

const char* dtype_name(DType dtype) { return spec_of(dtype).name; }

size_t dtype_size(DType dtype) { return spec_of(dtype).size; }

std::optional<DType> dtype_from_name(const std::string& name) {
  for (const DTypeSpec& spec : kDTypes) {
    if (name == spec.name) return spec.dtype;
  }
  return std::nullopt;
}

float bf16_to_float(uint16_t bits) { return float_of(static_cast<uint32_t>(bits) << 16); }

uint16_t float_to_bf16(float value) {
  if (std::isnan(value)) return 0x7FC0;
  const uint32_t bits = bits_of(value);
  // Adding 0x7FFF, plus one more when the kept part is odd, carries into bit 16 exactly when the dropped
  // half is above one half, or equal to it with an odd kept part: round to nearest, ties to even. A carry
  // out of the mantissa bumps the exponent, which is also right (up to inf).
  const uint32_t rounding_bias = 0x7FFF + ((bits >> 16) & 1);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

float f16_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1F;
  const uint32_t mantissa = bits & 0x3FF;
  if (exponent == 0x1F) return float_of(sign | 0x7F800000 | (mantissa << 13));  // inf, NaN (payload kept)
  if (exponent == 0) {                                                          // zero, subnormal: m * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return float_of(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

uint16_t float_to_f16(float value) {
  const uint32_t bits = bits_of(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000);
  const uint32_t magnitude = bits & 0x7FFFFFFF;
  if (magnitude > 0x7F800000) return sign | 0x7E00;  // NaN
  // 65520 is halfway between the largest half, 65504 (odd mantissa), and 65536: it and all above round to inf.
  if (magnitude >= 0x477FF000) return sign | 0x7C00;
  const int exponent = static_cast<int>(magnitude >> 23) - 127;
  const uint32_t mantissa = (magnitude & 0x7FFFFF) | 0x800000;  // with the implicit leading 1
  // Keep `mantissa >> shift`, round the dropped bits to nearest, ties to even. A carry out of the kept
  // bits moves to the next binade (or from subnormal to normal), which the encoding makes correct as is.
  auto round_shift = [](uint32_t m, int shift) {
    const uint32_t kept = m >> shift;
    const uint32_t dropped = m & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    return kept + ((dropped > half || (dropped == half && (kept & 1))) ? 1 : 0);
  };
  if (exponent >= -14) {  // normal half: 10 of the 23 mantissa bits survive
    const uint32_t h = (static_cast<uint32_t>(exponent + 15) << 10) + round_shift(mantissa, 13) - 0x400;
    return sign | static_cast<uint16_t>(h);
  }
  if (exponent < -25) return sign;  // below half the smallest subnormal (2^-24): rounds to zero
  // Subnormal half: value = mantissa * 2^(exponent - 23) = m * 2^-24 with m = mantissa * 2^(exponent + 1), a
  // right shift by 14 to 24 bits.
  return sign | static_cast<uint16_t>(round_shift(mantissa, -(exponent + 1)));
}

int64_t TensorInfo::numel() const {
  // A zero dimension first: the other dimensions of an empty tensor may multiply past int64.
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

void SafetensorsFile::Unmapper::operator()(const uint8_t* address) const {
  ::munmap(const_cast<uint8_t*>(address), size);
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open safetensors file: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int stat_errno = errno;
    ::close(fd);
    throw Error(path + ": cannot stat safetensors file: " + std::strerror(stat_errno));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + (S_ISDIR(st.st_mode) ? ": is a directory" : ": is not a regular file") +
                ", not a safetensors file");
  }
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    throw Error(path + ": file is " + std::to_string(file_size) +
                " bytes, shorter than the 8-byte header length of a safetensors file");
  }
  void* address = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mmap_errno = errno;
  ::close(fd);  // the mapping keeps the file open
  if (address == MAP_FAILED) throw Error(path + ": cannot memory-map safetensors file: " + std::strerror(mmap_errno));
  mapping_ = std::unique_ptr<const uint8_t, Unmapper>(static_cast<const uint8_t*>(address), Unmapper{file_size});
  const uint8_t* bytes = mapping_.get();

  const uint64_t header_size = load<uint64_t>(bytes);
  require(header_size <= kMaxHeaderBytes, path + ": header length " + std::to_string(header_size) + " exceeds the " +
                                              std::to_string(kMaxHeaderBytes) + "-byte limit of safetensors headers");
  require(header_size <= file_size - 8, path + ": header length " + std::to_string(header_size) +
                                            " runs past the end of the file (" + std::to_string(file_size) + " bytes)");
  const char* header_begin = reinterpret_cast<const char*>(bytes + 8);
  const char* header_end = header_begin + header_size;
  require(header_size > 0 && header_begin[0] == '{', path + ": header does not start with '{'");
  HeaderStructureCheck check;
  nlohmann::json::sax_parse(header_begin, header_end, &check);
  require(check.problem.empty(), path + ": " + check.problem);
  // Known to be a well-formed JSON object now: it starts with '{' and passed the check above.
  const nlohmann::json header = nlohmann::json::parse(header_begin, header_end);

  const uint64_t data_size = file_size - 8 - header_size;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      metadata_ = parse_metadata(path, entry);
    } else {
      tensors_.push_back(parse_tensor(path, name, entry, data_size));
    }
  }
  // header.items() walks names in sorted order, so the stable sort breaks offset ties by name.
  std::stable_sort(tensors_.begin(), tensors_.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
  });
  check_coverage(path, tensors_, data_size);

  data_section_ = bytes + 8 + header_size;
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& SafetensorsFile::at(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (!info) throw Error(path_ + ": no tensor named " + in_quotes(name));
  return *info;
}

const uint8_t* SafetensorsFile::data(const TensorInfo& info) const {
  // Only this file's validated entries are known to lie inside the mapping.
  const std::less<const TensorInfo*> before;
  const bool ours =
      !tensors_.empty() && !before(&info, tensors_.data()) && before(&info, tensors_.data() + tensors_.size());
  require(ours, path_ + ": tensor " + in_quotes(info.name) + " was not read from this file");
  return data_section_ + info.offset;
}

std::vector<float> SafetensorsFile::to_float(const TensorInfo& info) const {
  const uint8_t* p = data(info);
  std::vector<float> out(static_cast<size_t>(info.numel()));
  auto convert = [&](auto element, auto to_float) {
    using T = decltype(element);
    for (size_t i = 0; i < out.size(); ++i) out[i] = to_float(load<T>(p + i * sizeof(T)));
  };
  auto cast = [](auto v) { return static_cast<float>(v); };
  switch (info.dtype) {
    case DType::kF32:
      convert(float{}, cast);
      break;
    case DType::kF16:
      convert(uint16_t{}, f16_to_float);
      break;
    case DType::kBF16:
      convert(uint16_t{}, bf16_to_float);
      break;
    case DType::kF64:
      convert(double{}, cast);
      break;
    case DType::kI64:
      convert(int64_t{}, cast);
      break;
    case DType::kI32:
      convert(int32_t{}, cast);
      break;
    case DType::kI16:
      convert(int16_t{}, cast);
      break;
    case DType::kI8:
      convert(int8_t{}, cast);
      break;
    case DType::kU8:
      convert(uint8_t{}, cast);
      break;
    case DType::kBool:
      convert(uint8_t{}, [](uint8_t v) { return v ? 1.0f : 0.0f; });
      break;
  }
  return out;
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
                            size_t nbytes) {
  const std::string where = "safetensors writer: tensor " + in_quotes(name);
  require(!name.empty(), "safetensors writer: tensor name is empty");
  require(name != "__metadata__", where + ": the name is reserved for the metadata");
  require(is_utf8(name), "safetensors writer: tensor name is not valid UTF-8");
  require(index_.count(name) == 0, where + " was added twice");
  uint64_t expected = dtype_size(dtype);
  for (int64_t dim : shape) {
    require(dim >= 0, where + ": shape " + shape_string(shape) + " has a negative dimension");
    require(!__builtin_mul_overflow(expected, static_cast<uint64_t>(dim), &expected),
            where + ": shape " + shape_string(shape) + " needs more than 2^64 bytes");
  }
  require(nbytes == expected, where + ": " + std::to_string(nbytes) + " bytes given but shape " + shape_string(shape) +
                                  " of " + dtype_name(dtype) + " needs " + std::to_string(expected));
  require(data != nullptr || nbytes == 0, where + ": data is null");
  const auto* begin = static_cast<const uint8_t*>(data);
  index_.emplace(name, entries_.size());
  entries_.push_back(Entry{name, dtype, std::move(shape), std::vector<uint8_t>(begin, begin + nbytes)});
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  require(is_utf8(key), "safetensors writer: metadata key is not valid UTF-8");
  require(is_utf8(value), "safetensors writer: metadata value of " + in_quotes(key) + " is not valid UTF-8");
  metadata_[key] = value;
}

void SafetensorsWriter::write(const std::string& path) const {
  // Same key order as the reference serializer: metadata first, then tensors in data order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Entry& e : entries_) {
    nlohmann::ordered_json entry = nlohmann::ordered_json::object();
    entry["dtype"] = dtype_name(e.dtype);
    entry["shape"] = e.shape;
    entry["data_offsets"] = nlohmann::ordered_json::array({offset, offset + e.bytes.size()});
    header[e.name] = std::move(entry);
    offset += e.bytes.size();
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
  require(header_text.size() <= kMaxHeaderBytes, path + ": header of " + std::to_string(header_text.size()) +
                                                     " bytes exceeds the " + std::to_string(kMaxHeaderBytes) +
                                                     "-byte limit of safetensors headers");
  uint8_t length[8];
  const uint64_t header_size = header_text.size();
  std::memcpy(length, &header_size, sizeof length);

  const std::string tmp_path = path + ".tmp";
  int fd = ::open(tmp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot create " + tmp_path + ": " + std::strerror(errno));
  try {
    write_all(fd, length, sizeof length, tmp_path);
    write_all(fd, header_text.data(), header_text.size(), tmp_path);
    for (const Entry& e : entries_) write_all(fd, e.bytes.data(), e.bytes.size(), tmp_path);
    if (::fsync(fd) != 0) throw Error(tmp_path + ": fsync failed: " + std::strerror(errno));
    const int rc = ::close(fd);
    fd = -1;
    if (rc != 0) throw Error(tmp_path + ": close failed: " + std::strerror(errno));
    if (::rename(tmp_path.c_str(), path.c_str()) != 0) {
      throw Error(path + ": cannot rename " + tmp_path + " over it: " + std::strerror(errno));
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp_path.c_str());
    throw;
  }
  const size_t slash = path.find_last_of('/');
  fsync_directory(slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash)), path);
}

}  // namespace vlascope
