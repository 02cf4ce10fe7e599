#include "interp/activation_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/file_io.h"
#include "common/json_io.h"

namespace vlascope {

namespace fs = std::filesystem;

namespace {

constexpr int kRowColumns = 7;
const char* kValuesFile = "activations.f32";
const char* kRowsFile = "rows.i32";
const char* kInfoFile = "store.json";

std::string path_in(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

std::FILE* open_for_writing(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  require(f != nullptr, path + ": cannot be written (" + std::strerror(errno) + ")");
  return f;
}

}  // namespace

const char* row_kind_name(RowKind kind) {
  switch (kind) {
    case RowKind::kImage: return "image";
    case RowKind::kWord: return "word";
    case RowKind::kState: return "state";
    case RowKind::kAction: return "action";
    case RowKind::kPadding: return "padding";
  }
  return "?";
}

ActivationStoreWriter::ActivationStoreWriter(const std::string& dir, int64_t width) : dir_(dir), width_(width) {
  require(width > 0, dir + ": an activation store needs rows of at least one value");
  std::error_code ec;
  fs::create_directories(dir, ec);
  require(!ec, dir + ": cannot create the folder (" + ec.message() + ")");
  values_ = open_for_writing(path_in(dir, kValuesFile) + std::string(".tmp"));
  rows_ = open_for_writing(path_in(dir, kRowsFile) + std::string(".tmp"));
}

ActivationStoreWriter::~ActivationStoreWriter() {
  if (values_) std::fclose(values_);
  if (rows_) std::fclose(rows_);
  if (!finished_) {
    std::error_code ec;
    fs::remove(path_in(dir_, kValuesFile) + std::string(".tmp"), ec);
    fs::remove(path_in(dir_, kRowsFile) + std::string(".tmp"), ec);
  }
}

void ActivationStoreWriter::append(const float* values, const std::vector<ActivationRow>& rows) {
  require(!finished_, dir_ + ": the activation store is already finished");
  const size_t n = rows.size();
  if (n == 0) return;
  require(std::fwrite(values, sizeof(float) * static_cast<size_t>(width_), n, values_) == n,
          path_in(dir_, kValuesFile) + ": write failed (" + std::strerror(errno) + ")");
  std::vector<int32_t> packed;
  packed.reserve(n * kRowColumns);
  for (const ActivationRow& r : rows)
    packed.insert(packed.end(), {r.episode, r.frame, r.position, r.step, static_cast<int32_t>(r.kind), r.phase,
                                 r.variant});
  require(std::fwrite(packed.data(), sizeof(int32_t), packed.size(), rows_) == packed.size(),
          path_in(dir_, kRowsFile) + ": write failed (" + std::strerror(errno) + ")");
  count_ += static_cast<int64_t>(n);
}

void ActivationStoreWriter::finish(StoreInfo info) {
  require(!finished_, dir_ + ": the activation store is already finished");
  for (std::FILE** f : {&values_, &rows_}) {
    const bool ok = std::fflush(*f) == 0 && fsync(fileno(*f)) == 0;
    std::fclose(*f);
    *f = nullptr;
    require(ok, dir_ + ": flushing the activation store failed (" + std::strerror(errno) + ")");
  }
  std::error_code ec;
  fs::remove(path_in(dir_, kInfoFile), ec);  // a reader must never pair new data with an old count
  for (const char* name : {kValuesFile, kRowsFile}) {
    fs::rename(path_in(dir_, name) + std::string(".tmp"), path_in(dir_, name), ec);
    require(!ec, path_in(dir_, name) + ": cannot be put in place (" + ec.message() + ")");
  }
  info.width = width_;
  info.count = count_;
  nlohmann::json j = {{"format", "vlascope.activations"},
                      {"version", 1},
                      {"hook", info.hook},
                      {"width", info.width},
                      {"count", info.count},
                      {"checkpoint", info.checkpoint},
                      {"checkpoint_digest", info.checkpoint_digest},
                      {"dataset", info.dataset},
                      {"prompt", info.prompt},
                      {"cameras", info.cameras},
                      {"tokens_per_camera", info.tokens_per_camera},
                      {"grid", info.grid},
                      {"variants", info.variants},
                      {"frames", info.frames},
                      {"row_columns", {"episode", "frame", "position", "step", "kind", "phase", "variant"}}};
  write_file_atomically(path_in(dir_, kInfoFile), j.dump(2) + "\n");
  finished_ = true;
}

ActivationStore::ActivationStore(const std::string& dir) : dir_(dir) {
  const std::string info_path = path_in(dir, kInfoFile);
  require(fs::exists(info_path), dir + ": not a finished activation store (no " + kInfoFile +
                                     "; `vlascope sae capture` writes one, last)");
  const nlohmann::json j = read_json_object(info_path);
  try {
    require(j.at("format").get<std::string>() == "vlascope.activations",
            info_path + ": \"format\" is not \"vlascope.activations\"");
    info_.hook = j.at("hook").get<std::string>();
    info_.width = j.at("width").get<int64_t>();
    info_.count = j.at("count").get<int64_t>();
    info_.checkpoint = j.value("checkpoint", "");
    info_.checkpoint_digest = j.value("checkpoint_digest", "");
    info_.dataset = j.value("dataset", "");
    info_.prompt = j.value("prompt", "");
    info_.cameras = j.value("cameras", std::vector<std::string>{});
    info_.tokens_per_camera = j.value("tokens_per_camera", 0);
    info_.grid = j.value("grid", 0);
    info_.variants = j.value("variants", std::vector<std::string>{});
    info_.frames = j.value("frames", 0);
  } catch (const nlohmann::json::exception& e) {
    throw Error(info_path + ": " + e.what());
  }
  require(info_.width > 0 && info_.count >= 0, info_path + ": \"width\" must be > 0 and \"count\" ≥ 0");

  const std::string values_path = path_in(dir, kValuesFile), rows_path = path_in(dir, kRowsFile);
  // Compared by division: a forged count × width must not wrap around into a size the files have.
  const uint64_t count = static_cast<uint64_t>(info_.count), width = static_cast<uint64_t>(info_.width);
  std::error_code ec;
  const uint64_t have_values = fs::file_size(values_path, ec);
  require(!ec && have_values / sizeof(float) / width >= count,
          values_path + ": holds " + (ec ? std::string("nothing") : std::to_string(have_values) + " bytes") + ", " +
              kInfoFile + " says " + std::to_string(count) + " rows of " + std::to_string(width) + " floats");
  const uint64_t have_rows = fs::file_size(rows_path, ec);
  require(!ec && have_rows / (kRowColumns * sizeof(int32_t)) >= count,
          rows_path + ": holds " + (ec ? std::string("nothing") : std::to_string(have_rows) + " bytes") + ", " +
              kInfoFile + " says " + std::to_string(count) + " rows");
  const uint64_t want_values = count * width * sizeof(float);
  if (want_values > 0) {
    const int fd = ::open(values_path.c_str(), O_RDONLY);
    require(fd >= 0, values_path + ": cannot be opened (" + std::strerror(errno) + ")");
    void* p = mmap(nullptr, want_values, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    require(p != MAP_FAILED, values_path + ": cannot be mapped (" + std::strerror(errno) + ")");
    values_ = static_cast<const float*>(p);
    mapped_bytes_ = want_values;
  }
  std::vector<int32_t> packed(static_cast<size_t>(info_.count) * kRowColumns);
  std::FILE* f = std::fopen(rows_path.c_str(), "rb");
  require(f != nullptr, rows_path + ": cannot be opened");
  const size_t got = std::fread(packed.data(), sizeof(int32_t), packed.size(), f);
  std::fclose(f);
  require(got == packed.size(), rows_path + ": short read");
  rows_.resize(static_cast<size_t>(info_.count));
  for (size_t i = 0; i < rows_.size(); ++i) {
    const int32_t* p = packed.data() + i * kRowColumns;
    require(p[4] >= 0 && p[4] <= static_cast<int32_t>(RowKind::kPadding),
            rows_path + ": row " + std::to_string(i) + " has an unknown kind " + std::to_string(p[4]));
    require(p[6] >= -1 && p[6] < static_cast<int32_t>(info_.variants.size()),
            rows_path + ": row " + std::to_string(i) + " names variant " + std::to_string(p[6]) + " of " +
                std::to_string(info_.variants.size()));
    rows_[i] = {p[0], p[1], p[2], p[3], static_cast<RowKind>(p[4]), p[5], p[6]};
  }
}

ActivationStore::~ActivationStore() {
  if (values_) munmap(const_cast<float*>(values_), mapped_bytes_);
}

RowSplit split_by_episode(const ActivationStore& store, int holdout) {
  std::vector<int32_t> episodes;
  std::set<int32_t> seen;
  for (const ActivationRow& r : store.rows())
    if (seen.insert(r.episode).second) episodes.push_back(r.episode);
  std::set<int32_t> held;
  if (holdout > 1)
    for (size_t i = 0; i < episodes.size(); ++i)
      if ((episodes.size() - 1 - i) % static_cast<size_t>(holdout) == 0) held.insert(episodes[i]);
  RowSplit split;
  for (int64_t i = 0; i < store.count(); ++i) (held.count(store.meta(i).episode) ? split.heldout : split.train).push_back(i);
  return split;
}

}  // namespace vlascope
