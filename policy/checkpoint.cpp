#include "policy/checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/file_io.h"
#include "common/json_io.h"
#include "policy/safetensors.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

const char* const kOrigModPrefix = "model._orig_mod.";
const char* const kStatNames[] = {"mean", "std", "min", "max", "q01", "q99"};

torch::ScalarType torch_dtype(DType d) {
  switch (d) {
    case DType::kF32: return torch::kFloat32;
    case DType::kF16: return torch::kFloat16;
    case DType::kBF16: return torch::kBFloat16;
    case DType::kF64: return torch::kFloat64;
    case DType::kI64: return torch::kInt64;
    case DType::kI32: return torch::kInt32;
    case DType::kI16: return torch::kInt16;
    case DType::kI8: return torch::kInt8;
    case DType::kU8: return torch::kUInt8;
    case DType::kBool: return torch::kBool;
  }
  return torch::kFloat32;
}

DType file_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return DType::kF32;
    case torch::kBFloat16: return DType::kBF16;
    case torch::kFloat16: return DType::kF16;
    case torch::kFloat64: return DType::kF64;
    case torch::kInt64: return DType::kI64;
    case torch::kInt32: return DType::kI32;
    case torch::kBool: return DType::kBool;
    case torch::kUInt8: return DType::kU8;
    default: throw Error(std::string("safetensors: cannot store torch dtype ") + c10::toString(t));
  }
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool is_normalization_key(const std::string& key) {
  for (const char* p : {"normalize_inputs.", "normalize_targets.", "unnormalize_outputs."})
    if (key.rfind(p, 0) == 0) return true;
  return false;
}

std::string join_limited(const std::vector<std::string>& items, size_t limit) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < limit; ++i) s += "\n  " + items[i];
  if (items.size() > limit) s += "\n  … and " + std::to_string(items.size() - limit) + " more";
  return s;
}

// Splits "observation.state.mean" into ("observation.state", "mean"); false if the key ends in no known statistic.
bool split_stat_key(const std::string& key, std::string* feature, std::string* stat) {
  const size_t dot = key.rfind('.');
  if (dot == std::string::npos) return false;
  const std::string s = key.substr(dot + 1);
  if (std::find(std::begin(kStatNames), std::end(kStatNames), s) == std::end(kStatNames)) return false;
  *feature = key.substr(0, dot);
  *stat = s;
  return true;
}

std::vector<float>* stat_slot(FeatureStats& f, const std::string& stat) {
  if (stat == "mean") return &f.mean;
  if (stat == "std") return &f.std;
  if (stat == "min") return &f.min;
  if (stat == "max") return &f.max;
  if (stat == "q01") return &f.q01;
  if (stat == "q99") return &f.q99;
  return nullptr;
}

// Reads `<feature>.<stat>` keys (optionally behind "<group>.buffer.") from a processor statistics file.
NormalizationStats read_stats_file(const std::string& path, const std::string& group) {
  NormalizationStats out;
  out.source = path;
  const SafetensorsFile file(path);
  const std::string prefix = group.empty() ? "" : group + ".buffer.";
  for (const TensorInfo& t : file.tensors()) {
    std::string key = t.name;
    if (!prefix.empty()) {
      if (key.rfind(prefix, 0) != 0) continue;
      key = key.substr(prefix.size());
    }
    std::string feature, stat;
    if (!split_stat_key(key, &feature, &stat)) continue;
    *stat_slot(out.features[feature], stat) = file.to_float(t);
  }
  return out;
}

// The state_file of the first step named `registry` in a processor JSON, or "".
std::string processor_state_file(const fs::path& json_path, const std::string& registry) {
  if (!fs::exists(json_path)) return "";
  const Json j = read_json_object(json_path.string());
  if (!j.contains("steps") || !j["steps"].is_array()) return "";
  for (const Json& step : j["steps"]) {
    if (!step.is_object() || step.value("registry_name", "") != registry) continue;
    if (step.contains("state_file") && step["state_file"].is_string()) return step["state_file"].get<std::string>();
  }
  return "";
}

}  // namespace

