// The HDF5 episode format (dataset/README.md documents it field by field).
//
// Integrity: files are written with the HDF5 1.10 file format (libver bounds V110), in which every piece
// of metadata (superblock, object headers, chunk indexes, attribute heaps) carries a checksum, and every
// dataset is chunked with the Fletcher-32 filter, so every stored byte is checked on read: a damaged file
// gives an Error, never silently wrong numbers or a crash inside HDF5's parsers.
#include "dataset/dataset.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <list>
#include <mutex>
#include <set>
#include <utility>

#include "common/error.h"

namespace vlascope {

namespace fs = std::filesystem;

const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::kUnknown:
      return "unknown";
    case Phase::kReach:
      return "reach";
    case Phase::kGrasp:
      return "grasp";
    case Phase::kLift:
      return "lift";
    case Phase::kHold:
      return "hold";
  }
  return "invalid";
}

Phase parse_task_phase(const std::string& name, const std::string& what) {
  for (Phase p : {Phase::kReach, Phase::kGrasp, Phase::kLift, Phase::kHold})
    if (name == phase_name(p)) return p;
  throw Error(what + ": phase '" + name + "' is not reach, grasp, lift or hold");
}

namespace {

constexpr const char* kFormatName = "vlascope-episode";
constexpr int kFormatVersion = 1;
constexpr const char* kDemo = "data/demo_0";
// Deflate level 4 (bench_dataset, two clean 128² renders a frame): 9 KiB a frame and 2100 frames/s written;
// level 1 writes ~10% faster but files are 2.2x larger and slower to read; level 6 is no smaller than 4.
constexpr int kImageDeflateLevel = 4;
constexpr int kSegmentationDeflateLevel = 4;
// Open episode files a reader keeps for image reads (one file descriptor each). Reopening a file costs about
// 150 µs, decoding a 128² frame about 60 µs.
constexpr size_t kOpenFilesCached = 64;
constexpr hsize_t kMaxFrames = 10'000'000;  // sanity bounds on shapes read from a file
constexpr hsize_t kMaxImageSide = 16384;
constexpr size_t kMaxStringBytes = 1 << 20;
constexpr const char* kLockName = ".vlascope_writer.lock";

constexpr const char* kJointColumns[6] = {"shoulder_pan.pos", "shoulder_lift.pos", "elbow_flex.pos",
                                          "wrist_flex.pos",   "wrist_roll.pos",    "gripper.pos"};
constexpr const char* kJointUnits = "degrees (joints 0-4), 0-100 open (gripper, index 5); LeRobot units";

// ---------------------------------------------------------------------------------------------------
// HDF5 plumbing: one process-wide lock, errors turned into messages, RAII handles.

std::mutex& hdf5_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Held around every HDF5 call. The library is built thread-safe on Debian, where the error stack and its
// automatic printing are per thread: each thread that enters turns the stderr dump off once.
class Hdf5Lock {
 public:
  Hdf5Lock() : lock_(hdf5_mutex()) {
    thread_local bool silenced = false;
    if (!silenced) {
      H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
      silenced = true;
    }
  }

 private:
  std::lock_guard<std::mutex> lock_;
};

// HDF5's error stack (outermost call first) as one line, then cleared.
std::string hdf5_error_stack() {
  std::vector<std::string> entries;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        auto* out = static_cast<std::vector<std::string>*>(data);
        std::string entry = std::string(e->func_name ? e->func_name : "?") + "(): " + (e->desc ? e->desc : "");
        if (out->empty() || out->back() != entry) out->push_back(entry);
        return 0;
      },
      &entries);
  H5Eclear2(H5E_DEFAULT);
  if (entries.empty()) return "";
  // The outermost call says what was attempted, the innermost ones why it failed.
  if (entries.size() > 5) entries.erase(entries.begin() + 1, entries.end() - 4);
  std::string text = " [HDF5: ";
  for (size_t i = 0; i < entries.size(); ++i) text += (i ? "; " : "") + entries[i];
  return text + "]";
}

// Where an error happened: the file, and the field inside it.
struct Where {
  std::string file;

  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    std::string message = file;
    if (!field.empty()) message += ": field '" + field + "'";
    throw Error(message + ": " + what + hdf5_error_stack());
  }
  hid_t check(hid_t id, const std::string& field, const std::string& what) const {
    if (id < 0) fail(field, what);
    return id;
  }
  void check_status(herr_t status, const std::string& field, const std::string& what) const {
    if (status < 0) fail(field, what);
  }
};

class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, -1)), close_(other.close_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, -1);
      close_ = other.close_;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t get() const { return id_; }
  hid_t release() { return std::exchange(id_, -1); }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

Handle file_handle(hid_t id) { return Handle(id, H5Fclose); }
Handle group_handle(hid_t id) { return Handle(id, H5Gclose); }
Handle dataset_handle(hid_t id) { return Handle(id, H5Dclose); }
Handle space_handle(hid_t id) { return Handle(id, H5Sclose); }
Handle type_handle(hid_t id) { return Handle(id, H5Tclose); }
Handle attr_handle(hid_t id) { return Handle(id, H5Aclose); }
Handle plist_handle(hid_t id) { return Handle(id, H5Pclose); }

std::string image_field(const std::string& camera) { return std::string(kDemo) + "/obs/" + camera + "_image"; }
std::string segmentation_field(const std::string& camera) {
  return std::string(kDemo) + "/obs/" + camera + "_segmentation";
}

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string text = "[";
  for (size_t i = 0; i < dims.size(); ++i) text += (i ? "," : "") + std::to_string(dims[i]);
  return text + "]";
}

// ---------------------------------------------------------------------------------------------------
// Episode file names.

std::string episode_name(int index) {
  char name[32];
  std::snprintf(name, sizeof name, "episode_%06d.h5", index);
  return name;
}

// "episode_000012.h5" → 12 (suffix ".h5"), "episode_000012.h5.tmp" → 12 (suffix ".h5.tmp"), else -1.
int parse_episode_name(const std::string& name, const std::string& suffix) {
  const std::string prefix = "episode_";
  if (name.size() < prefix.size() + 6 + suffix.size()) return -1;
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return -1;
  std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.size() < 6 || digits.size() > 9) return -1;
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) return -1;
  return std::stoi(digits);
}

