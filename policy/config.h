// The sizes and options of a SmolVLA model (smolvla.md §1–§5), as plain data.
//
// A LeRobot checkpoint describes itself in two files: the policy's `config.json` (SmolVLAConfig: chunk size,
// action steps, denoising steps, features, layer counts, width multiplier …) and the backbone's configuration
// (SmolVLM: vision and text sizes), which LeRobot fetches by `vlm_model_name`. vlascope knows SmolVLM2-500M's
// sizes as a preset and reads any other backbone from a SmolVLM `config.json`.
//
//   SmolVLAConfig c = read_lerobot_config("ckpt/config.json");   // backbone: preset, vlm_config.json or a path
//   c.expert_hidden();                                           // int(960 × 0.75) = 720
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

namespace vlascope {

struct VisionConfig {  // SigLIP-style encoder (SmolVLM's vision_config)
  int hidden = 768;
  int layers = 12;
  int heads = 12;
  int intermediate = 3072;
  int patch_size = 16;
  int image_size = 512;  // the encoder's position table covers (image_size / patch_size)² patches
  double layer_norm_eps = 1e-6;
  int patches_per_side() const { return image_size / patch_size; }
  int head_dim() const { return hidden / heads; }
};

struct TextConfig {  // SmolLM2-style Llama decoder (SmolVLM's text_config)
  int hidden = 960;
  int layers = 32;  // in the backbone; SmolVLA keeps the first num_vlm_layers
  int heads = 15;
  int kv_heads = 5;
  int head_dim = 64;
  int intermediate = 2560;
  int vocab_size = 49280;
  double rms_norm_eps = 1e-5;
  // The language head is the input embedding (SmolLM2-135M's choice; SmolVLM2-500M keeps a separate lm_head). Then a
  // value vector that writes a word's logit writes that word's input direction too: the logit lens and the words of
  // an instruction meet in one space. Checkpoints store lm_head as a copy of embed_tokens.
  bool tie_word_embeddings = false;
};

// One entry of LeRobot's input_features / output_features.
struct Feature {
  std::string key;             // "observation.state", "observation.images.camera1", "action"
  std::string type;            // "STATE", "VISUAL", "ACTION", "ENV"
  std::vector<int> shape;      // [6] or [3, H, W]
};

struct SmolVLAConfig {
  // Backbone (SmolVLM).
  std::string vlm_model_name = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct";
  VisionConfig vision;
  TextConfig text;
  int scale_factor = 4;  // pixel shuffle

  // SmolVLAConfig fields.
  int n_obs_steps = 1;
  int chunk_size = 50;
  int n_action_steps = 50;
  int max_state_dim = 32;
  int max_action_dim = 32;
  std::array<int, 2> resize_imgs_with_padding = {512, 512};  // width, height of the padded image; {0,0} = off
  int empty_cameras = 0;
  int tokenizer_max_length = 48;
  bool pad_language_to_max_length = false;  // "max_length" (smolvla_base) vs "longest"
  int num_steps = 10;
  bool use_cache = true;
  bool add_image_special_tokens = false;  // not supported (smolvla_base does not use it)
  std::string attention_mode = "cross_attn";
  int prefix_length = 0;
  int num_vlm_layers = 16;
  int num_expert_layers = 16;  // resolved: LeRobot's ≤ 0 means "as many as num_vlm_layers"
  int self_attn_every_n_layers = 2;
  double expert_width_multiplier = 0.75;
  double min_period = 4e-3, max_period = 4.0;

  // Features, in config order (the order of cameras in the prefix).
  std::vector<Feature> input_features, output_features;
  std::string normalization_visual = "IDENTITY", normalization_state = "MEAN_STD", normalization_action = "MEAN_STD";

  // Training (LeRobot's defaults).
  bool freeze_vision_encoder = true;
  bool train_expert_only = true;
  bool train_state_proj = true;
  double optimizer_lr = 1e-4;
  std::array<double, 2> optimizer_betas = {0.9, 0.95};
  double optimizer_eps = 1e-8;
  double optimizer_weight_decay = 1e-10;
  double optimizer_grad_clip_norm = 10;
  int scheduler_warmup_steps = 1000;
  int scheduler_decay_steps = 30000;
  double scheduler_decay_lr = 2.5e-6;