torch::Device parse_device(const std::string& name) {
  if (name.empty() || name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    require(torch::cuda::is_available(), "device '" + name + "': this libtorch has no CUDA device available");
    return torch::Device(name);
  }
  throw Error("unknown device '" + name + "' (expected cpu, cuda or cuda:N)");
}

namespace {
// A tensor of the file's dtype holding a copy of the data (memcpy: data in the mapping need not be aligned).
torch::Tensor copy_tensor(const SafetensorsFile& file, const TensorInfo& t) {
  torch::Tensor out = torch::empty(t.shape, torch::dtype(torch_dtype(t.dtype)));
  if (t.nbytes > 0) std::memcpy(out.data_ptr(), file.data(t), t.nbytes);
  return out;
}
}  // namespace

torch::Tensor read_tensor(const SafetensorsFile& file, const std::string& name) {
  return copy_tensor(file, file.at(name));
}

LoadReport load_weights(SmolVLA& model, const std::string& path) {
  const SafetensorsFile file(path);
  LoadReport report;
  std::vector<WeightEntry> table = model.weight_table();
  std::map<std::string, WeightEntry*> by_key;
  for (WeightEntry& e : table) by_key[e.key] = &e;

  std::vector<std::string> unexpected, misshaped;
  std::map<std::string, const TensorInfo*> found;
  for (const TensorInfo& t : file.tensors()) {
    std::string key = t.name;
    if (key.rfind(kOrigModPrefix, 0) == 0) {
      key = "model." + key.substr(std::string(kOrigModPrefix).size());
      report.stripped_orig_mod = true;
    }
    if (is_normalization_key(key)) {
      report.ignored.push_back(t.name);
      continue;
    }
    auto it = by_key.find(key);
    if (it == by_key.end()) {
      unexpected.push_back(t.name + " " + dtype_name(t.dtype) + " " + shape_text(t.shape));
      continue;
    }
    if (t.shape != it->second->shape) {
      misshaped.push_back(key + ": expected " + shape_text(it->second->shape) + ", found " + shape_text(t.shape));
      continue;
    }
    if (t.dtype != DType::kF32 && t.dtype != DType::kBF16 && t.dtype != DType::kF16 && t.dtype != DType::kF64) {
      misshaped.push_back(key + ": dtype " + dtype_name(t.dtype) + " is not a floating-point type");
      continue;
    }
    found[key] = &t;
  }
  std::vector<std::string> missing;
  for (const WeightEntry& e : table)
    if (!found.count(e.key)) missing.push_back(e.key + " " + shape_text(e.shape));
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::string msg = path + ": the checkpoint does not match the model configuration";
    if (!missing.empty()) msg += "\nmissing " + std::to_string(missing.size()) + " tensors:" + join_limited(missing, 20);
    if (!unexpected.empty())
      msg += "\nunexpected " + std::to_string(unexpected.size()) + " tensors:" + join_limited(unexpected, 20);
    if (!misshaped.empty())
      msg += "\nmis-shaped " + std::to_string(misshaped.size()) + " tensors:" + join_limited(misshaped, 20);
    throw Error(msg);
  }

  torch::NoGradGuard no_grad;
  for (WeightEntry& e : table) {
    const TensorInfo& t = *found.at(e.key);
    *e.tensor = copy_tensor(file, t).to(model.device(), model.dtype_of(e));
    report.tensors += 1;
    report.parameters += t.numel();
    report.dtypes[dtype_name(t.dtype)] += 1;
  }
  return report;
}