std::vector<std::pair<int, fs::path>> scan_episodes(const std::string& directory, const std::string& suffix) {
  std::error_code ec;
  if (!fs::is_directory(directory, ec)) throw Error("dataset '" + directory + "': not a directory");
  std::vector<std::pair<int, fs::path>> found;
  for (const fs::directory_entry& entry : fs::directory_iterator(directory, ec)) {
    int index = parse_episode_name(entry.path().filename().string(), suffix);
    if (index >= 0 && entry.is_regular_file()) found.emplace_back(index, entry.path());
  }
  if (ec) throw Error("dataset '" + directory + "': cannot list: " + ec.message());
  std::sort(found.begin(), found.end());
  return found;
}

// ---------------------------------------------------------------------------------------------------
// Writing.

// Fixed-length, NUL-padded UTF-8 strings live in the (checksummed) object header; variable-length strings
// would live in the global heap, which has no checksum.
Handle string_type(size_t length, const Where& where, const std::string& field) {
  Handle type = type_handle(where.check(H5Tcopy(H5T_C_S1), field, "cannot make string type"));
  where.check_status(H5Tset_size(type.get(), std::max<size_t>(length, 1)), field, "cannot make string type");
  where.check_status(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), field, "cannot make string type");
  where.check_status(H5Tset_cset(type.get(), H5T_CSET_UTF8), field, "cannot make string type");
  return type;
}

void write_string_attr(hid_t object, const std::string& name, const std::string& value, const Where& where,
                       const std::string& owner) {
  const std::string field = owner + "@" + name;
  Handle type = string_type(value.size(), where, field);
  Handle space = space_handle(where.check(H5Screate(H5S_SCALAR), field, "cannot make dataspace"));
  Handle attr =
      attr_handle(where.check(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                              field, "cannot create attribute"));
  std::vector<char> buffer(std::max<size_t>(value.size(), 1), '\0');
  std::copy(value.begin(), value.end(), buffer.begin());
  where.check_status(H5Awrite(attr.get(), type.get(), buffer.data()), field, "cannot write attribute");
}

void write_strings_attr(hid_t object, const std::string& name, const std::vector<std::string>& values,
                        const Where& where, const std::string& owner) {
  const std::string field = owner + "@" + name;
  size_t length = 1;
  for (const std::string& v : values) length = std::max(length, v.size());
  Handle type = string_type(length, where, field);
  hsize_t n = values.size();
  Handle space = space_handle(
      where.check(n ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_NULL), field, "cannot make dataspace"));
  Handle attr =
      attr_handle(where.check(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                              field, "cannot create attribute"));
  if (n == 0) return;
  std::vector<char> buffer(n * length, '\0');
  for (size_t i = 0; i < n; ++i) std::copy(values[i].begin(), values[i].end(), buffer.begin() + i * length);
  where.check_status(H5Awrite(attr.get(), type.get(), buffer.data()), field, "cannot write attribute");
}

template <typename T>
void write_scalar_attr(hid_t object, const std::string& name, hid_t file_type, hid_t memory_type, T value,
                       const Where& where, const std::string& owner) {
  const std::string field = owner + "@" + name;
  Handle space = space_handle(where.check(H5Screate(H5S_SCALAR), field, "cannot make dataspace"));
  Handle attr =
      attr_handle(where.check(H5Acreate2(object, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), field,
                              "cannot create attribute"));
  where.check_status(H5Awrite(attr.get(), memory_type, &value), field, "cannot write attribute");
}

// A chunked dataset with Fletcher-32 checksums (and deflate when level > 0). chunk = dims when not given.
Handle create_dataset(hid_t parent, const std::string& name, hid_t file_type, const std::vector<hsize_t>& dims,
                      std::vector<hsize_t> chunk, int deflate_level, const Where& where, const std::string& field) {
  if (chunk.empty()) chunk = dims;
  Handle space = space_handle(
      where.check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), field, "bad shape"));
  Handle dcpl = plist_handle(where.check(H5Pcreate(H5P_DATASET_CREATE), field, "cannot make property list"));
  where.check_status(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), field,
                     "cannot set chunking");
  if (deflate_level > 0)
    where.check_status(H5Pset_deflate(dcpl.get(), deflate_level), field, "cannot set deflate filter");
  where.check_status(H5Pset_fletcher32(dcpl.get()), field, "cannot set Fletcher-32 filter");
  where.check_status(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), field, "cannot set fill time");
  return dataset_handle(
      where.check(H5Dcreate2(parent, name.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT), field,
                  "cannot create dataset"));
}

template <typename T>
void write_whole(hid_t parent, const std::string& group_path, const std::string& name, hid_t file_type,
                 hid_t memory_type, const std::vector<hsize_t>& dims, const std::vector<T>& values,
                 const std::string& units, const std::vector<std::string>& names, const Where& where) {
  const std::string field = group_path + "/" + name;
  Handle dataset = create_dataset(parent, name, file_type, dims, {}, 0, where, field);
  where.check_status(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), field,
                     "cannot write");
  if (!units.empty()) write_string_attr(dataset.get(), "units", units, where, field);
  if (!names.empty()) write_strings_attr(dataset.get(), "names", names, where, field);
}

