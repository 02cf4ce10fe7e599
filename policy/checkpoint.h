// LeRobot SmolVLA checkpoints: a directory with
//
//   config.json                                             SmolVLAConfig (policy/config.h)
//   model.safetensors                                       the weights, keys as in smolvla.md §7 (bf16 and fp32 mixed)
//   policy_preprocessor.json, policy_postprocessor.json     LeRobot's processor pipelines
//   policy_preprocessor_step_<i>_normalizer_processor.safetensors      statistics (`observation.state.mean`, …)
//   policy_postprocessor_step_<i>_unnormalizer_processor.safetensors
//
// plus, in vlascope's own checkpoints, `vlm_config.json` (the backbone sizes, which LeRobot would fetch by
// vlm_model_name) and `tokenizer.json`. Older LeRobot checkpoints keep the statistics inside model.safetensors as
// `normalize_inputs.buffer_observation_state.mean` etc.; they are read from there when no processor file exists.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "policy/smolvla.h"

namespace vlascope {

struct FeatureStats {
  std::vector<float> mean, std, min, max, q01, q99;  // whichever the file has
};
// Statistics per feature key ("observation.state", "action").
struct NormalizationStats {
  std::map<std::string, FeatureStats> features;
  std::string source;  // the file they came from
  bool has(const std::string& key) const { return features.count(key) > 0; }
};

struct LoadReport {
  int tensors = 0;
  int64_t parameters = 0;
  std::map<std::string, int> dtypes;  // file dtype → tensors, e.g. {"BF16": 484, "F32": 16}
  std::vector<std::string> ignored;   // normalisation buffers and other non-weight keys that were skipped
  bool stripped_orig_mod = false;     // keys carried torch.compile's `model._orig_mod.` prefix
};

// Loads model.safetensors into `model` (whose configuration must match the file). Each tensor's dtype comes from
// the file header and is converted to the model's precision. Missing, unexpected and mis-shaped tensors are one
// Error listing every offending key (expected vs found shape).
LoadReport load_weights(SmolVLA& model, const std::string& safetensors_path);

// Statistics: processor files named by policy_{pre,post}processor.json (or found by name), else the normalize_*
// buffers of model.safetensors. smolvla_base groups its statistics per pre-training dataset
// (`so100.buffer.action.mean`): `group` picks one; without it such a checkpoint has no plain statistics (an empty
// result, and policies then work in normalised units).
NormalizationStats load_normalization(const std::string& directory, const std::string& group = "");

enum class SaveDtypes : int8_t {
  kAsModel,   // each tensor in the model's current dtype
  kLeRobot,   // LeRobot's mix: bf16 where smolvla_base has bf16, fp32 elsewhere (smolvla.md §7.3)
  kFloat32,   // everything fp32
};

// Writes a checkpoint directory LeRobot can read: config.json (+ vlm_config.json for a non-SmolVLM2 backbone),
// model.safetensors, the two processor JSON files and their statistics files. `tokenizer_json`, if not empty, is
// copied in as tokenizer.json. Every file is written atomically.
void save_checkpoint(const std::string& directory, SmolVLA& model, const NormalizationStats& stats,
                     SaveDtypes dtypes = SaveDtypes::kAsModel, const std::string& tokenizer_json = "");

// Everything needed to run a checkpoint directory.
struct LoadedCheckpoint {
  std::unique_ptr<SmolVLA> model;
  NormalizationStats stats;
  LoadReport report;
  std::string directory;
};
struct LoadOptions {
  Precision precision = Precision::kFloat32;
  std::string device = "cpu";    // "cpu", "cuda", "cuda:1"
  std::string vlm_config;        // overrides the backbone lookup of read_lerobot_config
  std::string stats_group;       // see load_normalization
};
LoadedCheckpoint load_checkpoint(const std::string& directory, const LoadOptions& options = {});

torch::Device parse_device(const std::string& name);

class SafetensorsFile;
// One tensor of an open safetensors file as a torch tensor of the file's dtype (a copy; Error if absent).
torch::Tensor read_tensor(const SafetensorsFile& file, const std::string& name);  // Error if CUDA is asked for and libtorch has none

}  // namespace vlascope