NormalizationStats load_normalization(const std::string& directory, const std::string& group) {
  const fs::path dir(directory);
  NormalizationStats stats;
  // Current LeRobot: processor statistics files.
  std::vector<fs::path> files;
  for (const auto& [json, registry] : {std::pair<const char*, const char*>{"policy_preprocessor.json",
                                                                           "normalizer_processor"},
                                       {"policy_postprocessor.json", "unnormalizer_processor"}}) {
    const std::string state = processor_state_file(dir / json, registry);
    if (!state.empty()) {
      require(fs::exists(dir / state), (dir / json).string() + " names the statistics file " + state +
                                           ", which does not exist");
      files.push_back(dir / state);
    }
  }
  if (files.empty() && fs::is_directory(dir)) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (name.size() > 12 && name.find("normalizer_processor.safetensors") != std::string::npos)
        files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
  }
  for (const fs::path& f : files) {
    NormalizationStats part = read_stats_file(f.string(), group);
    for (auto& [key, value] : part.features)
      if (!stats.features.count(key)) stats.features[key] = std::move(value);
    if (stats.source.empty() && !part.features.empty()) stats.source = f.string();
  }
  if (!files.empty()) return stats;

  // Older checkpoints: normalize_inputs.buffer_observation_state.mean, unnormalize_outputs.buffer_action.std, …
  const fs::path model = dir / "model.safetensors";
  if (!fs::exists(model)) return stats;
  std::vector<std::string> feature_keys = {"observation.state", "action"};
  if (fs::exists(dir / "config.json")) {
    try {
      const SmolVLAConfig c = read_lerobot_config((dir / "config.json").string(), "");
      for (const auto* list : {&c.input_features, &c.output_features})
        for (const Feature& f : *list) feature_keys.push_back(f.key);
    } catch (const Error&) {
      // Only the feature names are wanted here; a backbone that cannot be resolved is load_checkpoint's error.
    }
  }
  const SafetensorsFile file(model.string());
  for (const TensorInfo& t : file.tensors()) {
    std::string key = t.name;
    if (key.rfind(kOrigModPrefix, 0) == 0) key = key.substr(std::string(kOrigModPrefix).size());
    if (!is_normalization_key(key)) continue;
    const size_t buffer = key.find("buffer_");
    std::string feature_and_stat = key.substr(buffer == std::string::npos ? 0 : buffer + 7);
    std::string feature, stat;
    if (!split_stat_key(feature_and_stat, &feature, &stat)) continue;
    // Buffer names spell the feature key with underscores ("buffer_observation_state"); smolvla_base's carry a
    // dataset name too ("…so100-blue_buffer_action"), which needs an explicit group.
    if (!group.empty() || key.find('-') != std::string::npos) continue;
    std::string dotted = feature;
    for (const std::string& known : feature_keys) {
      std::string underscored = known;
      std::replace(underscored.begin(), underscored.end(), '.', '_');
      if (underscored == feature) dotted = known;
    }
    std::vector<float>* slot = stat_slot(stats.features[dotted], stat);
    if (slot->empty()) *slot = file.to_float(t);
    stats.source = model.string();
  }
  return stats;
}