// Writes one [T, H, W(, C)] image stack frame by frame: chunk = one frame, so a reader decodes one frame.
void write_images(hid_t obs, const std::string& name, const std::vector<const Image*>& images, int channels,
                  int deflate_level, const std::string& units, const Where& where, const std::string& field) {
  const Image& first = *images.front();
  std::vector<hsize_t> dims{images.size(), hsize_t(first.height), hsize_t(first.width)};
  if (channels > 1) dims.push_back(hsize_t(channels));
  std::vector<hsize_t> chunk = dims;
  chunk[0] = 1;
  Handle dataset = create_dataset(obs, name, H5T_STD_U8LE, dims, chunk, deflate_level, where, field);
  Handle file_space = space_handle(where.check(H5Dget_space(dataset.get()), field, "no dataspace"));
  Handle memory_space = space_handle(
      where.check(H5Screate_simple(static_cast<int>(chunk.size()), chunk.data(), nullptr), field, "bad shape"));
  std::vector<hsize_t> start(dims.size(), 0);
  for (size_t t = 0; t < images.size(); ++t) {
    start[0] = t;
    where.check_status(
        H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, chunk.data(), nullptr), field,
        "cannot select frame " + std::to_string(t));
    where.check_status(H5Dwrite(dataset.get(), H5T_NATIVE_UINT8, memory_space.get(), file_space.get(), H5P_DEFAULT,
                                images[t]->pixels.data()),
                       field, "cannot write frame " + std::to_string(t));
  }
  write_string_attr(dataset.get(), "units", units, where, field);
}

bool valid_camera_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
  });
}

// Everything that can be wrong with an episode is found here, before any byte is written.
void validate_for_write(const EpisodeInfo& info, const std::vector<Frame>& frames, const std::string& path) {
  auto fail = [&](const std::string& what) { throw Error(path + ": refusing to write episode: " + what); };
  if (frames.empty()) fail("it has zero frames");
  if (frames.size() > kMaxFrames) fail("more than " + std::to_string(kMaxFrames) + " frames");
  if (!(info.fps > 0) || !std::isfinite(info.fps)) fail("fps must be positive, got " + std::to_string(info.fps));
  for (const auto& [field, text] : {std::pair<const char*, const std::string*>{"instruction", &info.instruction},
                                    {"variant", &info.variant},
                                    {"robot", &info.robot},
                                    {"source", &info.source}}) {
    if (text->find('\0') != std::string::npos) fail(std::string(field) + " contains a NUL character");
    if (text->size() > kMaxStringBytes) fail(std::string(field) + " is longer than 1 MiB");
  }
  std::set<std::string> cameras;
  for (const std::string& camera : info.cameras) {
    if (!valid_camera_name(camera))
      fail("camera name '" + camera + "' must be 1-64 of [A-Za-z0-9_.-] and not start with '.'");
    if (!cameras.insert(camera).second) fail("camera '" + camera + "' is listed twice in info.cameras");
  }
  for (const auto& [name, value] : info.scalars)
    if (name.empty() || name.find('/') != std::string::npos || name.find('\0') != std::string::npos || name == "." ||
        name.size() > 256)
      fail("scalar name '" + name + "' must be 1-256 characters without '/' or NUL");

  std::set<std::string> segmented;
  for (const auto& [camera, image] : frames.front().segmentation) segmented.insert(camera);
  for (const std::string& camera : segmented)
    if (!cameras.count(camera)) fail("frame 0 has a segmentation for camera '" + camera + "' not in info.cameras");

  for (size_t t = 0; t < frames.size(); ++t) {
    const Frame& frame = frames[t];
    const std::string at = "frame " + std::to_string(t);
    int phase = static_cast<int>(frame.phase);
    if (phase < 0 || phase > static_cast<int>(Phase::kHold)) fail(at + ": invalid phase " + std::to_string(phase));
    if (frame.images.size() != cameras.size() ||
        !std::all_of(frame.images.begin(), frame.images.end(),
                     [&](const auto& kv) { return cameras.count(kv.first); })) {
      std::string have, want;
      for (const auto& kv : frame.images) have += (have.empty() ? "" : ",") + kv.first;
      for (const std::string& c : info.cameras) want += (want.empty() ? "" : ",") + c;
      fail(at + ": cameras {" + have + "} differ from info.cameras {" + want + "}");
    }
    if (frame.segmentation.size() != segmented.size() ||
        !std::all_of(frame.segmentation.begin(), frame.segmentation.end(),
                     [&](const auto& kv) { return segmented.count(kv.first); }))
      fail(at + ": segmentation cameras differ from frame 0's");
    auto check_image = [&](const std::string& camera, const Image& image, const Image& first, int channels,
                           const char* what) {
      const std::string field = at + ", camera '" + camera + "' " + what;
      if (image.channels != channels)
        fail(field + ": " + std::to_string(image.channels) + " channels, expected " + std::to_string(channels));
      if (image.width <= 0 || image.height <= 0 || hsize_t(image.width) > kMaxImageSide ||
          hsize_t(image.height) > kMaxImageSide)
        fail(field + ": bad size " + std::to_string(image.width) + "x" + std::to_string(image.height));
      if (image.pixels.size() != size_t(image.width) * image.height * image.channels)
        fail(field + ": " + std::to_string(image.pixels.size()) + " bytes of pixels for " +
             std::to_string(image.width) + "x" + std::to_string(image.height) + "x" + std::to_string(channels));
      if (image.width != first.width || image.height != first.height)
        fail(field + ": size " + std::to_string(image.width) + "x" + std::to_string(image.height) +
             " differs from frame 0's " + std::to_string(first.width) + "x" + std::to_string(first.height));
    };
    for (const auto& [camera, image] : frame.images)
      check_image(camera, image, frames.front().images.at(camera), 3, "image");
    for (const auto& [camera, image] : frame.segmentation)
      check_image(camera, image, frames.front().segmentation.at(camera), 1, "segmentation");
  }
}

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open to sync: " + std::strerror(errno));
  int status = ::fsync(fd);
  int saved = errno;
  ::close(fd);
  if (status != 0) throw Error(path + ": fsync failed: " + std::strerror(saved));
}

// Moves the temporary into place atomically and never over an existing file, even one that appeared while
// the episode was being written.
void rename_no_replace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return;
  int saved = errno;
  if (saved == EEXIST) throw Error(to + ": already exists; refusing to overwrite an episode");
  if (saved != EINVAL && saved != ENOSYS)  // else: a file system without RENAME_NOREPLACE; rename under the lock
    throw Error(to + ": cannot rename the temporary into place: " + std::strerror(saved));
  std::error_code ec;
  if (fs::exists(to, ec)) throw Error(to + ": already exists; refusing to overwrite an episode");
  if (std::rename(from.c_str(), to.c_str()) != 0)
    throw Error(to + ": cannot rename the temporary into place: " + std::strerror(errno));
}

