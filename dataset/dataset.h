// vlascope datasets: recorded episodes (scripted demonstrations, policy rollouts, real teleoperation) in
// HDF5, the format of robomimic and LIBERO.
//
// A dataset is a directory with one HDF5 file per episode (episode_000000.h5, …). An episode is written to
// a temporary file, flushed, and renamed into place, so it is either complete or absent: a collection that
// is interrupted never touches earlier episodes, and resuming simply continues after the last complete one.
// Inside an episode file the layout follows robomimic (`data/demo_0/obs/<camera>_image`, `…/actions`,
// attributes for the metadata); dataset/README.md documents every field.
//
// Units: states and actions are LeRobot units (degrees for the arm joints, 0–100 gripper; hardware/units.h
// converts), positions are metres in the world frame, times are seconds.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/image.h"

namespace vlascope {

// Task phase of a frame, as the scripted expert labels it (unknown for policy rollouts and real data;
// interp/ finds the lift segment from the end-effector trajectory instead).
enum class Phase : int8_t { kUnknown = 0, kReach = 1, kGrasp = 2, kLift = 3, kHold = 4 };
const char* phase_name(Phase phase);
// The phase a name (reach, grasp, lift, hold) means; `what` names the option in the Error for anything else.
Phase parse_task_phase(const std::string& name, const std::string& what);

struct EpisodeInfo {
  std::string instruction;   // the task text given to the policy
  std::string variant;       // "high", "low", "fast", "slow", or "" when unlabelled
  std::string robot;         // "sim" or "so100"
  std::string source;        // "expert", "policy:<checkpoint>", "teleop"
  uint64_t seed = 0;
  bool success = false;
  double fps = 30;
  std::vector<std::string> cameras;               // names, in the order the policy sees them
  std::map<std::string, double> scalars;          // free-form numbers, e.g. "target_lift_height_m"
};

struct Frame {
  double timestamp = 0;                  // seconds since the episode started
  std::array<float, 6> state{};          // observation.state, LeRobot units
  std::array<float, 6> action{};         // action, LeRobot units (the joint targets sent at this frame)
  std::array<float, 3> ee_position{};    // metres
  std::array<float, 4> ee_quaternion{1, 0, 0, 0};
  std::array<float, 3> object_position{};  // the cube; NaN when unknown (real arm)
  Phase phase = Phase::kUnknown;
  std::map<std::string, Image> images;        // camera → RGB, same size for every frame of a camera
  std::map<std::string, Image> segmentation;  // camera → 1-channel class ids (sim/segmentation.h); may be empty
};

// Appends complete episodes to a dataset directory (created if missing).
// A writer holds an exclusive lock on the directory (`.vlascope_writer.lock`, flock) for its lifetime, so
// two collections cannot interleave; a second writer on the same directory is an Error. Opening removes
// stale temporaries (`episode_*.h5.tmp`) that an interrupted writer left behind.
class DatasetWriter {
 public:
  explicit DatasetWriter(const std::string& directory);
  ~DatasetWriter();
  DatasetWriter(const DatasetWriter&) = delete;
  DatasetWriter& operator=(const DatasetWriter&) = delete;

  // Writes one episode atomically and returns its index. Throws Error (naming the file and the field) on
  // failure; then nothing of this episode is left behind. Refused before anything touches the disk: zero
  // frames, a frame whose cameras differ from info.cameras, an image whose size differs from the camera's
  // first image, segmentation present in some frames of a camera but not others.
  int write(const EpisodeInfo& info, const std::vector<Frame>& frames);
  // Complete episodes in the directory. The next episode gets index (largest existing index + 1), so a gap
  // left by a deleted file is never refilled.
  int num_episodes() const;

 private:
  std::string directory_;
  int next_index_ = 0;
  int num_episodes_ = 0;
  int lock_fd_ = -1;
};

// Random access to episodes and frames. Opening validates every episode file (structure, shapes, metadata)
// and keeps the per-frame numbers in memory (~100 bytes a frame); a damaged or truncated file is an Error
// naming it. Images are read and decoded one frame at a time on demand, from a small set of open files, so
// a reader of a large dataset stays small. All methods may be called from several threads (HDF5 calls are
// serialised by one process-wide lock).
class DatasetReader {
 public:
  explicit DatasetReader(const std::string& directory);
  // Several datasets read as one: the episodes of the first directory, then those of the next, … (training on
  // clean and execution-noise demonstrations together). Every directory must hold at least one episode.
  explicit DatasetReader(const std::vector<std::string>& directories);
  ~DatasetReader();
  DatasetReader(DatasetReader&&) noexcept;
  DatasetReader& operator=(DatasetReader&&) noexcept;

  int num_episodes() const;
  int num_frames(int episode) const;
  int64_t total_frames() const;
  const EpisodeInfo& info(int episode) const;
  std::string path(int episode) const;

  // One frame. with_images / with_segmentation = false skip the pixel data (fast access to the numbers).
  Frame frame(int episode, int index, bool with_images = true, bool with_segmentation = false) const;
  // All frames' numbers (no pixels) of an episode: states, actions, poses, phases.
  std::vector<Frame> trajectory(int episode) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The complete episode files of a dataset directory (`episode_NNNNNN.h5`), in index order. Temporaries
// and other files are skipped. Throws Error if the directory does not exist.
std::vector<std::string> list_episode_files(const std::string& directory);

struct ImageSize {
  int width = 0, height = 0;
};

// What validating an episode file tells about it.
struct EpisodeSummary {
  EpisodeInfo info;
  int num_frames = 0;
  std::map<std::string, ImageSize> image_sizes;         // camera → RGB image size
  std::map<std::string, ImageSize> segmentation_sizes;  // the cameras that have a segmentation
};

// Checks one episode file: format version, metadata, every field's presence, type and shape; with
// every_pixel = true also reads every image and segmentation frame, which verifies the per-chunk checksums.
// Throws Error naming the file and the field. (`vlascope dataset-info` reports on every file with it.)
EpisodeSummary validate_episode_file(const std::string& path, bool every_pixel);

}  // namespace vlascope
