#include "policy/config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "common/error.h"
#include "common/file_io.h"
#include "common/json_io.h"

namespace vlascope {
namespace {

using Json = nlohmann::ordered_json;  // keeps input_features in file order (= camera order in the prefix)
namespace fs = std::filesystem;

const char* const kSmolVLM2Name = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct";

std::string read_text(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  require(in.good(), what + " " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}


// Whether a JSON number converts to the integer type I exactly: nlohmann's get<int>() of 4.8e84 (or of 1e10) is
// undefined behaviour, not an error (fuzz/fuzz_config found it). Non-numbers are left to get<>'s type error.
template <typename I>
bool fits_integer(const Json& v) {
  constexpr auto lo = std::numeric_limits<I>::min();
  constexpr auto hi = std::numeric_limits<I>::max();
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(hi);
  if (v.is_number_integer()) return v.get<int64_t>() >= static_cast<int64_t>(lo) && v.get<int64_t>() <= static_cast<int64_t>(hi);
  if (v.is_number_float()) {
    const double x = v.get<double>();
    return std::isfinite(x) && x == std::floor(x) && x >= static_cast<double>(lo) && x < static_cast<double>(hi);
  }
  return true;
}
template <typename T>
struct IntegerList : std::false_type {};
template <typename I>
struct IntegerList<std::vector<I>> : std::bool_constant<std::is_integral_v<I> && !std::is_same_v<I, bool>> {};

// Typed getters that name the file and the field on a type mismatch or an integer out of range; absent keys keep the
// default.
template <typename T>
void get(const Json& j, const char* key, T& out, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  bool fits = true;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) fits = fits_integer<T>(*it);
  if constexpr (IntegerList<T>::value)
    if (it->is_array())
      for (const Json& v : *it) fits = fits && fits_integer<typename T::value_type>(v);
  require(fits, source + ": field '" + key + "' is not an integer in range (" + it->dump() + ")");
  try {
    out = it->get<T>();
  } catch (const Json::exception&) {
    throw Error(source + ": field '" + key + "' has the wrong type (" + it->dump() + ")");
  }
}

std::vector<Feature> parse_features(const Json& j, const char* key, const std::string& source) {
  std::vector<Feature> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  require(it->is_object(), source + ": field '" + key + "' must be an object");
  for (const auto& [name, value] : it->items()) {
    Feature f;
    f.key = name;
    const std::string where = source + ": " + key + "." + name;
    require(value.is_object(), where + " must be an object");
    get(value, "type", f.type, where);
    get(value, "shape", f.shape, where);
    out.push_back(std::move(f));
  }
  return out;
}

Json features_json(const std::vector<Feature>& features) {
  Json j = Json::object();
  for (const Feature& f : features) j[f.key] = {{"type", f.type}, {"shape", f.shape}};
  return j;
}

}  // namespace

int SmolVLAConfig::expert_intermediate() const {
  // LeRobot's get_intermediate_size(hidden, ffn_dim_multiplier=4, multiple_of=256).
  int h = static_cast<int>(2.0 * expert_hidden() / 3.0);
  h = 4 * h;
  return 256 * ((h + 255) / 256);
}

int SmolVLAConfig::tokens_per_image() const { return image_grid() * image_grid(); }

bool SmolVLAConfig::vlm_layer_is_self_attention(int layer) const {
  if (attention_mode.find("cross") == std::string::npos) return true;
  return self_attn_every_n_layers > 0 && layer % self_attn_every_n_layers == 0;
}

int SmolVLAConfig::expert_layer_at(int vlm_layer) const {
  const int multiple_of = num_expert_layers > 0 ? num_vlm_layers / num_expert_layers : 0;
  if (multiple_of > 0 && vlm_layer > 0 && vlm_layer % multiple_of != 0) return -1;
  return multiple_of > 0 ? vlm_layer / multiple_of : vlm_layer;
}

bool SmolVLAConfig::expert_layer_is_cross(int expert_layer) const {
  if (attention_mode.find("cross") == std::string::npos) return false;
  return !(self_attn_every_n_layers > 0 && expert_layer % self_attn_every_n_layers == 0);
}

std::vector<std::string> SmolVLAConfig::camera_keys() const {
  std::vector<std::string> keys;
  for (const Feature& f : input_features)
    if (f.type == "VISUAL") keys.push_back(f.key);
  return keys;
}

int SmolVLAConfig::state_dim() const {
  for (const Feature& f : input_features)
    if (f.type == "STATE" && !f.shape.empty()) return f.shape[0];
  return 0;
}

int SmolVLAConfig::action_dim() const {
  for (const Feature& f : output_features)
    if (f.type == "ACTION" && !f.shape.empty()) return f.shape[0];
  return 0;
}

void SmolVLAConfig::validate(const std::string& source) const {
  auto check = [&](bool ok, const std::string& what) { require(ok, source + ": " + what); };
  check(vision.hidden > 0 && vision.layers >= 0 && vision.heads > 0 && vision.hidden % vision.heads == 0,
        "vision_config: hidden_size must be a positive multiple of num_attention_heads");
  check(vision.patch_size > 0 && vision.image_size % vision.patch_size == 0,
        "vision_config: image_size must be a multiple of patch_size");
  check(scale_factor > 0 && vision.patches_per_side() % scale_factor == 0,
        "scale_factor " + std::to_string(scale_factor) + " must divide the " +
            std::to_string(vision.patches_per_side()) + " patches per side");
  check(text.hidden > 0 && text.heads > 0 && text.kv_heads > 0 && text.heads % text.kv_heads == 0,
        "text_config: num_attention_heads must be a multiple of num_key_value_heads");
  check(text.head_dim > 0 && text.head_dim % 2 == 0, "text_config: head_dim must be even (RoPE)");
  check(text.vocab_size > 0 && text.intermediate > 0, "text_config: vocab_size and intermediate_size must be > 0");
  check(num_vlm_layers > 0 && num_vlm_layers <= text.layers,
        "num_vlm_layers " + std::to_string(num_vlm_layers) + " must be in 1…" + std::to_string(text.layers));
  check(num_expert_layers > 0 && num_vlm_layers % num_expert_layers == 0,
        "num_vlm_layers must be a multiple of num_expert_layers");
  check(expert_hidden() > 0 && expert_hidden() % 2 == 0, "expert_width_multiplier gives an invalid expert width");
  check(chunk_size > 0 && n_action_steps > 0 && n_action_steps <= chunk_size,
        "n_action_steps must be in 1…chunk_size");
  check(num_steps > 0, "num_steps must be > 0");
  check(max_state_dim > 0 && max_action_dim > 0, "max_state_dim and max_action_dim must be > 0");
  check(state_dim() <= max_state_dim, "observation.state is wider than max_state_dim");
  check(action_dim() <= max_action_dim, "action is wider than max_action_dim");
  check(!add_image_special_tokens, "add_image_special_tokens = true is not supported");
  check(empty_cameras >= 0, "empty_cameras must be ≥ 0");
  check(attention_mode == "cross_attn" || attention_mode == "self_attn",
        "attention_mode '" + attention_mode + "' is not supported (cross_attn or self_attn)");
  check(n_obs_steps == 1, "n_obs_steps must be 1");
  // LeRobot decides the attention path by the VLM layer index and rebuilds k/v by the expert layer index; a
  // configuration where the two disagree fails in LeRobot too.
  for (int i = 0; i < num_vlm_layers; ++i) {
    const int j = expert_layer_at(i);
    if (j < 0) continue;
    check(vlm_layer_is_self_attention(i) != expert_layer_is_cross(j),
          "VLM layer " + std::to_string(i) + " and its expert layer " + std::to_string(j) +
              " disagree on self- vs cross-attention (unsupported layer pairing)");
  }
}

SmolVLAConfig smolvla_base_config() {
  SmolVLAConfig c;
  apply_smolvlm2_500m_backbone(c);
  c.pad_language_to_max_length = true;
  c.input_features = {{"observation.state", "STATE", {6}},
                      {"observation.images.camera1", "VISUAL", {3, 256, 256}},
                      {"observation.images.camera2", "VISUAL", {3, 256, 256}},
                      {"observation.images.camera3", "VISUAL", {3, 256, 256}}};
  c.output_features = {{"action", "ACTION", {6}}};
  return c;
}

SmolVLAConfig smolvla_small_config(int vocab_size) {
  SmolVLAConfig c;
  c.vlm_model_name = "vlascope/smolvlm-small";
  c.vision = VisionConfig{128, 4, 4, 512, 16, 128, 1e-6};  // 8×8 patches of 16 px
  c.text = TextConfig{192, 6, 3, 1, 64, 512, vocab_size, 1e-5};
  c.scale_factor = 1;  // → 8×8 tokens per camera
  c.num_vlm_layers = c.num_expert_layers = 6;
  c.chunk_size = 30;
  c.n_action_steps = 10;
  c.max_state_dim = c.max_action_dim = 6;
  c.resize_imgs_with_padding = {128, 128};
  c.tokenizer_max_length = 24;
  c.pad_language_to_max_length = false;
  c.input_features = {{"observation.state", "STATE", {6}},
                      {"observation.images.scene", "VISUAL", {3, 128, 128}},
                      {"observation.images.wrist", "VISUAL", {3, 128, 128}}};
  c.output_features = {{"action", "ACTION", {6}}};
  return c;
}

SmolVLAConfig smolvla_tiny_config() {
  SmolVLAConfig c;
  c.vlm_model_name = "parity/tiny";
  c.vision = VisionConfig{64, 2, 4, 128, 16, 64, 1e-6};
  c.text = TextConfig{128, 6, 4, 2, 32, 256, 256, 1e-5};
  c.scale_factor = 2;
  c.num_vlm_layers = c.num_expert_layers = 4;
  c.chunk_size = c.n_action_steps = 10;
  c.max_state_dim = c.max_action_dim = 8;
  return c;
}

SmolVLAConfig preset_config(const std::string& name) {
  if (name == "base") return smolvla_base_config();
  if (name == "small") return smolvla_small_config();
  if (name == "tiny") return smolvla_tiny_config();
  throw Error("unknown preset '" + name + "' (expected base, small or tiny)");
}

void apply_smolvlm2_500m_backbone(SmolVLAConfig& c) {
  c.vlm_model_name = kSmolVLM2Name;
  c.vision = VisionConfig{};
  c.text = TextConfig{};
  c.scale_factor = 4;
}

void parse_vlm_config(const std::string& json_text, const std::string& source, SmolVLAConfig& c) {
  const Json j = parse_json_object(json_text, source);
  // Absent keys take the defaults of transformers' SmolVLMVisionConfig / LlamaConfig, as AutoConfig would.
  VisionConfig v{1152, 12, 16, 3072, 32, 224, 1e-6};
  TextConfig t{4096, 32, 32, 0, 0, 11008, 32000, 1e-5};
  int scale = 2;
  get(j, "scale_factor", scale, source);
  get(j, "tie_word_embeddings", t.tie_word_embeddings, source);  // the top level's: it ties the model's lm_head
  if (auto it = j.find("vision_config"); it != j.end() && it->is_object()) {
    const std::string where = source + ": vision_config";
    get(*it, "hidden_size", v.hidden, where);
    get(*it, "num_hidden_layers", v.layers, where);
    get(*it, "num_attention_heads", v.heads, where);
    get(*it, "intermediate_size", v.intermediate, where);
    get(*it, "patch_size", v.patch_size, where);
    get(*it, "image_size", v.image_size, where);
    get(*it, "layer_norm_eps", v.layer_norm_eps, where);
    std::string act = "gelu_pytorch_tanh";
    get(*it, "hidden_act", act, where);
    require(act == "gelu_pytorch_tanh", where + ": hidden_act '" + act + "' is not supported");
  }
  if (auto it = j.find("text_config"); it != j.end() && it->is_object()) {
    const std::string where = source + ": text_config";
    get(*it, "hidden_size", t.hidden, where);
    get(*it, "num_hidden_layers", t.layers, where);
    get(*it, "num_attention_heads", t.heads, where);
    get(*it, "num_key_value_heads", t.kv_heads, where);
    get(*it, "head_dim", t.head_dim, where);
    get(*it, "intermediate_size", t.intermediate, where);
    get(*it, "vocab_size", t.vocab_size, where);
    get(*it, "rms_norm_eps", t.rms_norm_eps, where);
    std::string act = "silu";
    get(*it, "hidden_act", act, where);
    require(act == "silu", where + ": hidden_act '" + act + "' is not supported");
    bool bias = false;
    get(*it, "attention_bias", bias, where);
    require(!bias, where + ": attention_bias = true is not supported");
    get(*it, "mlp_bias", bias, where);
    require(!bias, where + ": mlp_bias = true is not supported");
  }
  if (t.kv_heads <= 0) t.kv_heads = t.heads;
  if (t.head_dim <= 0) t.head_dim = t.hidden / t.heads;
  c.vision = v;
  c.text = t;
  c.scale_factor = scale;
}

void read_vlm_config(const std::string& path, SmolVLAConfig& config) {
  parse_vlm_config(read_text(path, "backbone config"), path, config);
}

SmolVLAConfig read_lerobot_config(const std::string& config_path, const std::string& vlm_config_path) {
  const std::string source = config_path;
  const Json j = parse_json_object(read_text(config_path, "SmolVLA config"), source);
  if (auto it = j.find("type"); it != j.end() && it->is_string())
    require(*it == "smolvla", source + ": type is '" + it->get<std::string>() + "', not 'smolvla'");

  SmolVLAConfig c;
  get(j, "vlm_model_name", c.vlm_model_name, source);
  get(j, "n_obs_steps", c.n_obs_steps, source);
  get(j, "chunk_size", c.chunk_size, source);
  get(j, "n_action_steps", c.n_action_steps, source);
  get(j, "max_state_dim", c.max_state_dim, source);
  get(j, "max_action_dim", c.max_action_dim, source);
  if (auto it = j.find("resize_imgs_with_padding"); it != j.end()) {
    if (it->is_null()) {
      c.resize_imgs_with_padding = {0, 0};
    } else {
      std::vector<int> hw;
      get(j, "resize_imgs_with_padding", hw, source);
      require(hw.size() == 2, source + ": resize_imgs_with_padding must be [width, height] or null");
      c.resize_imgs_with_padding = {hw[0], hw[1]};
    }
  }
  get(j, "empty_cameras", c.empty_cameras, source);
  get(j, "tokenizer_max_length", c.tokenizer_max_length, source);
  std::string pad_to = "longest";
  get(j, "pad_language_to", pad_to, source);
  require(pad_to == "longest" || pad_to == "max_length",
          source + ": pad_language_to '" + pad_to + "' (expected longest or max_length)");
  c.pad_language_to_max_length = pad_to == "max_length";
  get(j, "num_steps", c.num_steps, source);
  get(j, "use_cache", c.use_cache, source);
  get(j, "add_image_special_tokens", c.add_image_special_tokens, source);
  get(j, "attention_mode", c.attention_mode, source);
  get(j, "prefix_length", c.prefix_length, source);
  get(j, "num_vlm_layers", c.num_vlm_layers, source);
  int expert_layers = 0;
  get(j, "num_expert_layers", expert_layers, source);
  c.num_expert_layers = expert_layers > 0 ? expert_layers : c.num_vlm_layers;
  get(j, "self_attn_every_n_layers", c.self_attn_every_n_layers, source);
  get(j, "expert_width_multiplier", c.expert_width_multiplier, source);
  get(j, "min_period", c.min_period, source);
  get(j, "max_period", c.max_period, source);
  get(j, "freeze_vision_encoder", c.freeze_vision_encoder, source);
  get(j, "train_expert_only", c.train_expert_only, source);
  get(j, "train_state_proj", c.train_state_proj, source);
  get(j, "optimizer_lr", c.optimizer_lr, source);
  std::vector<double> betas;
  get(j, "optimizer_betas", betas, source);
  if (!betas.empty()) {
    require(betas.size() == 2, source + ": optimizer_betas must have two values");
    c.optimizer_betas = {betas[0], betas[1]};
  }
  get(j, "optimizer_eps", c.optimizer_eps, source);
  get(j, "optimizer_weight_decay", c.optimizer_weight_decay, source);
  get(j, "optimizer_grad_clip_norm", c.optimizer_grad_clip_norm, source);
  get(j, "scheduler_warmup_steps", c.scheduler_warmup_steps, source);
  get(j, "scheduler_decay_steps", c.scheduler_decay_steps, source);
  get(j, "scheduler_decay_lr", c.scheduler_decay_lr, source);
  c.input_features = parse_features(j, "input_features", source);
  c.output_features = parse_features(j, "output_features", source);
  if (auto it = j.find("normalization_mapping"); it != j.end() && it->is_object()) {
    get(*it, "VISUAL", c.normalization_visual, source + ": normalization_mapping");
    get(*it, "STATE", c.normalization_state, source + ": normalization_mapping");
    get(*it, "ACTION", c.normalization_action, source + ": normalization_mapping");
  }
  c.extra_json = j.dump();

  // The backbone.
  const fs::path beside = fs::path(config_path).parent_path() / "vlm_config.json";
  if (!vlm_config_path.empty()) {
    read_vlm_config(vlm_config_path, c);
  } else if (fs::exists(beside)) {
    read_vlm_config(beside.string(), c);
  } else if (c.vlm_model_name == kSmolVLM2Name) {
    apply_smolvlm2_500m_backbone(c);
  } else if (fs::exists(fs::path(c.vlm_model_name) / "config.json")) {
    read_vlm_config((fs::path(c.vlm_model_name) / "config.json").string(), c);
  } else {
    throw Error(source + ": vlm_model_name '" + c.vlm_model_name +
                "' is not SmolVLM2-500M and no backbone config was found; give its config.json "
                "(--vlm-config) or put it beside config.json as vlm_config.json");
  }
  if (c.num_vlm_layers <= 0) c.num_vlm_layers = c.text.layers;
  if (c.num_expert_layers <= 0) c.num_expert_layers = c.num_vlm_layers;
  c.validate(source);
  return c;
}

std::string lerobot_config_json(const SmolVLAConfig& c) {
  Json j = parse_json_object(c.extra_json.empty() ? "{}" : c.extra_json, "config");
  j["type"] = "smolvla";
  j["n_obs_steps"] = c.n_obs_steps;
  j["input_features"] = features_json(c.input_features);
  j["output_features"] = features_json(c.output_features);
  j["normalization_mapping"] = {
      {"VISUAL", c.normalization_visual}, {"STATE", c.normalization_state}, {"ACTION", c.normalization_action}};
  j["chunk_size"] = c.chunk_size;
  j["n_action_steps"] = c.n_action_steps;
  j["max_state_dim"] = c.max_state_dim;
  j["max_action_dim"] = c.max_action_dim;
  if (c.resize_imgs_with_padding[0] > 0)
    j["resize_imgs_with_padding"] = {c.resize_imgs_with_padding[0], c.resize_imgs_with_padding[1]};
  else
    j["resize_imgs_with_padding"] = nullptr;
  j["empty_cameras"] = c.empty_cameras;
  j["tokenizer_max_length"] = c.tokenizer_max_length;
  j["num_steps"] = c.num_steps;
  j["use_cache"] = c.use_cache;
  j["freeze_vision_encoder"] = c.freeze_vision_encoder;
  j["train_expert_only"] = c.train_expert_only;
  j["train_state_proj"] = c.train_state_proj;
  j["optimizer_lr"] = c.optimizer_lr;
  j["optimizer_betas"] = {c.optimizer_betas[0], c.optimizer_betas[1]};
  j["optimizer_eps"] = c.optimizer_eps;
  j["optimizer_weight_decay"] = c.optimizer_weight_decay;
  j["optimizer_grad_clip_norm"] = c.optimizer_grad_clip_norm;
  j["scheduler_warmup_steps"] = c.scheduler_warmup_steps;
  j["scheduler_decay_steps"] = c.scheduler_decay_steps;
  j["scheduler_decay_lr"] = c.scheduler_decay_lr;
  j["vlm_model_name"] = c.vlm_model_name;
  j["add_image_special_tokens"] = c.add_image_special_tokens;
  j["attention_mode"] = c.attention_mode;
  j["prefix_length"] = c.prefix_length;
  j["pad_language_to"] = c.pad_language_to_max_length ? "max_length" : "longest";
  j["num_expert_layers"] = c.num_expert_layers == c.num_vlm_layers ? 0 : c.num_expert_layers;
  j["num_vlm_layers"] = c.num_vlm_layers;
  j["self_attn_every_n_layers"] = c.self_attn_every_n_layers;
  j["expert_width_multiplier"] = c.expert_width_multiplier;
  j["min_period"] = c.min_period;
  j["max_period"] = c.max_period;
  return j.dump(4);
}

std::string vlm_config_json(const SmolVLAConfig& c) {
  Json j;
  j["architectures"] = {"SmolVLMForConditionalGeneration"};
  j["model_type"] = "smolvlm";
  j["scale_factor"] = c.scale_factor;
  j["tie_word_embeddings"] = c.text.tie_word_embeddings;
  j["vocab_size"] = c.text.vocab_size;
  j["vision_config"] = {{"model_type", "smolvlm_vision"},
                        {"hidden_size", c.vision.hidden},
                        {"num_hidden_layers", c.vision.layers},
                        {"num_attention_heads", c.vision.heads},
                        {"intermediate_size", c.vision.intermediate},
                        {"patch_size", c.vision.patch_size},
                        {"image_size", c.vision.image_size},
                        {"layer_norm_eps", c.vision.layer_norm_eps},
                        {"hidden_act", "gelu_pytorch_tanh"}};
  j["text_config"] = {{"model_type", "llama"},
                      {"hidden_size", c.text.hidden},
                      {"num_hidden_layers", c.text.layers},
                      {"num_attention_heads", c.text.heads},
                      {"num_key_value_heads", c.text.kv_heads},
                      {"head_dim", c.text.head_dim},
                      {"intermediate_size", c.text.intermediate},
                      {"vocab_size", c.text.vocab_size},
                      {"rms_norm_eps", c.text.rms_norm_eps},
                      {"hidden_act", "silu"},
                      {"tie_word_embeddings", c.text.tie_word_embeddings}};
  return j.dump(4);
}

void write_lerobot_config(const std::string& directory, const SmolVLAConfig& config) {
  fs::create_directories(directory);
  auto write = [&](const std::string& name, const std::string& text) {
    write_file_atomically((fs::path(directory) / name).string(), text + "\n");
  };
  write("config.json", lerobot_config_json(config));
  if (config.vlm_model_name != kSmolVLM2Name) write("vlm_config.json", vlm_config_json(config));
}

}  // namespace vlascope