void write_episode_file(const std::string& path, const EpisodeInfo& info, const std::vector<Frame>& frames) {
  const Where where{path};
  const hsize_t T = frames.size();
  Handle fapl = plist_handle(where.check(H5Pcreate(H5P_FILE_ACCESS), "", "cannot make property list"));
  // The 1.10 format checksums all metadata (see the top of this file).
  where.check_status(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110), "",
                     "cannot set file format version");
  where.check_status(H5Pset_file_locking(fapl.get(), true, true), "", "cannot set file locking");
  Handle file = file_handle(
      where.check(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, fapl.get()), "", "cannot create file"));
  write_string_attr(file.get(), "format", kFormatName, where, "/");
  write_scalar_attr(file.get(), "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, kFormatVersion, where, "/");

  Handle data = group_handle(where.check(H5Gcreate2(file.get(), "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "data",
                                         "cannot create group"));
  write_scalar_attr(data.get(), "total", H5T_STD_I64LE, H5T_NATIVE_INT64, int64_t(T), where, "data");
  Handle demo = group_handle(where.check(H5Gcreate2(data.get(), "demo_0", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), kDemo,
                                         "cannot create group"));
  write_scalar_attr(demo.get(), "num_samples", H5T_STD_I64LE, H5T_NATIVE_INT64, int64_t(T), where, kDemo);
  write_string_attr(demo.get(), "instruction", info.instruction, where, kDemo);
  write_string_attr(demo.get(), "variant", info.variant, where, kDemo);
  write_string_attr(demo.get(), "robot", info.robot, where, kDemo);
  write_string_attr(demo.get(), "source", info.source, where, kDemo);
  write_scalar_attr(demo.get(), "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, uint64_t(info.seed), where, kDemo);
  write_scalar_attr(demo.get(), "success", H5T_STD_U8LE, H5T_NATIVE_UINT8, uint8_t(info.success ? 1 : 0), where, kDemo);
  write_scalar_attr(demo.get(), "fps", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, info.fps, where, kDemo);
  write_strings_attr(demo.get(), "cameras", info.cameras, where, kDemo);
  {
    const std::string field = std::string(kDemo) + "/scalars";
    Handle scalars = group_handle(where.check(H5Gcreate2(demo.get(), "scalars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                              field, "cannot create group"));
    for (const auto& [name, value] : info.scalars)
      write_scalar_attr(scalars.get(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, value, where, field);
  }

  // Per-frame numbers, gathered into [T, n] arrays.
  std::vector<float> state(T * 6), action(T * 6), ee_position(T * 3), ee_quaternion(T * 4), object_position(T * 3);
  std::vector<double> timestamp(T);
  std::vector<int8_t> phase(T);
  for (hsize_t t = 0; t < T; ++t) {
    const Frame& f = frames[t];
    std::copy(f.state.begin(), f.state.end(), state.begin() + t * 6);
    std::copy(f.action.begin(), f.action.end(), action.begin() + t * 6);
    std::copy(f.ee_position.begin(), f.ee_position.end(), ee_position.begin() + t * 3);
    std::copy(f.ee_quaternion.begin(), f.ee_quaternion.end(), ee_quaternion.begin() + t * 4);
    std::copy(f.object_position.begin(), f.object_position.end(), object_position.begin() + t * 3);
    timestamp[t] = f.timestamp;
    phase[t] = static_cast<int8_t>(f.phase);
  }
  const std::vector<std::string> joints(std::begin(kJointColumns), std::end(kJointColumns));
  write_whole(demo.get(), kDemo, "actions", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {T, 6}, action, kJointUnits, joints,
              where);
  write_whole(demo.get(), kDemo, "timestamp", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {T}, timestamp,
              "seconds since the episode started", {}, where);
  write_whole(demo.get(), kDemo, "phase", H5T_STD_I8LE, H5T_NATIVE_INT8, {T}, phase, "",
              {"unknown", "reach", "grasp", "lift", "hold"}, where);

  const std::string obs_path = std::string(kDemo) + "/obs";
  Handle obs = group_handle(where.check(H5Gcreate2(demo.get(), "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), obs_path,
                                        "cannot create group"));
  write_whole(obs.get(), obs_path, "state", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {T, 6}, state, kJointUnits, joints,
              where);
  write_whole(obs.get(), obs_path, "ee_position", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {T, 3}, ee_position,
              "metres, world frame (Z up)", {"x", "y", "z"}, where);
  write_whole(obs.get(), obs_path, "ee_quaternion", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {T, 4}, ee_quaternion,
              "unit quaternion, world frame", {"w", "x", "y", "z"}, where);
  write_whole(obs.get(), obs_path, "object_position", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {T, 3}, object_position,
              "metres, world frame (Z up); NaN when unknown", {"x", "y", "z"}, where);

  for (const std::string& camera : info.cameras) {
    std::vector<const Image*> images;
    for (const Frame& f : frames) images.push_back(&f.images.at(camera));
    write_images(obs.get(), camera + "_image", images, 3, kImageDeflateLevel, "RGB, 0-255", where, image_field(camera));
  }
  for (const auto& [camera, first] : frames.front().segmentation) {
    std::vector<const Image*> images;
    for (const Frame& f : frames) images.push_back(&f.segmentation.at(camera));
    write_images(obs.get(), camera + "_segmentation", images, 1, kSegmentationDeflateLevel,
                 "class id per pixel (sim/segmentation.h)", where, segmentation_field(camera));
  }

  obs.reset();
  demo.reset();
  data.reset();
  where.check_status(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), "", "cannot flush");
  where.check_status(H5Fclose(file.release()), "", "cannot close");  // its status matters: close by hand
}

// ---------------------------------------------------------------------------------------------------
// Reading.

struct DatasetInfo {
  std::vector<hsize_t> dims;
  H5T_class_t type_class = H5T_NO_CLASS;
  size_t type_size = 0;
  H5T_sign_t sign = H5T_SGN_ERROR;
};

// Whether a link "a/b/c" exists below parent, component by component so that a missing group is "missing"
// and not an HDF5 error. A damaged file (HDF5 cannot tell) is an Error naming field.
bool link_exists(hid_t parent, const std::string& path, const Where& where, const std::string& field) {
  for (size_t slash = path.find('/');; slash = path.find('/', slash + 1)) {
    htri_t exists = H5Lexists(parent, path.substr(0, slash).c_str(), H5P_DEFAULT);
    if (exists < 0) where.fail(field, "cannot read (damaged file?)");
    if (exists == 0) return false;
    if (slash == std::string::npos) return true;
  }
}

Handle open_dataset(hid_t parent, const std::string& path, const Where& where) {
  const std::string field = std::string(kDemo) + "/" + path;
  if (!link_exists(parent, path, where, field)) where.fail(field, "missing");
  Handle dataset = dataset_handle(H5Dopen2(parent, path.c_str(), H5P_DEFAULT));
  if (dataset.get() < 0) where.fail(field, "cannot open dataset");
  return dataset;
}

DatasetInfo describe(hid_t dataset, const Where& where, const std::string& field) {
  DatasetInfo d;
  Handle space = space_handle(where.check(H5Dget_space(dataset), field, "no dataspace"));
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 8) where.fail(field, "bad rank " + std::to_string(rank));
  d.dims.resize(rank);
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), d.dims.data(), nullptr) < 0)
    where.fail(field, "cannot read shape");
  Handle type = type_handle(where.check(H5Dget_type(dataset), field, "no datatype"));
  d.type_class = H5Tget_class(type.get());
  d.type_size = H5Tget_size(type.get());
  if (d.type_class == H5T_INTEGER) d.sign = H5Tget_sign(type.get());
  return d;
}

template <typename T>
std::vector<T> read_whole(hid_t parent, const std::string& name, const std::vector<hsize_t>& want,
                          H5T_class_t want_class, hid_t memory_type, const Where& where) {
  const std::string field = std::string(kDemo) + "/" + name;
  Handle dataset = open_dataset(parent, name, where);
  DatasetInfo d = describe(dataset.get(), where, field);
  if (d.dims != want) where.fail(field, "shape " + shape_text(d.dims) + ", expected " + shape_text(want));
  if (d.type_class != want_class)
    where.fail(field, want_class == H5T_FLOAT ? "not floating point" : "not an integer type");
  size_t count = 1;
  for (hsize_t n : want) count *= n;
  std::vector<T> values(count);
  where.check_status(H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), field,
                     "cannot read");
  return values;
}

Handle open_attr(hid_t object, const std::string& name, const Where& where, const std::string& field) {
  htri_t exists = H5Aexists(object, name.c_str());
  if (exists < 0) where.fail(field, "cannot read (damaged file?)");
  if (exists == 0) where.fail(field, "missing");
  return attr_handle(where.check(H5Aopen(object, name.c_str(), H5P_DEFAULT), field, "cannot open attribute"));
}

// Strings: fixed-length (as vlascope writes them) or variable-length (as h5py writes them by default).
std::vector<std::string> read_strings_attr(hid_t object, const std::string& name, const Where& where,
                                           const std::string& owner, bool scalar) {
  const std::string field = owner + "@" + name;
  Handle attr = open_attr(object, name, where, field);
  Handle type = type_handle(where.check(H5Aget_type(attr.get()), field, "no datatype"));
  if (H5Tget_class(type.get()) != H5T_STRING) where.fail(field, "not a string");
  Handle space = space_handle(where.check(H5Aget_space(attr.get()), field, "no dataspace"));
  H5S_class_t space_class = H5Sget_simple_extent_type(space.get());
  hssize_t n = space_class == H5S_NULL ? 0 : H5Sget_simple_extent_npoints(space.get());
  if (n < 0 || size_t(n) > kMaxStringBytes) where.fail(field, "bad number of strings");
  if (scalar && (space_class != H5S_SCALAR || n != 1)) where.fail(field, "not a single string");
  std::vector<std::string> values;
  if (n == 0) return values;
  htri_t variable = H5Tis_variable_str(type.get());
  if (variable < 0) where.fail(field, "bad string type");
  // The memory type is the file's own type: no character-set or padding conversion.
  if (variable) {
    std::vector<char*> pointers(n, nullptr);
    where.check_status(H5Aread(attr.get(), type.get(), pointers.data()), field, "cannot read");
    for (char* p : pointers) {
      values.emplace_back(p ? p : "");
      H5free_memory(p);
    }
  } else {
    size_t length = H5Tget_size(type.get());
    if (length == 0 || length > kMaxStringBytes) where.fail(field, "bad string length");
    std::vector<char> buffer(length * n, '\0');
    where.check_status(H5Aread(attr.get(), type.get(), buffer.data()), field, "cannot read");
    for (hssize_t i = 0; i < n; ++i) {
      const char* begin = buffer.data() + i * length;
      values.emplace_back(begin, std::find(begin, begin + length, '\0'));
    }
  }
  return values;
}

std::string read_string_attr(hid_t object, const std::string& name, const Where& where, const std::string& owner) {
  return read_strings_attr(object, name, where, owner, true).front();
}

template <typename T>
T read_scalar_attr(hid_t object, const std::string& name, hid_t memory_type, H5T_class_t want_class, const Where& where,
                   const std::string& owner) {
  const std::string field = owner + "@" + name;
  Handle attr = open_attr(object, name, where, field);
  Handle type = type_handle(where.check(H5Aget_type(attr.get()), field, "no datatype"));
  if (H5Tget_class(type.get()) != want_class)
    where.fail(field, want_class == H5T_FLOAT ? "not a floating-point number" : "not an integer");
  Handle space = space_handle(where.check(H5Aget_space(attr.get()), field, "no dataspace"));
  if (H5Sget_simple_extent_npoints(space.get()) != 1) where.fail(field, "not a single value");
  T value{};
  where.check_status(H5Aread(attr.get(), memory_type, &value), field, "cannot read");
  return value;
}

struct CameraShape {
  int width = 0, height = 0;
  bool has_segmentation = false;
  int segmentation_width = 0, segmentation_height = 0;
};

// What a reader keeps of one episode: metadata, shapes and the per-frame numbers (no pixels).
struct EpisodeEntry {
  std::string path;
  EpisodeInfo info;
  std::map<std::string, CameraShape> cameras;
  std::vector<Frame> numbers;
};

Handle open_episode_file(const std::string& path, const Where& where) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) where.fail("", "no such file");
  htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 <= 0) where.fail("", is_hdf5 == 0 ? "not an HDF5 file (damaged or truncated?)" : "cannot read");
  Handle fapl = plist_handle(where.check(H5Pcreate(H5P_FILE_ACCESS), "", "cannot make property list"));
  where.check_status(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), "", "cannot set close degree");
  // HDF5's own file locks are kept, but a file system without flock support (some NFS mounts) is not an error.
  where.check_status(H5Pset_file_locking(fapl.get(), true, true), "", "cannot set file locking");
  return file_handle(
      where.check(H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get()), "", "cannot open (damaged or truncated?)"));
}

