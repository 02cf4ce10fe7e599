// Activations on disk, for sparse autoencoders (issue 17): the rows a hook point produced on recorded frames,
// streamed to a folder as they are captured, so training is bounded by the disk, not by memory.
//
//   <dir>/activations.f32   [count, width] float32, little-endian, row-major (appended while capturing)
//   <dir>/rows.i32          [count, 7] int32: episode, frame, position, step, kind, phase, variant — where each row
//                           came from (position: the prefix row, or the action index; step: the denoising step or −1;
//                           kind: RowKind; phase: dataset Phase; variant: index into store.json's "variants", −1 none)
//   <dir>/store.json        what was captured (hook point, rows, checkpoint, dataset, prompt, cameras) and `count`,
//                           written last: a capture that stopped early leaves a folder without it, which the reader
//                           refuses, naming the folder.
//
// The reader maps activations.f32 (pages come from the disk as they are read).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace vlascope {

enum class RowKind : int8_t { kImage = 0, kWord = 1, kState = 2, kAction = 3, kPadding = 4 };
const char* row_kind_name(RowKind kind);  // "image" | "word" | "state" | "action" | "padding"

struct ActivationRow {
  int32_t episode = 0, frame = 0;
  int32_t position = 0;  // prefix row (VLM) or action index (expert)
  int32_t step = -1;     // denoising step (expert), −1 for the prefix pass
  RowKind kind = RowKind::kImage;
  int32_t phase = 0;     // dataset Phase as a number
  int32_t variant = -1;  // index into StoreInfo::variants, −1 when the episode has none
};

struct StoreInfo {
  std::string hook;        // the PatchSpec text: hook point and rows, e.g. "vlm.layers.2.resid.post@images+state"
  int64_t width = 0;       // values per row
  int64_t count = 0;       // rows
  std::string checkpoint, checkpoint_digest, dataset, prompt;
  std::vector<std::string> cameras;  // image rows: camera = position / tokens_per_camera
  int tokens_per_camera = 0;
  int grid = 0;                      // tokens_per_camera = grid × grid
  std::vector<std::string> variants;
  int frames = 0;                    // recorded frames the rows came from
};

class ActivationStoreWriter {
 public:
  // Creates `dir` (an existing store there is replaced only when finish() succeeds: the data files are written
  // under temporary names). Throws Error naming the folder.
  ActivationStoreWriter(const std::string& dir, int64_t width);
  ~ActivationStoreWriter();  // without finish(): the temporaries are removed, nothing is published
  ActivationStoreWriter(const ActivationStoreWriter&) = delete;
  ActivationStoreWriter& operator=(const ActivationStoreWriter&) = delete;

  // `values` holds rows.size() × width floats. Error naming the file on a failed write.
  void append(const float* values, const std::vector<ActivationRow>& rows);
  int64_t count() const { return count_; }
  // Flushes, renames the data files into place and writes store.json (info.width and info.count are set here).
  void finish(StoreInfo info);

 private:
  std::string dir_;
  int64_t width_ = 0, count_ = 0;
  std::FILE* values_ = nullptr;
  std::FILE* rows_ = nullptr;
  bool finished_ = false;
};

class ActivationStore {
 public:
  // Reads store.json and maps the data; Error naming the folder or file when it is missing, not a finished store,
  // or shorter than store.json says.
  explicit ActivationStore(const std::string& dir);
  ~ActivationStore();
  ActivationStore(const ActivationStore&) = delete;
  ActivationStore& operator=(const ActivationStore&) = delete;

  const StoreInfo& info() const { return info_; }
  const std::string& dir() const { return dir_; }
  int64_t count() const { return info_.count; }
  int64_t width() const { return info_.width; }
  const float* row(int64_t i) const { return values_ + i * info_.width; }
  const ActivationRow& meta(int64_t i) const { return rows_[static_cast<size_t>(i)]; }
  const std::vector<ActivationRow>& rows() const { return rows_; }

 private:
  std::string dir_;
  StoreInfo info_;
  const float* values_ = nullptr;
  size_t mapped_bytes_ = 0;
  std::vector<ActivationRow> rows_;
};

// The rows of whole episodes, split for training and held-out evaluation: every `holdout`-th distinct episode (in
// order of first appearance, counting from the last) is held out, so no frame of a held-out episode is trained on.
// holdout ≤ 1: nothing is held out.
struct RowSplit {
  std::vector<int64_t> train, heldout;
};
RowSplit split_by_episode(const ActivationStore& store, int holdout);

}  // namespace vlascope