  // The config.json this came from, with every field vlascope does not interpret; written back unchanged.
  std::string extra_json = "{}";

  // Derived sizes.
  int expert_hidden() const { return static_cast<int>(text.hidden * expert_width_multiplier); }
  int expert_intermediate() const;  // LlamaMLP's round-up rule (smolvla.md §3.1)
  int tokens_per_image() const;     // (patches_per_side / scale_factor)²
  int image_grid() const { return vision.patches_per_side() / scale_factor; }
  int kv_width() const { return text.kv_heads * text.head_dim; }
  // Width and height of the padded model input the camera frames are resized to (resize_imgs_with_padding, or the
  // vision tower's own size when that is off).
  std::pair<int, int> input_image_size() const {
    return resize_imgs_with_padding[0] > 0 ? std::pair<int, int>{resize_imgs_with_padding[0], resize_imgs_with_padding[1]}
                                           : std::pair<int, int>{vision.image_size, vision.image_size};
  }
  int attention_width() const { return text.heads * text.head_dim; }
  // VLM layer i runs joint self-attention (true) or cross-attention (false).
  bool vlm_layer_is_self_attention(int layer) const;
  // The expert layer paired with VLM layer i, or −1 (the expert stream passes that layer unchanged).
  int expert_layer_at(int vlm_layer) const;
  // Expert layer j was rebuilt for cross-attention: its k/v projections read the VLM's K/V (kv_width wide).
  bool expert_layer_is_cross(int expert_layer) const;

  std::vector<std::string> camera_keys() const;  // VISUAL input features, config order
  int state_dim() const;                         // observation.state's size (0 when absent)
  int action_dim() const;                        // action's size

  // Throws Error naming `source` and the field if the sizes are inconsistent or unsupported.
  void validate(const std::string& source) const;
};

// smolvla_base: SmolVLM2-500M's first 16 layers, 16 expert layers, 3 cameras of 256², 6-dim state/action
// (500 tensors, 450,046,176 parameters).
SmolVLAConfig smolvla_base_config();
// vlascope's own small model (models/): the same architecture at a size that trains on 2 CPU cores in about an
// hour. Two 128² cameras (scene, wrist), 8×8 tokens each, a 6-layer VLM over a word-level vocabulary.
SmolVLAConfig smolvla_small_config(int vocab_size = 256);
// The geometry of shared/parity's LeRobot run (vision 64×2, text 128 wide, 4 of 6 layers, chunk 10, dims 8).
SmolVLAConfig smolvla_tiny_config();
// "base", "small" or "tiny"; Error otherwise.
SmolVLAConfig preset_config(const std::string& name);
// SmolVLM2-500M's backbone sizes (vision 768×12, text 960×32, vocab 49280).
void apply_smolvlm2_500m_backbone(SmolVLAConfig& config);

// Reads LeRobot's SmolVLA config.json. The backbone comes from, in order: `vlm_config_path` if given; a
// `vlm_config.json` beside config.json; `vlm_model_name` when it names SmolVLM2-500M-Video-Instruct; a directory
// at `vlm_model_name` holding a config.json. Anything else is an Error that says which file to supply.
SmolVLAConfig read_lerobot_config(const std::string& config_path, const std::string& vlm_config_path = "");
// Reads a SmolVLM config.json (vision_config, text_config, scale_factor) into `config`.
void read_vlm_config(const std::string& path, SmolVLAConfig& config);
void parse_vlm_config(const std::string& json_text, const std::string& source, SmolVLAConfig& config);

// Writes config.json in LeRobot's layout (and the backbone as vlm_config.json beside it).
std::string lerobot_config_json(const SmolVLAConfig& config);
std::string vlm_config_json(const SmolVLAConfig& config);
void write_lerobot_config(const std::string& directory, const SmolVLAConfig& config);

}  // namespace vlascope