// Opens, validates and loads everything but the pixels. Throws Error naming the file and the field.
EpisodeEntry load_episode(const std::string& path) {
  const Where where{path};
  EpisodeEntry entry;
  entry.path = path;
  Handle file = open_episode_file(path, where);
  std::string format = read_string_attr(file.get(), "format", where, "/");
  if (format != kFormatName) where.fail("/@format", "is '" + format + "', expected '" + kFormatName + "'");
  int version = read_scalar_attr<int>(file.get(), "format_version", H5T_NATIVE_INT, H5T_INTEGER, where, "/");
  if (version != kFormatVersion)
    where.fail("/@format_version", "version " + std::to_string(version) + " is not supported (this build reads " +
                                       std::to_string(kFormatVersion) + ")");
  if (!link_exists(file.get(), kDemo, where, kDemo)) where.fail(kDemo, "missing");
  Handle demo = group_handle(where.check(H5Gopen2(file.get(), kDemo, H5P_DEFAULT), kDemo, "cannot open group"));

  EpisodeInfo& info = entry.info;
  int64_t T = read_scalar_attr<int64_t>(demo.get(), "num_samples", H5T_NATIVE_INT64, H5T_INTEGER, where, kDemo);
  if (T <= 0 || hsize_t(T) > kMaxFrames)
    where.fail(std::string(kDemo) + "@num_samples", "bad frame count " + std::to_string(T));
  info.instruction = read_string_attr(demo.get(), "instruction", where, kDemo);
  info.variant = read_string_attr(demo.get(), "variant", where, kDemo);
  info.robot = read_string_attr(demo.get(), "robot", where, kDemo);
  info.source = read_string_attr(demo.get(), "source", where, kDemo);
  info.seed = read_scalar_attr<uint64_t>(demo.get(), "seed", H5T_NATIVE_UINT64, H5T_INTEGER, where, kDemo);
  info.success = read_scalar_attr<uint8_t>(demo.get(), "success", H5T_NATIVE_UINT8, H5T_INTEGER, where, kDemo) != 0;
  info.fps = read_scalar_attr<double>(demo.get(), "fps", H5T_NATIVE_DOUBLE, H5T_FLOAT, where, kDemo);
  if (!(info.fps > 0) || !std::isfinite(info.fps)) where.fail(std::string(kDemo) + "@fps", "not positive");
  info.cameras = read_strings_attr(demo.get(), "cameras", where, kDemo, false);
  {
    const std::string field = std::string(kDemo) + "/scalars";
    if (!link_exists(demo.get(), "scalars", where, field)) where.fail(field, "missing");
    Handle scalars =
        group_handle(where.check(H5Gopen2(demo.get(), "scalars", H5P_DEFAULT), field, "cannot open group"));
    std::vector<std::string> names;
    hsize_t position = 0;
    herr_t status = H5Aiterate2(
        scalars.get(), H5_INDEX_NAME, H5_ITER_INC, &position,
        [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
          static_cast<std::vector<std::string>*>(data)->push_back(name);
          return 0;
        },
        &names);
    where.check_status(status, field, "cannot list attributes");
    for (const std::string& name : names)
      info.scalars[name] = read_scalar_attr<double>(scalars.get(), name, H5T_NATIVE_DOUBLE, H5T_FLOAT, where, field);
  }

  const hsize_t n = hsize_t(T);
  auto action = read_whole<float>(demo.get(), "actions", {n, 6}, H5T_FLOAT, H5T_NATIVE_FLOAT, where);
  auto timestamp = read_whole<double>(demo.get(), "timestamp", {n}, H5T_FLOAT, H5T_NATIVE_DOUBLE, where);
  auto phase = read_whole<int8_t>(demo.get(), "phase", {n}, H5T_INTEGER, H5T_NATIVE_INT8, where);
  auto state = read_whole<float>(demo.get(), "obs/state", {n, 6}, H5T_FLOAT, H5T_NATIVE_FLOAT, where);
  auto ee_position = read_whole<float>(demo.get(), "obs/ee_position", {n, 3}, H5T_FLOAT, H5T_NATIVE_FLOAT, where);
  auto ee_quaternion = read_whole<float>(demo.get(), "obs/ee_quaternion", {n, 4}, H5T_FLOAT, H5T_NATIVE_FLOAT, where);
  auto object_position =
      read_whole<float>(demo.get(), "obs/object_position", {n, 3}, H5T_FLOAT, H5T_NATIVE_FLOAT, where);
  entry.numbers.resize(n);
  for (hsize_t t = 0; t < n; ++t) {
    Frame& f = entry.numbers[t];
    f.timestamp = timestamp[t];
    std::copy_n(state.begin() + t * 6, 6, f.state.begin());
    std::copy_n(action.begin() + t * 6, 6, f.action.begin());
    std::copy_n(ee_position.begin() + t * 3, 3, f.ee_position.begin());
    std::copy_n(ee_quaternion.begin() + t * 4, 4, f.ee_quaternion.begin());
    std::copy_n(object_position.begin() + t * 3, 3, f.object_position.begin());
    if (phase[t] < 0 || phase[t] > static_cast<int8_t>(Phase::kHold))
      where.fail(std::string(kDemo) + "/phase",
                 "invalid phase " + std::to_string(phase[t]) + " at frame " + std::to_string(t));
    f.phase = static_cast<Phase>(phase[t]);
  }

  std::set<std::string> seen;
  for (const std::string& camera : info.cameras) {
    if (!valid_camera_name(camera) || !seen.insert(camera).second)
      where.fail(std::string(kDemo) + "@cameras", "bad or repeated camera name '" + camera + "'");
    auto image_shape = [&](const std::string& name, int channels, int* width, int* height) {
      const std::string field = std::string(kDemo) + "/obs/" + name;
      Handle dataset = open_dataset(demo.get(), "obs/" + name, where);
      DatasetInfo d = describe(dataset.get(), where, field);
      std::string want = channels > 1 ? "[T,H,W," + std::to_string(channels) + "]" : "[T,H,W]";
      if (d.dims.size() != (channels > 1 ? 4u : 3u) || d.dims[0] != n ||
          (channels > 1 && d.dims[3] != hsize_t(channels)) || d.dims[1] == 0 || d.dims[2] == 0 ||
          d.dims[1] > kMaxImageSide || d.dims[2] > kMaxImageSide)
        where.fail(field, "shape " + shape_text(d.dims) + ", expected " + want + " with T = " + std::to_string(n));
      if (d.type_class != H5T_INTEGER || d.type_size != 1 || d.sign != H5T_SGN_NONE) where.fail(field, "not uint8");
      *height = static_cast<int>(d.dims[1]);
      *width = static_cast<int>(d.dims[2]);
    };
    CameraShape& shape = entry.cameras[camera];
    image_shape(camera + "_image", 3, &shape.width, &shape.height);
    std::string segmentation = "obs/" + camera + "_segmentation";
    if (link_exists(demo.get(), segmentation, where, std::string(kDemo) + "/" + segmentation)) {
      shape.has_segmentation = true;
      image_shape(camera + "_segmentation", 1, &shape.segmentation_width, &shape.segmentation_height);
    }
  }
  return entry;
}

