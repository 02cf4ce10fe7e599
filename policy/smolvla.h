// SmolVLA in libtorch, exactly as LeRobot defines it (shared/docs/smolvla.md is the specification).
//
// The model is plain data (SmolVLAWeights: one tensor per checkpoint entry) plus functions that read top to
// bottom like the Python reference:
//
//   embed_prefix   images → SigLIP tower → pixel shuffle → connector (×√D) | words (×√D) | state_proj(state)
//   run_prefix     the VLM stream alone through every layer, keeping each layer's post-RoPE K and V
//   denoise_step   the expert stream alone: joint attention over [cached prefix ; actions] on self-attention
//                  layers, cross-attention to the (expert-re-projected) prefix K/V on the others
//   sample_actions Euler integration from t = 1 (noise) to t = 0 in num_steps steps
//   flow_loss      the training forward: prefix and suffix together, no cache, elementwise MSE to noise − actions
//
// Every attention computes its probabilities explicitly and every layer exposes the named points of
// policy/hooks.h, so capture, ablation and steering use the forward pass itself, never a copy of it.
//
// Shapes: B batch, Lp prefix length, T chunk_size, D VLM width, De expert width, H query heads, Hkv KV heads,
// hd head_dim, A max_action_dim, S max_state_dim.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "policy/config.h"
#include "policy/hooks.h"

namespace vlascope {

// kFloat32: every tensor fp32 (LeRobot's parity runs). kBFloat16: LeRobot's own run-time precision (smolvla.md
// §7.4): the vision tower, connector, text model and expert in bf16, the five projections and the re-created
// cross-attention k/v in fp32; norms, RoPE, attention logits and softmax in fp32.
enum class Precision : int8_t { kFloat32, kBFloat16 };
const char* precision_name(Precision precision);
Precision parse_precision(const std::string& name);  // "fp32" / "float32", "bf16" / "bfloat16"

struct Linear {
  torch::Tensor weight;    // [out, in]
  torch::Tensor bias;      // [out] or undefined
  torch::Tensor weight_t;  // inference cache: weight.t().contiguous() [in, out], or undefined (see pack_for_inference)
};
struct Norm {
  torch::Tensor weight;  // [D]
  torch::Tensor bias;    // LayerNorm only
};
struct VisionLayer {
  Norm ln1, ln2;
  Linear q, k, v, o, fc1, fc2;
  Linear qkv;  // inference cache (pack_for_inference): q|k|v as one matmul; not a checkpoint tensor
};
struct DecoderLayer {  // Llama: RMSNorm, GQA attention, SwiGLU MLP, no biases
  Norm input_norm, post_norm;
  Linear q, k, v, o;  // expert cross layers: k, v are [Hkv·hd, Hkv·hd] and read the VLM's K/V
  Linear gate, up, down;
  // Inference cache (pack_for_inference, expert layers): the q|k|v and gate|up projections as one Linear each,
  // so each is one matmul per denoising step instead of three or two. Not checkpoint tensors; undefined otherwise.
  Linear qkv, gate_up;
};

struct SmolVLAWeights {
  torch::Tensor patch_embedding_w, patch_embedding_b;  // [Dv, 3, p, p], [Dv]
  torch::Tensor position_embedding;                    // [(image/p)², Dv]
  std::vector<VisionLayer> vision_layers;
  Norm vision_post_norm;
  Linear connector;                // [D, Dv·s²], no bias
  torch::Tensor embed_tokens;      // [vocab, D]
  std::vector<DecoderLayer> vlm_layers;  // the first num_vlm_layers text layers
  Norm vlm_norm;
  Linear lm_head;                  // [vocab, D]; never used for actions
  std::vector<DecoderLayer> expert_layers;
  Norm expert_norm;
  Linear state_proj, action_in_proj, action_out_proj, action_time_mlp_in, action_time_mlp_out;
};

// Which part of the model a checkpoint tensor belongs to (for freezing, counting and dtypes).
enum class WeightGroup : int8_t { kVision, kConnector, kEmbedTokens, kVlm, kLmHead, kExpert, kProjection };
const char* weight_group_name(WeightGroup group);

struct WeightEntry {
  std::string key;              // LeRobot checkpoint key, "model.vlm_with_expert…"
  torch::Tensor* tensor;        // into SmolVLAWeights
  std::vector<int64_t> shape;
  WeightGroup group;
  bool lerobot_bf16;            // stored and run in bf16 by LeRobot (smolvla.md §7.3)
  enum Init : int8_t { kNormal, kZeros, kOnes, kTorchLinear, kTorchLinearBias } init;
  int64_t fan_in;               // for kTorchLinear*
};
// The one list of every tensor: loading, saving, initialisation, counting and optimiser groups all walk it.
std::vector<WeightEntry> weight_table(const SmolVLAConfig& config, SmolVLAWeights& weights);
int64_t parameter_count(const SmolVLAConfig& config);

// Inputs of one forward pass, already preprocessed the LeRobot way (policy/policy.h does that).
struct ModelInputs {
  std::vector<torch::Tensor> images;       // per camera: [B, 3, H, W] in [-1, 1] (resized with padding)
  std::vector<torch::Tensor> image_masks;  // per camera: [B] bool
  torch::Tensor lang_tokens;               // [B, L] int64
  torch::Tensor lang_masks;                // [B, L] bool
  torch::Tensor state;                     // [B, S] normalised, zero-padded
};

struct Prefix {
  torch::Tensor embs;       // [B, Lp, D]
  torch::Tensor pad_masks;  // [B, Lp] bool: valid token
  torch::Tensor att_masks;  // [B, Lp] bool: the autoregressive flags of make_att_2d_masks (state = 1)
  std::vector<torch::Tensor> image_embeddings;  // per camera: connector output before ×√D, [B, tokens, D]
  int words_begin = -1, state_index = -1;       // [images | words | state]: the first word's and the state's row
  int words_end = -1;  // one past the last real (not padding) word row of batch element 0: inference calls share one
                       // task, so it holds for every element there
};

// What run_prefix leaves for the denoising loop.
struct PrefixCache {
  torch::Tensor pad_masks;                 // [B, Lp] bool
  torch::Tensor valid_count;               // [B, 1] int64: valid prefix tokens (= first action position)
  std::vector<torch::Tensor> keys, values;  // per VLM layer: [B, Lp, Hkv, hd], post-RoPE K and V
  std::vector<torch::Tensor> cross_keys, cross_values;  // per VLM cross layer: expert k/v_proj of them,
                                                         // [B, Lp, Hkv, hd] (constant over the denoising loop)
  // The rest of what every denoising step shares, built once by run_prefix: which [prefix ; actions] keys the
  // action rows may not see ([B, 1, T, Lp + T], true = blocked), and the RoPE tables (cos | sin halves, as
  // [B, T, 1, hd] fp32) of the action positions (joint layers) and of 0…T−1 (cross-attention queries).
  torch::Tensor action_blocked;
  torch::Tensor action_rope_cos, action_rope_sin, cross_rope_cos, cross_rope_sin;
};

class SmolVLA {
 public:
  // An uninitialised model of the configured sizes (all tensors allocated, contents undefined until
  // init_random or a checkpoint fills them).
  SmolVLA(const SmolVLAConfig& config, Precision precision = Precision::kFloat32,
          torch::Device device = torch::kCPU);

