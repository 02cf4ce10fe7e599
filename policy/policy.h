// A SmolVLA checkpoint as a robot policy: LeRobot's pre- and post-processing around the model.
//
//   observation (camera frames, state in LeRobot units, task text)
//     → images: uint8 → [0, 1] → resize_with_pad (bilinear, pad left/top with 0) → ×2 − 1
//     → state: (x − mean) / (std + 1e-8), zero-padded to max_state_dim
//     → task: "\n" appended, tokenised, padded/truncated (smolvla.md §4.3)
//   → sample_actions (fresh seeded noise per chunk) → crop to the action size → x·std + mean
//   → a queue of n_action_steps actions; the model runs again when it is empty.
//
// The header is torch-free: control loops, experiments and apps include it without paying for libtorch. Code that
// needs tensors (capture, steering, training) reaches the model through model() and policy/smolvla.h.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/image.h"
#include "policy/config.h"
#include "policy/hooks.h"
#include "policy/layout.h"

namespace vlascope {

class SmolVLA;
class Tokenizer;
struct NormalizationStats;

struct PolicyOptions {
  std::string precision = "fp32";  // "fp32" or "bf16"
  std::string device = "cpu";
  int threads = 0;                 // intra-op threads; 0 = all cores
  std::string tokenizer;           // tokenizer.json; default: the checkpoint's own tokenizer.json
  std::string vlm_config;          // backbone config.json when the checkpoint does not say
  std::string stats_group;         // smolvla_base's per-dataset statistics (checkpoint.h)
  // Camera feature → robot camera, e.g. {"observation.images.camera1": "scene"}. A feature not listed maps to the
  // robot camera named by its last component ("observation.images.wrist" → "wrist").
  std::map<std::string, std::string> camera_map;
  uint64_t seed = 0;  // noise of chunk k comes from (seed, k)
  // Actions taken from each chunk before the model runs again (LeRobot's n_action_steps, which LeRobot users
  // override at evaluation too); 0 = the checkpoint's. Fewer means more frequent re-planning from fresh images.
  int n_action_steps = 0;
};

// Parses "camera1=scene,camera2=wrist" (feature keys may omit "observation.images.").
std::map<std::string, std::string> parse_camera_map(const std::string& text);

struct PolicyInput {
  std::map<std::string, Image> images;  // robot camera name → RGB frame
  std::vector<float> state;             // observation.state in LeRobot units (degrees, gripper 0–100)
  std::string task;
};

class Policy {
 public:
  // Loads a LeRobot checkpoint directory (policy/checkpoint.h).
  static std::unique_ptr<Policy> load(const std::string& directory, const PolicyOptions& options = {});
  // Wraps a model in memory (training, tests). `tokenizer_json_path` may be empty only if nobody calls the policy
  // with text.
  Policy(std::shared_ptr<SmolVLA> model, const NormalizationStats& stats, const std::string& tokenizer_json_path,
         const PolicyOptions& options = {});
  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  const SmolVLAConfig& config() const;
  SmolVLA& model();
  const Tokenizer& tokenizer() const;
  Hooks& hooks();
  // Robot camera names in the order the model sees them.
  const std::vector<std::string>& cameras() const { return cameras_; }
  int action_dim() const;
  int n_action_steps() const;  // the checkpoint's, unless PolicyOptions overrode it

  // One chunk: chunk_size actions of action_dim values in LeRobot units. The noise is the next of the episode's
  // sequence (reset(seed) restarts it).
  std::vector<std::vector<float>> predict_chunk(const PolicyInput& input);
  // The same with the noise of (seed, chunk) given explicitly; the episode's sequence is not advanced. Causal
  // checks compare chunks of changed inputs under identical noise this way.
  std::vector<std::vector<float>> predict_chunk(const PolicyInput& input, uint64_t seed, int64_t chunk);
  // One batched model call for several inputs, all with the same task text (an Error otherwise): chunk b uses the
  // noise of (noise[b].seed, noise[b].chunk), as predict_chunk would. Batched rows agree with one-by-one calls to
  // float rounding, not bit for bit (the matrix products block differently). last_chunk_seconds() is the call's.
  struct NoiseId {
    uint64_t seed = 0;
    int64_t chunk = 0;
  };
  std::vector<std::vector<std::vector<float>>> predict_chunks(const std::vector<const PolicyInput*>& inputs,
                                                              const std::vector<NoiseId>& noise);
  // The next action from the queue, computing a new chunk when it is empty.
  std::vector<float> select_action(const PolicyInput& input);
  // The next select_action computes a chunk (the queue is empty): the only call that reads the camera frames.
  bool will_compute_chunk() const;
  // Empties the queue and restarts the noise sequence (call at the start of every episode).
  void reset(uint64_t seed);

  // The token table of the last prefix (camera names are the robot's).
  const PrefixLayout& layout() const { return layout_; }
  int chunks_computed() const { return chunks_; }
  double last_chunk_seconds() const { return last_chunk_seconds_; }
  bool ran_model_last_call() const { return ran_model_; }  // select_action computed a chunk this call
  // True when actions are unnormalised with dataset statistics (false: the checkpoint had none; outputs are in
  // normalised units).
  bool has_action_stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> cameras_;
  PrefixLayout layout_;
  int chunks_ = 0;
  double last_chunk_seconds_ = 0;
  bool ran_model_ = false;
};

// LeRobot's resize_with_pad + [-1, 1] on one frame, as floats [3, height, width] (row-major), for tests and figures.
std::vector<float> preprocess_image(const Image& image, int width, int height);

}  // namespace vlascope