// One open episode file and its image datasets, kept for repeated frame reads.
struct OpenEpisode {
  int episode = -1;
  Handle file;
  std::map<std::string, Handle> datasets;  // by path inside the file
};

// Reads frame t of a [T,H,W(,C)] uint8 dataset into an Image.
Image read_frame_image(OpenEpisode& open, const std::string& path, int t, int width, int height, int channels,
                       const Where& where) {
  const std::string field = std::string(kDemo) + "/" + path;
  auto it = open.datasets.find(path);
  if (it == open.datasets.end()) {
    // Random access reads each chunk once: no chunk cache (it would hold up to 1 MiB per dataset).
    Handle dapl = plist_handle(where.check(H5Pcreate(H5P_DATASET_ACCESS), field, "cannot make property list"));
    where.check_status(H5Pset_chunk_cache(dapl.get(), H5D_CHUNK_CACHE_NSLOTS_DEFAULT, 0, H5D_CHUNK_CACHE_W0_DEFAULT),
                       field, "cannot set chunk cache");
    Handle dataset = dataset_handle(H5Dopen2(open.file.get(), field.c_str(), dapl.get()));
    if (dataset.get() < 0) where.fail(field, "cannot open dataset");
    it = open.datasets.emplace(path, std::move(dataset)).first;
  }
  Image image(width, height, channels);
  std::vector<hsize_t> start{hsize_t(t), 0, 0}, count{1, hsize_t(height), hsize_t(width)};
  if (channels > 1) {
    start.push_back(0);
    count.push_back(hsize_t(channels));
  }
  Handle file_space = space_handle(where.check(H5Dget_space(it->second.get()), field, "no dataspace"));
  Handle memory_space = space_handle(
      where.check(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), field, "bad shape"));
  where.check_status(
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), field,
      "cannot select frame " + std::to_string(t));
  where.check_status(H5Dread(it->second.get(), H5T_NATIVE_UINT8, memory_space.get(), file_space.get(), H5P_DEFAULT,
                             image.pixels.data()),
                     field, "cannot read frame " + std::to_string(t));
  return image;
}