  const SmolVLAConfig& config() const { return config_; }
  Precision precision() const { return precision_; }
  torch::Device device() const { return device_; }
  const SmolVLAWeights& weights() const { return weights_; }
  // The language head's matrix [vocab, D]: embed_tokens when the config ties them, else lm_head. Everything that
  // reads words out of the residual stream (captions, the logit lens) goes through it.
  const torch::Tensor& output_embedding() const {
    return config_.text.tie_word_embeddings ? weights_.embed_tokens : weights_.lm_head.weight;
  }
  // Mutable access drops the inference cache (pack_for_inference), which would otherwise go stale.
  SmolVLAWeights& mutable_weights() {
    unpack();
    return weights_;
  }
  std::vector<WeightEntry> weight_table() {
    unpack();
    return vlascope::weight_table(config_, weights_);
  }
  // Keeps a [in, out] copy of the weights that multiply the T action tokens (the expert and the action/time
  // projections): OpenBLAS multiplies a few rows by a pre-transposed matrix 1.5–2× faster than by weight.t().
  // Also fuses projections of one input into one matmul (vision and expert q|k|v, expert gate|up).
  // Policy does this after loading; mutable access to the weights undoes it.
  void pack_for_inference();
  void unpack();
  bool packed() const { return packed_; }
  Hooks& hooks() { return hooks_; }
  const Hooks& hooks() const { return hooks_; }
  // The dtype a tensor of this entry has in this model.
  torch::ScalarType dtype_of(const WeightEntry& entry) const;

  // Intra-op threads of sample_actions' two phases: 0 = whatever libtorch has, −1 = by size (libtorch's thread count
  // for a phase of at least 1 GFLOP, else one: below that, OpenMP fork/join costs more than a second core gives; the
  // tiny parity model's chunk takes 9 ms on one thread and 15 ms on two).
  struct Threads {
    int prefix = -1;
    int denoise = -1;
  };
  void set_threads(Threads threads) { threads_ = threads; }
  Threads threads() const { return threads_; }
  // The threads sample_actions gives each phase of a call on these inputs: the setting above resolved for the call's
  // whole batch under libtorch's current thread count (without the cache both phases run on the prefix's).
  Threads call_threads(const ModelInputs& inputs, bool use_cache = true) const;