void save_checkpoint(const std::string& directory, SmolVLA& model, const NormalizationStats& stats,
                     SaveDtypes dtypes, const std::string& tokenizer_json) {
  const fs::path dir(directory);
  fs::create_directories(dir);
  const SmolVLAConfig& config = model.config();
  write_lerobot_config(directory, config);

  SafetensorsWriter weights;
  weights.set_metadata("format", "pt");
  for (const WeightEntry& e : model.weight_table()) {
    torch::ScalarType target = e.tensor->scalar_type();
    if (dtypes == SaveDtypes::kLeRobot) target = e.lerobot_bf16 ? torch::kBFloat16 : torch::kFloat32;
    if (dtypes == SaveDtypes::kFloat32) target = torch::kFloat32;
    // A tied head is stored as what it is, a copy of embed_tokens (LeRobot reads both keys).
    const torch::Tensor& source = e.group == WeightGroup::kLmHead ? model.output_embedding() : *e.tensor;
    const torch::Tensor t = source.detach().to(torch::kCPU, target).contiguous();
    weights.add(e.key, file_dtype(target), t.sizes().vec(), t.data_ptr(), t.numel() * t.element_size());
  }
  weights.write((dir / "model.safetensors").string());

  // Processor pipelines with the statistics, as LeRobot's SmolVLA factory writes them.
  SafetensorsWriter stat_file;
  for (const auto& [feature, s] : stats.features) {
    for (const char* name : kStatNames) {
      const std::vector<float>* v = stat_slot(const_cast<FeatureStats&>(s), name);
      if (v->empty()) continue;
      stat_file.add(feature + "." + name, DType::kF32, {static_cast<int64_t>(v->size())}, v->data(),
                    v->size() * sizeof(float));
    }
  }
  const std::string pre_state = "policy_preprocessor_step_5_normalizer_processor.safetensors";
  const std::string post_state = "policy_postprocessor_step_0_unnormalizer_processor.safetensors";
  stat_file.write((dir / pre_state).string());
  stat_file.write((dir / post_state).string());

  Json features = Json::object();
  for (const Feature& f : config.input_features) features[f.key] = {{"type", f.type}, {"shape", f.shape}};
  for (const Feature& f : config.output_features) features[f.key] = {{"type", f.type}, {"shape", f.shape}};
  const Json norm_map = {{"VISUAL", config.normalization_visual},
                         {"STATE", config.normalization_state},
                         {"ACTION", config.normalization_action}};
  Json pre;
  pre["name"] = "policy_preprocessor";
  pre["steps"] = Json::array(
      {{{"registry_name", "rename_observations_processor"}, {"config", {{"rename_map", Json::object()}}}},
       {{"registry_name", "to_batch_processor"}, {"config", Json::object()}},
       {{"registry_name", "smolvla_new_line_processor"}, {"config", Json::object()}},
       {{"registry_name", "tokenizer_processor"},
        {"config",
         {{"max_length", config.tokenizer_max_length},
          {"task_key", "task"},
          {"padding_side", "right"},
          {"padding", config.pad_language_to_max_length ? "max_length" : "longest"},
          {"truncation", true},
          {"tokenizer_name", config.vlm_model_name}}}},
       {{"registry_name", "device_processor"}, {"config", {{"device", "cpu"}, {"float_dtype", nullptr}}}},
       {{"registry_name", "normalizer_processor"},
        {"config", {{"eps", 1e-8}, {"features", features}, {"norm_map", norm_map}}},
        {"state_file", pre_state}}});
  Json post;
  post["name"] = "policy_postprocessor";
  post["steps"] = Json::array({{{"registry_name", "unnormalizer_processor"},
                                {"config", {{"eps", 1e-8}, {"features", features}, {"norm_map", norm_map}}},
                                {"state_file", post_state}},
                               {{"registry_name", "device_processor"},
                                {"config", {{"device", "cpu"}, {"float_dtype", nullptr}}}}});
  write_file_atomically((dir / "policy_preprocessor.json").string(), pre.dump(2) + "\n");
  write_file_atomically((dir / "policy_postprocessor.json").string(), post.dump(2) + "\n");
  if (!tokenizer_json.empty()) write_file_atomically((dir / "tokenizer.json").string(), tokenizer_json);
}

LoadedCheckpoint load_checkpoint(const std::string& directory, const LoadOptions& options) {
  const fs::path dir(directory);
  require(fs::is_directory(dir), "checkpoint " + directory + ": not a directory");
  require(fs::exists(dir / "config.json"), "checkpoint " + directory + ": no config.json");
  require(fs::exists(dir / "model.safetensors"), "checkpoint " + directory + ": no model.safetensors");
  const SmolVLAConfig config = read_lerobot_config((dir / "config.json").string(), options.vlm_config);
  LoadedCheckpoint out;
  out.directory = directory;
  out.model = std::make_unique<SmolVLA>(config, options.precision, parse_device(options.device));
  out.report = load_weights(*out.model, (dir / "model.safetensors").string());
  out.stats = load_normalization(directory, options.stats_group);
  return out;
}

}  // namespace vlascope