void read_frame_pixels(OpenEpisode& open, const EpisodeEntry& entry, int t, bool with_images, bool with_segmentation,
                       Frame* frame) {
  const Where where{entry.path};
  for (const std::string& camera : entry.info.cameras) {
    const CameraShape& shape = entry.cameras.at(camera);
    if (with_images)
      frame->images[camera] =
          read_frame_image(open, "obs/" + camera + "_image", t, shape.width, shape.height, 3, where);
    if (with_segmentation && shape.has_segmentation)
      frame->segmentation[camera] = read_frame_image(open, "obs/" + camera + "_segmentation", t,
                                                     shape.segmentation_width, shape.segmentation_height, 1, where);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// DatasetWriter

DatasetWriter::DatasetWriter(const std::string& directory) : directory_(directory) {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) throw Error("dataset '" + directory + "': cannot create directory: " + ec.message());
  const std::string lock_path = (fs::path(directory) / kLockName).string();
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw Error(lock_path + ": cannot open lock file: " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    int saved = errno;
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw Error("dataset '" + directory + "': " +
                (saved == EWOULDBLOCK ? std::string("another writer is using it (") + kLockName + " is locked)"
                                      : std::string("cannot lock: ") + std::strerror(saved)));
  }
  // Holding the lock, temporaries can only be leftovers of an interrupted writer.
  for (const auto& [index, path] : scan_episodes(directory, ".h5.tmp")) {
    fs::remove(path, ec);
    if (ec) throw Error(path.string() + ": cannot remove stale temporary: " + ec.message());
  }
  auto episodes = scan_episodes(directory, ".h5");
  num_episodes_ = static_cast<int>(episodes.size());
  next_index_ = episodes.empty() ? 0 : episodes.back().first + 1;
}

DatasetWriter::~DatasetWriter() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // closing releases the flock
}

