// Safetensors files (Hugging Face's tensor container, https://github.com/huggingface/safetensors): a
// zero-copy reader over a read-only memory map, and an atomic writer. Torch-free on purpose: the checkpoint
// code turns a TensorInfo plus data() into a torch tensor, and tools that only list or convert tensors
// link vlascope_policy_core without paying for libtorch.
//
// The format:
//   bytes [0, 8)        N, the header length, u64 little-endian
//   bytes [8, 8 + N)    UTF-8 JSON object, possibly padded with trailing spaces:
//                         {"__metadata__": {"key": "value", ...},                      (optional, string→string)
//                          "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
//   bytes [8 + N, end)  the data section; [begin, end) counts from its start. Tensors are row-major and
//                       little-endian, and together they cover the data section exactly: no overlaps, no holes.
//
// The reader validates all of this up front and throws vlascope::Error naming the file, the tensor and the
// field on any violation, so that after construction every TensorInfo is known to lie inside the mapping.
// LeRobot SmolVLA checkpoints are ~900 MB of mixed BF16/F32 tensors; nothing is copied until a caller asks
// for it (to_float, or the torch conversion elsewhere).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace vlascope {

// Element types, spelled in files as "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL".
// The format also defines U16/U32/U64 and the F8 variants; SmolVLA uses none of them and the reader rejects
// them as unknown by name.
enum class DType : int8_t { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool };

const char* dtype_name(DType dtype);                            // safetensors spelling, e.g. "BF16"
std::optional<DType> dtype_from_name(const std::string& name);  // inverse of dtype_name; nullopt if unknown
size_t dtype_size(DType dtype);                                 // bytes per element; BOOL is one byte

// bfloat16 / IEEE half <-> float, bit for bit as torch's c10::BFloat16 and c10::Half: narrowing rounds to
// nearest with ties to even, overflows to ±inf and keeps the sign of zero; a NaN becomes the quiet NaN 0x7FC0
// for bfloat16 (sign dropped, as torch does) and sign | 0x7E00 for half.
float bf16_to_float(uint16_t bits);
uint16_t float_to_bf16(float value);
float f16_to_float(uint16_t bits);
uint16_t float_to_f16(float value);

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // row-major; empty for a scalar
  uint64_t offset = 0;         // start within the data section
  uint64_t nbytes = 0;         // numel() * dtype_size(dtype)

  int64_t numel() const;  // product of shape: 1 for a scalar, 0 if any dimension is 0
};

// A safetensors file opened read-only and memory-mapped. Movable, not copyable; the mapping lives as long
// as the object, so pointers from data() must not outlive it. If another process truncates the file while
// it is mapped, reading the lost pages raises SIGBUS: treat checkpoint files as immutable (the writer below
// replaces files by rename, which is safe).
class SafetensorsFile {
 public:
  // Maps `path` and validates the whole header; throws Error naming the file (and tensor, field) on
  // anything malformed, including a missing file or a directory.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // by data offset, ties by name
  const TensorInfo* find(const std::string& name) const;               // nullptr if absent
  const TensorInfo& at(const std::string& name) const;                 // Error naming file and tensor if absent
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // First byte of the tensor's data inside the mapping (info must come from this file's tensors()). The
  // pointer is 8-byte aligned only if the writer kept it so (Python's library and SafetensorsWriter both
  // pad the header to 8 bytes, but neither promises alignment of every tensor): read through memcpy.
  const uint8_t* data(const TensorInfo& info) const;

  // The tensor's elements converted to float: exact for F32, BF16, F16, BOOL (0/1) and small integers;
  // F64 and large integers round to the nearest float.
  std::vector<float> to_float(const TensorInfo& info) const;

 private:
  struct Unmapper {
    size_t size;  // bytes mapped
    void operator()(const uint8_t* address) const;
  };

  std::string path_;
  std::unique_ptr<const uint8_t, Unmapper> mapping_;  // the whole file
  const uint8_t* data_section_ = nullptr;             // mapping_ + 8 + N
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// Collects tensors in memory, then writes one safetensors file. Tensors are laid out in insertion order
// (Python's library sorts by dtype alignment, then name; readers accept either). The header is
// {"__metadata__": {...}, tensors...} in compact JSON, with "__metadata__" only if metadata was set, padded
// with spaces to a multiple of 8 bytes as the reference implementation does.
class SafetensorsWriter {
 public:
  // Copies nbytes bytes of little-endian row-major data. Throws Error on a duplicate, empty or reserved
  // ("__metadata__") name, a name that is not UTF-8, a negative dimension, or nbytes != numel * dtype_size.
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data, size_t nbytes);
  // Replaces an earlier value for key; throws Error if key or value is not UTF-8.
  void set_metadata(const std::string& key, const std::string& value);

  // Writes `path + ".tmp"`, fsyncs it, renames it over `path` and fsyncs the directory, so `path` holds
  // either its old contents or the complete new file. Throws Error naming the file on any I/O failure and
  // removes the temporary file.
  void write(const std::string& path) const;

 private:
  struct Entry {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Entry> entries_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
};

}  // namespace vlascope