  // Fills every tensor: Llama/SigLIP-style N(0, 0.02) for the backbone and expert, ones/zeros for norms and
  // biases, PyTorch's Linear default for the projections and re-created cross k/v (as LeRobot builds them).
  void init_random(uint64_t seed);
  // Converts every tensor to `precision` (and `device`).
  void to(Precision precision, torch::Device device);

  // ---- The forward pass, stage by stage ----
  // images [N, 3, H, W] → connector output [N, tokens, D] (before ×√D).
  torch::Tensor embed_images(const torch::Tensor& images) const;
  Prefix embed_prefix(const ModelInputs& inputs) const;
  PrefixCache run_prefix(const Prefix& prefix) const;
  // One velocity evaluation v(x_t, t) from the cache: x_t [B, T, A], t [B] → [B, T, A] fp32.
  torch::Tensor denoise_step(const PrefixCache& cache, const torch::Tensor& x_t, const torch::Tensor& t,
                             int step = -1) const;
  // The same velocity without a cache: prefix and suffix run together through every layer (the training path).
  torch::Tensor velocity_uncached(const Prefix& prefix, const torch::Tensor& x_t, const torch::Tensor& t,
                                  int step = -1) const;
  // Euler integration (smolvla.md §5.3). noise [B, T, A]. Returns normalised actions [B, T, A] (padded dims too).
  torch::Tensor sample_actions(const ModelInputs& inputs, const torch::Tensor& noise, bool use_cache = true) const;
  // The training forward: elementwise squared error between v(x_t, t) and noise − actions, [B, T, A].
  torch::Tensor flow_loss(const ModelInputs& inputs, const torch::Tensor& actions, const torch::Tensor& noise,
                          const torch::Tensor& time) const;

  // ---- The VLM as a language model (vlascope's captioning pre-training) ----
  // [images | tokens] through the VLM with image tokens bidirectional and words causal, then the final norm and
  // lm_head at every word position: logits [B, L, vocab].
  torch::Tensor caption_logits(const std::vector<torch::Tensor>& images, const std::vector<torch::Tensor>& masks,
                               const torch::Tensor& tokens, const torch::Tensor& token_masks) const;

  // Sinusoidal time embedding (smolvla.md §5.1), t [B] → [B, De] fp32.
  torch::Tensor time_embedding(const torch::Tensor& t) const;
  torch::Tensor embed_suffix(const torch::Tensor& x_t, const torch::Tensor& t) const;  // [B, T, De]

 private:
  struct Stream;
  // The shared layer loop: runs whichever streams are given through every layer. `cache` is filled (prefix
  // pass), read (denoising) or absent (training).
  // `blocked` [B, 1, rows, cols]: true where a query row may not see a key (the negated attention mask).
  void run_layers(Stream* prefix, Stream* suffix, const torch::Tensor& blocked, PrefixCache* fill_cache,
                  const PrefixCache* read_cache, const HookContext& context, bool need_prefix_output) const;
  void finish_layer(Stream& stream, const DecoderLayer& layer, int layer_index, torch::Tensor attn,
                    const HookContext& context) const;
  torch::Tensor vision_tower(const torch::Tensor& images) const;

  SmolVLAConfig config_;
  Precision precision_;
  torch::Device device_;
  SmolVLAWeights weights_;
  Hooks hooks_;
  Threads threads_;
  bool packed_ = false;
};

// Multiply-adds ×2 of one action chunk: the prefix pass (vision, connector, VLM; the last layer only projects K/V)
// and the whole denoising loop, for `cameras` images of image_size² and `words` language tokens.
struct ChunkFlops {
  double prefix = 0, denoise = 0;
};
ChunkFlops chunk_flops(const SmolVLAConfig& config, int cameras, int image_size, int words);
// The threads a phase of `flops` runs on under a SmolVLA::Threads setting (0 = libtorch's current count; −1 = that
// count from 1 GFLOP on, else one).
int phase_threads(int setting, double flops);

// ---- Building blocks (exposed for tests) ----
torch::Tensor linear(const torch::Tensor& x, const Linear& l);  // casts x to the weight's dtype first
torch::Tensor rms_norm(const torch::Tensor& x, const Norm& n, double eps);
// apply_rope of smolvla.md §3.4: x [B, L, heads, hd], positions [B, L] int64; base 10000, half-split.
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions);
// big_vision's mask rule: key k visible to query q iff cumsum(att)[k] ≤ cumsum(att)[q] and both are valid.
torch::Tensor make_att_2d_masks(const torch::Tensor& pad_masks, const torch::Tensor& att_masks);
// HF SmolVLM's connector reshuffle: [N, P, Dv] → [N, P / s², Dv·s²].
torch::Tensor pixel_shuffle(const torch::Tensor& x, int scale_factor);
// SmolVLM's bucketised position ids for a gh × gw patch grid on a table of `per_side`² positions.
torch::Tensor vision_position_ids(int grid_h, int grid_w, int per_side);

}  // namespace vlascope