int DatasetWriter::num_episodes() const { return num_episodes_; }

int DatasetWriter::write(const EpisodeInfo& info, const std::vector<Frame>& frames) {
  const int index = next_index_;
  const std::string final_path = (fs::path(directory_) / episode_name(index)).string();
  const std::string temp_path = final_path + ".tmp";
  validate_for_write(info, frames, final_path);
  std::error_code ec;
  if (fs::exists(final_path, ec)) throw Error(final_path + ": already exists; refusing to overwrite an episode");
  try {
    {
      Hdf5Lock lock;
      write_episode_file(temp_path, info, frames);
    }
    fsync_path(temp_path, false);
    rename_no_replace(temp_path, final_path);
    fsync_path(directory_, true);
  } catch (...) {
    fs::remove(temp_path, ec);
    throw;
  }
  next_index_ = index + 1;
  ++num_episodes_;
  return index;
}

// ---------------------------------------------------------------------------------------------------
// DatasetReader

struct DatasetReader::Impl {
  std::string directory;
  std::vector<EpisodeEntry> episodes;
  std::vector<int64_t> first_frame;  // running frame count, for total_frames()
  // Most recently used open files first; guarded by the HDF5 lock.
  mutable std::list<OpenEpisode> open_files;

  const EpisodeEntry& episode(int index) const {
    if (index < 0 || index >= static_cast<int>(episodes.size()))
      throw Error("dataset '" + directory + "': episode " + std::to_string(index) + " out of range (" +
                  std::to_string(episodes.size()) + " episodes)");
    return episodes[index];
  }

  OpenEpisode& open(int index) const {  // caller holds the HDF5 lock
    auto it =
        std::find_if(open_files.begin(), open_files.end(), [&](const OpenEpisode& o) { return o.episode == index; });
    if (it != open_files.end()) {
      open_files.splice(open_files.begin(), open_files, it);
      return open_files.front();
    }
    OpenEpisode fresh;
    fresh.episode = index;
    fresh.file = open_episode_file(episodes[index].path, Where{episodes[index].path});
    if (open_files.size() >= kOpenFilesCached) open_files.pop_back();
    open_files.push_front(std::move(fresh));
    return open_files.front();
  }
};

DatasetReader::DatasetReader(const std::string& directory)
    : DatasetReader(std::vector<std::string>{directory}) {}

DatasetReader::DatasetReader(const std::vector<std::string>& directories) : impl_(std::make_unique<Impl>()) {
  if (directories.empty()) throw Error("dataset: no directory given");
  for (const std::string& d : directories) impl_->directory += (impl_->directory.empty() ? "" : ",") + d;
  Hdf5Lock lock;
  int64_t frames = 0;
  for (const std::string& directory : directories) {
    const auto files = scan_episodes(directory, ".h5");
    if (files.empty() && directories.size() > 1) throw Error("dataset '" + directory + "': no episodes");
    for (const auto& [index, path] : files) {
      impl_->episodes.push_back(load_episode(path.string()));
      impl_->first_frame.push_back(frames);
      frames += static_cast<int64_t>(impl_->episodes.back().numbers.size());
    }
  }
  impl_->first_frame.push_back(frames);
}

DatasetReader::~DatasetReader() {
  if (!impl_) return;
  Hdf5Lock lock;
  impl_->open_files.clear();
}
DatasetReader::DatasetReader(DatasetReader&&) noexcept = default;
DatasetReader& DatasetReader::operator=(DatasetReader&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      Hdf5Lock lock;
      impl_->open_files.clear();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

int DatasetReader::num_episodes() const { return static_cast<int>(impl_->episodes.size()); }
int DatasetReader::num_frames(int episode) const { return static_cast<int>(impl_->episode(episode).numbers.size()); }
int64_t DatasetReader::total_frames() const { return impl_->first_frame.back(); }
const EpisodeInfo& DatasetReader::info(int episode) const { return impl_->episode(episode).info; }
std::string DatasetReader::path(int episode) const { return impl_->episode(episode).path; }

Frame DatasetReader::frame(int episode, int index, bool with_images, bool with_segmentation) const {
  const EpisodeEntry& entry = impl_->episode(episode);
  if (index < 0 || index >= static_cast<int>(entry.numbers.size()))
    throw Error(entry.path + ": frame " + std::to_string(index) + " out of range (" +
                std::to_string(entry.numbers.size()) + " frames)");
  Frame frame = entry.numbers[index];
  if ((with_images || with_segmentation) && !entry.info.cameras.empty()) {
    Hdf5Lock lock;
    read_frame_pixels(impl_->open(episode), entry, index, with_images, with_segmentation, &frame);
  }
  return frame;
}

std::vector<Frame> DatasetReader::trajectory(int episode) const { return impl_->episode(episode).numbers; }

// ---------------------------------------------------------------------------------------------------
// Free functions

std::vector<std::string> list_episode_files(const std::string& directory) {
  std::vector<std::string> paths;
  for (const auto& [index, path] : scan_episodes(directory, ".h5")) paths.push_back(path.string());
  return paths;
}

EpisodeSummary validate_episode_file(const std::string& path, bool every_pixel) {
  Hdf5Lock lock;
  EpisodeEntry entry = load_episode(path);
  EpisodeSummary summary;
  summary.num_frames = static_cast<int>(entry.numbers.size());
  for (const auto& [camera, shape] : entry.cameras) {
    summary.image_sizes[camera] = {shape.width, shape.height};
    if (shape.has_segmentation)
      summary.segmentation_sizes[camera] = {shape.segmentation_width, shape.segmentation_height};
  }
  if (every_pixel && !entry.info.cameras.empty()) {
    OpenEpisode open;
    open.file = open_episode_file(path, Where{path});
    Frame scratch;
    for (int t = 0; t < summary.num_frames; ++t) read_frame_pixels(open, entry, t, true, true, &scratch);
  }
  summary.info = std::move(entry.info);
  return summary;
}

}  // namespace vlascope
