#include "policy/smolvla.h"

#include <omp.h>

#include <cmath>
#include <functional>
#include <limits>
#include <thread>

#include "common/error.h"
#include "common/file_io.h"

namespace vlascope {

using torch::indexing::Slice;
namespace F = torch::nn::functional;

const char* precision_name(Precision precision) { return precision == Precision::kFloat32 ? "fp32" : "bf16"; }

Precision parse_precision(const std::string& name) {
  if (name == "fp32" || name == "float32") return Precision::kFloat32;
  if (name == "bf16" || name == "bfloat16") return Precision::kBFloat16;
  throw Error("unknown precision '" + name + "' (expected fp32 or bf16)");
}

const char* weight_group_name(WeightGroup group) {
  switch (group) {
    case WeightGroup::kVision: return "vision";
    case WeightGroup::kConnector: return "connector";
    case WeightGroup::kEmbedTokens: return "embed_tokens";
    case WeightGroup::kVlm: return "vlm";
    case WeightGroup::kLmHead: return "lm_head";
    case WeightGroup::kExpert: return "expert";
    case WeightGroup::kProjection: return "projection";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------------------------
// The weight table
// ---------------------------------------------------------------------------------------------------------------

std::vector<WeightEntry> weight_table(const SmolVLAConfig& c, SmolVLAWeights& w) {
  std::vector<WeightEntry> t;
  auto add = [&](std::string key, torch::Tensor& tensor, std::vector<int64_t> shape, WeightGroup group, bool bf16,
                 WeightEntry::Init init, int64_t fan_in = 0) {
    t.push_back({std::move(key), &tensor, std::move(shape), group, bf16, init, fan_in});
  };
  const int64_t dv = c.vision.hidden, iv = c.vision.intermediate, p = c.vision.patch_size;
  const int64_t d = c.text.hidden, it = c.text.intermediate, vocab = c.text.vocab_size;
  const int64_t de = c.expert_hidden(), ie = c.expert_intermediate();
  const int64_t qw = c.attention_width(), kvw = c.kv_width();
  const int64_t s2 = static_cast<int64_t>(c.scale_factor) * c.scale_factor;
  const int64_t positions = static_cast<int64_t>(c.vision.patches_per_side()) * c.vision.patches_per_side();
  using I = WeightEntry;

  const std::string vm = "model.vlm_with_expert.vlm.model.vision_model.";
  add(vm + "embeddings.patch_embedding.weight", w.patch_embedding_w, {dv, 3, p, p}, WeightGroup::kVision, true,
      I::kNormal);
  add(vm + "embeddings.patch_embedding.bias", w.patch_embedding_b, {dv}, WeightGroup::kVision, true, I::kZeros);
  add(vm + "embeddings.position_embedding.weight", w.position_embedding, {positions, dv}, WeightGroup::kVision, true,
      I::kNormal);
  w.vision_layers.resize(c.vision.layers);
  for (int i = 0; i < c.vision.layers; ++i) {
    VisionLayer& l = w.vision_layers[i];
    const std::string k = vm + "encoder.layers." + std::to_string(i) + ".";
    auto lin = [&](const std::string& name, Linear& x, int64_t out, int64_t in) {
      add(k + name + ".weight", x.weight, {out, in}, WeightGroup::kVision, true, I::kNormal);
      add(k + name + ".bias", x.bias, {out}, WeightGroup::kVision, true, I::kZeros);
    };
    lin("self_attn.k_proj", l.k, dv, dv);
    lin("self_attn.v_proj", l.v, dv, dv);
    lin("self_attn.q_proj", l.q, dv, dv);
    lin("self_attn.out_proj", l.o, dv, dv);
    add(k + "layer_norm1.weight", l.ln1.weight, {dv}, WeightGroup::kVision, true, I::kOnes);
    add(k + "layer_norm1.bias", l.ln1.bias, {dv}, WeightGroup::kVision, true, I::kZeros);
    lin("mlp.fc1", l.fc1, iv, dv);
    lin("mlp.fc2", l.fc2, dv, iv);
    add(k + "layer_norm2.weight", l.ln2.weight, {dv}, WeightGroup::kVision, true, I::kOnes);
    add(k + "layer_norm2.bias", l.ln2.bias, {dv}, WeightGroup::kVision, true, I::kZeros);
  }
  add(vm + "post_layernorm.weight", w.vision_post_norm.weight, {dv}, WeightGroup::kVision, true, I::kOnes);
  add(vm + "post_layernorm.bias", w.vision_post_norm.bias, {dv}, WeightGroup::kVision, true, I::kZeros);
  add("model.vlm_with_expert.vlm.model.connector.modality_projection.proj.weight", w.connector.weight,
      {d, dv * s2}, WeightGroup::kConnector, true, I::kNormal);

  auto decoder = [&](const std::string& k, DecoderLayer& l, int64_t width, int64_t inter, bool cross,
                     WeightGroup group) {
    add(k + "self_attn.q_proj.weight", l.q.weight, {qw, width}, group, true, I::kNormal);
    // Re-created cross-attention k/v: nn.Linear(kv, kv, bias=False) after the bf16 model was built, so fp32.
    add(k + "self_attn.k_proj.weight", l.k.weight, {kvw, cross ? kvw : width}, group, !cross,
        cross ? I::kTorchLinear : I::kNormal, kvw);
    add(k + "self_attn.v_proj.weight", l.v.weight, {kvw, cross ? kvw : width}, group, !cross,
        cross ? I::kTorchLinear : I::kNormal, kvw);
    add(k + "self_attn.o_proj.weight", l.o.weight, {width, qw}, group, true, I::kNormal);
    add(k + "mlp.gate_proj.weight", l.gate.weight, {inter, width}, group, true, I::kNormal);
    add(k + "mlp.up_proj.weight", l.up.weight, {inter, width}, group, true, I::kNormal);
    add(k + "mlp.down_proj.weight", l.down.weight, {width, inter}, group, true, I::kNormal);
    add(k + "input_layernorm.weight", l.input_norm.weight, {width}, group, true, I::kOnes);
    add(k + "post_attention_layernorm.weight", l.post_norm.weight, {width}, group, true, I::kOnes);
  };
  const std::string tm = "model.vlm_with_expert.vlm.model.text_model.";
  add(tm + "embed_tokens.weight", w.embed_tokens, {vocab, d}, WeightGroup::kEmbedTokens, true, I::kNormal);
  w.vlm_layers.resize(c.num_vlm_layers);
  for (int i = 0; i < c.num_vlm_layers; ++i)
    decoder(tm + "layers." + std::to_string(i) + ".", w.vlm_layers[i], d, it, false, WeightGroup::kVlm);
  add(tm + "norm.weight", w.vlm_norm.weight, {d}, WeightGroup::kVlm, true, I::kOnes);
  add("model.vlm_with_expert.vlm.lm_head.weight", w.lm_head.weight, {vocab, d}, WeightGroup::kLmHead, true,
      I::kNormal);

  const std::string em = "model.vlm_with_expert.lm_expert.";
  w.expert_layers.resize(c.num_expert_layers);
  for (int j = 0; j < c.num_expert_layers; ++j)
    decoder(em + "layers." + std::to_string(j) + ".", w.expert_layers[j], de, ie, c.expert_layer_is_cross(j),
            WeightGroup::kExpert);
  add(em + "norm.weight", w.expert_norm.weight, {de}, WeightGroup::kExpert, true, I::kOnes);

  auto proj = [&](const std::string& name, Linear& x, int64_t out, int64_t in) {
    add("model." + name + ".weight", x.weight, {out, in}, WeightGroup::kProjection, false, I::kTorchLinear, in);
    add("model." + name + ".bias", x.bias, {out}, WeightGroup::kProjection, false, I::kTorchLinearBias, in);
  };
  proj("state_proj", w.state_proj, d, c.max_state_dim);
  proj("action_in_proj", w.action_in_proj, de, c.max_action_dim);
  proj("action_out_proj", w.action_out_proj, c.max_action_dim, de);
  proj("action_time_mlp_in", w.action_time_mlp_in, de, 2 * de);
  proj("action_time_mlp_out", w.action_time_mlp_out, de, de);
  return t;
}

int64_t parameter_count(const SmolVLAConfig& config) {
  SmolVLAWeights w;
  int64_t n = 0;
  for (const WeightEntry& e : weight_table(config, w)) {
    int64_t k = 1;
    for (int64_t s : e.shape) k *= s;
    n += k;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// The model object
// ---------------------------------------------------------------------------------------------------------------

SmolVLA::SmolVLA(const SmolVLAConfig& config, Precision precision, torch::Device device)
    : config_(config), precision_(precision), device_(device) {
  config_.validate("model configuration");
  for (WeightEntry& e : weight_table()) *e.tensor = torch::empty(e.shape, torch::dtype(dtype_of(e)).device(device_));
}

torch::ScalarType SmolVLA::dtype_of(const WeightEntry& entry) const {
  return precision_ == Precision::kBFloat16 && entry.lerobot_bf16 ? torch::kBFloat16 : torch::kFloat32;
}

namespace {
// The seed of one tensor's random stream: splitmix64 of the run's seed mixed with an FNV-1a hash of the tensor's key.
uint64_t tensor_seed(uint64_t seed, const std::string& key) {
  uint64_t z = seed ^ fnv1a(key.data(), key.size());
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

// Every tensor draws from its own stream: with one stream for all, a larger vocabulary (embed_tokens comes early in
// the table) moved every later draw, so the action expert of two recipes that differed only in their words started
// from different weights even with the same seed.
void SmolVLA::init_random(uint64_t seed) {
  torch::NoGradGuard no_grad;
  for (WeightEntry& e : weight_table()) {
    auto generator = at::make_generator<at::CPUGeneratorImpl>(tensor_seed(seed, e.key));
    torch::Tensor x = torch::empty(e.shape, torch::kFloat32);
    switch (e.init) {
      case WeightEntry::kNormal: x.normal_(0.0, 0.02, generator); break;
      case WeightEntry::kZeros: x.zero_(); break;
      case WeightEntry::kOnes: x.fill_(1.0); break;
      case WeightEntry::kTorchLinear:      // kaiming_uniform(a=√5) = U(±1/√fan_in)
      case WeightEntry::kTorchLinearBias: {
        const double bound = 1.0 / std::sqrt(static_cast<double>(e.fan_in));
        x.uniform_(-bound, bound, generator);
        break;
      }
    }
    *e.tensor = x.to(device_, dtype_of(e));
  }
}

void SmolVLA::pack_for_inference() {
  torch::NoGradGuard no_grad;
  auto pack = [](Linear& l) { l.weight_t = l.weight.detach().t().contiguous(); };
  // Several projections of one input as one Linear: [in, Σ out] (and the biases, when they have them).
  auto fuse = [](std::initializer_list<const Linear*> parts) {
    std::vector<torch::Tensor> ws, bs;
    for (const Linear* x : parts) {
      ws.push_back(x->weight_t.defined() ? x->weight_t : x->weight.detach().t());
      if (x->bias.defined()) bs.push_back(x->bias.detach());
    }
    Linear fused;
    fused.weight_t = torch::cat(ws, 1);  // [in, Σ out]
    fused.weight = fused.weight_t.t();   // [Σ out, in], a view
    if (!bs.empty()) fused.bias = torch::cat(bs, 0);
    return fused;
  };
  for (VisionLayer& l : weights_.vision_layers) l.qkv = fuse({&l.q, &l.k, &l.v});
  for (DecoderLayer& l : weights_.expert_layers) {
    for (Linear* x : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) pack(*x);
    // Cross layers' k/v read the VLM's keys, not the expert's stream: only self-attention layers fuse q|k|v.
    if (l.q.weight.size(1) == l.k.weight.size(1)) l.qkv = fuse({&l.q, &l.k, &l.v});
    l.gate_up = fuse({&l.gate, &l.up});
  }
  for (Linear* x : {&weights_.action_in_proj, &weights_.action_out_proj, &weights_.action_time_mlp_in,
                    &weights_.action_time_mlp_out})
    pack(*x);
  packed_ = true;
}

void SmolVLA::unpack() {
  if (!packed_) return;
  for (VisionLayer& l : weights_.vision_layers) l.qkv = Linear{};
  for (DecoderLayer& l : weights_.expert_layers) {
    for (Linear* x : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) x->weight_t = torch::Tensor();
    l.qkv = l.gate_up = Linear{};
  }
  for (Linear* x : {&weights_.action_in_proj, &weights_.action_out_proj, &weights_.action_time_mlp_in,
                    &weights_.action_time_mlp_out})
    x->weight_t = torch::Tensor();
  packed_ = false;
}

void SmolVLA::to(Precision precision, torch::Device device) {
  precision_ = precision;
  device_ = device;
  torch::NoGradGuard no_grad;
  for (WeightEntry& e : weight_table()) *e.tensor = e.tensor->to(device_, dtype_of(e));
}

// ---------------------------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------------------------

namespace {

// The denoising loop's elementwise ops are small ([chunk, width]): with two threads each one wakes a sleeping
// worker (OMP_WAIT_POLICY=PASSIVE, common/runtime.h), which costs more than the op. Inside a SmallOpsOnOneThread
// scope everything runs on one thread except matmuls big enough to pay for the wake-up, which get `threads`.
thread_local int t_matmul_threads = 0;  // > 0 inside a SmallOpsOnOneThread scope

// Sets libtorch's intra-op threads for a scope (0: leave them) and restores them after. Through OpenMP's count
// (what ATen's parallel_for and OpenBLAS read), not at::set_num_threads, which also rebuilds libtorch's own thread
// pool, used by nothing here, on every change.
class ThreadCount {
 public:
  explicit ThreadCount(int threads) : saved_(omp_get_max_threads()) {
    if (threads > 0 && threads != saved_) omp_set_num_threads(threads);
  }
  ~ThreadCount() {
    if (omp_get_max_threads() != saved_) omp_set_num_threads(saved_);
  }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_;
};

class SmallOpsOnOneThread {
 public:
  explicit SmallOpsOnOneThread(int threads)
      : active_(threads > 1 && t_matmul_threads == 0), one_thread_(active_ ? 1 : 0) {
    if (active_) t_matmul_threads = threads;
  }
  ~SmallOpsOnOneThread() {
    if (active_) t_matmul_threads = 0;
  }

 private:
  bool active_;
  ThreadCount one_thread_;  // restores the scope's threads last
};

// Inside a SmallOpsOnOneThread scope: the scope's threads for a matmul of at least 4 MFLOP (a 50-row expert
// projection at base size is ~100); 0 (leave the count alone) otherwise.
int matmul_threads(int64_t m, int64_t k, int64_t n) {
  return t_matmul_threads > 1 && 2.0 * m * k * n >= 4e6 ? t_matmul_threads : 0;
}

}  // namespace

torch::Tensor linear(const torch::Tensor& x, const Linear& l) {
  // One (add)mm on the flattened rows: the fewest dispatches for the many small matmuls of the denoising loop.
  const torch::Tensor in = x.scalar_type() == l.weight.scalar_type() ? x : x.to(l.weight.scalar_type());
  const torch::Tensor rows = in.dim() == 2 ? in : in.reshape({-1, in.size(-1)});
  const torch::Tensor w = l.weight_t.defined() ? l.weight_t : l.weight.t();
  const ThreadCount threads(matmul_threads(rows.size(0), rows.size(1), w.size(1)));
  const torch::Tensor out = l.bias.defined() ? torch::addmm(l.bias, rows, w) : torch::mm(rows, w);
  if (in.dim() == 2) return out;
  std::vector<int64_t> sizes = in.sizes().vec();
  sizes.back() = l.weight.size(0);
  return out.view(sizes);
}

torch::Tensor rms_norm(const torch::Tensor& x, const Norm& n, double eps) {
  // HF LlamaRMSNorm: fp32 statistics, back to the input dtype, then × weight.
  const torch::Tensor h = x.to(torch::kFloat32);
  const torch::Tensor normed = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return n.weight * normed.to(x.scalar_type());
}

namespace {

// libtorch 1.13's CPU LayerNorm and GELU have no vectorised bf16 path (20 ms for one 3×1024×768 LayerNorm): bf16
// inputs are computed in fp32 — what the bf16 kernels do internally anyway — and rounded back once.
torch::Tensor layer_norm(const torch::Tensor& x, const Norm& n, double eps) {
  if (x.scalar_type() != torch::kBFloat16) return torch::layer_norm(x, {x.size(-1)}, n.weight, n.bias, eps);
  return torch::layer_norm(x.to(torch::kFloat32), {x.size(-1)}, n.weight.to(torch::kFloat32),
                           n.bias.to(torch::kFloat32), eps)
      .to(torch::kBFloat16);
}

torch::Tensor gelu_tanh(const torch::Tensor& x) {
  if (x.scalar_type() != torch::kBFloat16) return torch::gelu(x, "tanh");
  return torch::gelu(x.to(torch::kFloat32), "tanh").to(torch::kBFloat16);
}

// RoPE tables for positions [B, L], computed once per forward and used by every layer: [cos | cos] and
// [−sin | sin], [B, L, 1, hd] fp32, so that rope(x) = x·C + roll(x, hd/2)·S — bit for bit LeRobot's
// first half x1·cos − x2·sin, second half x2·cos + x1·sin.
struct Rope {
  torch::Tensor cos, sin;
};

Rope rope_tables(const torch::Tensor& positions, int head_dim) {
  const int64_t half = head_dim / 2;
  const auto f32 = torch::dtype(torch::kFloat32).device(positions.device());
  const torch::Tensor exponents = (2.0 / head_dim) * torch::arange(half, f32);
  const torch::Tensor timescale = torch::pow(10000.0, exponents);  // base 10000, not the config's rope_theta
  const torch::Tensor radians = positions.unsqueeze(-1).to(torch::kFloat32) / timescale.view({1, 1, half});
  const torch::Tensor r = radians.unsqueeze(2);  // [B, L, 1, half]
  const torch::Tensor c = torch::cos(r), sn = torch::sin(r);
  return {torch::cat({c, c}, -1), torch::cat({-sn, sn}, -1)};
}

torch::Tensor rope(const torch::Tensor& x, const Rope& table) {
  const torch::Tensor xf = x.to(torch::kFloat32);
  return (xf * table.cos + torch::roll(xf, {x.size(-1) / 2}, {-1}) * table.sin).to(x.scalar_type());
}

bool is_power_of_two(double x) {
  int exponent = 0;
  return std::frexp(x, &exponent) == 0.5;
}

// True when autograd needs the functional (out-of-place) ops.
bool needs_grad(std::initializer_list<const torch::Tensor*> tensors) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const torch::Tensor* t : tensors)
    if (t->requires_grad()) return true;
  return false;
}

// SmolVLA's eager attention (smolvla.md §3.3), split so hooks can see the probabilities.
// q [B, Lq, H, hd], k [B, Lk, Hkv, hd] → probs [B, H, Lq, Lk] fp32. `blocked` [B, 1, Lq, Lk] true where the mask
// forbids; those logits become float32's lowest finite value (a fully masked row turns uniform, as in LeRobot).
// A power-of-two scale is applied to q instead of the logits: the same numbers, one pass over fewer elements.
torch::Tensor attention_probs(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& blocked,
                              bool fp32_logits, double scale) {
  const int64_t b = q.size(0), lq = q.size(1), h = q.size(2), hd = q.size(3);
  const int64_t lk = k.size(1), hkv = k.size(2), groups = h / hkv;
  const torch::ScalarType dt = fp32_logits ? torch::kFloat32 : q.scalar_type();
  const bool grad = needs_grad({&q, &k});
  const bool fold = is_power_of_two(scale);
  torch::Tensor qd = q.to(dt);
  if (fold) qd = qd * scale;
  // Query head h reads KV head h / groups: group the query heads by KV head instead of repeating K.
  const torch::Tensor qg = qd.view({b, lq, hkv, groups, hd}).permute({0, 2, 3, 1, 4}).reshape(
      {b, hkv, groups * lq, hd});                                  // [B, Hkv, G·Lq, hd]
  const torch::Tensor kt = k.to(dt).permute({0, 2, 3, 1});         // [B, Hkv, hd, Lk]
  torch::Tensor logits = torch::matmul(qg, kt).view({b, h, lq, lk});  // [B, H, Lq, Lk]
  if (!fold) logits = grad ? logits * scale : logits.mul_(scale);
  if (logits.scalar_type() != torch::kFloat32) logits = logits.to(torch::kFloat32);
  if (blocked.defined())
    logits = grad ? logits.masked_fill(blocked, std::numeric_limits<float>::lowest())
                  : logits.masked_fill_(blocked, std::numeric_limits<float>::lowest());
  if (grad) return torch::softmax(logits, -1);
  return torch::softmax_out(logits, logits, -1);  // in place: the softmax kernel works row by row
}

// probs [B, H, Lq, Lk], v [B, Lk, Hkv, hd] → [B, Lq, H·hd] (probabilities cast to V's dtype first).
torch::Tensor attention_apply(const torch::Tensor& probs, const torch::Tensor& v) {
  const int64_t b = probs.size(0), h = probs.size(1), lq = probs.size(2), lk = probs.size(3);
  const int64_t hkv = v.size(2), hd = v.size(3), groups = h / hkv;
  const torch::Tensor p = probs.to(v.scalar_type()).reshape({b, hkv, groups * lq, lk});
  const torch::Tensor out = torch::matmul(p, v.permute({0, 2, 1, 3}));  // [B, Hkv, G·Lq, hd]
  return out.view({b, h, lq, hd}).permute({0, 2, 1, 3}).reshape({b, lq, h * hd});
}

// The same attention one (batch, KV head) block at a time, for big maps nobody hooks (the vision tower at 512²:
// 12 × 1024² logits per image). Each block's logits stay in one reused per-thread buffer that fits the cache, instead
// of streaming a 150 MB tensor through memory four times; the numbers are the same as attention_probs + apply.
// Blocks run in parallel, each on one thread: a [G·Lq, hd] × [hd, Lk] product with hd = 64 splits badly across
// threads (3 × 12 blocks at 512², 2 cores: 214 ms per layer with two-thread matmuls, 120 ms one block per thread).
torch::Tensor attention_blocked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                const torch::Tensor& blocked, bool fp32_logits, double scale) {
  const int64_t b = q.size(0), lq = q.size(1), h = q.size(2), hd = q.size(3);
  const int64_t lk = k.size(1), hkv = k.size(2), groups = h / hkv;
  const torch::ScalarType dt = fp32_logits ? torch::kFloat32 : q.scalar_type();
  const torch::Tensor qd = q.to(dt), kd = k.to(dt);
  torch::Tensor out = torch::empty({b, lq, h, hd}, v.options());
  const bool inference = c10::InferenceMode::is_enabled();  // thread-local: the workers must share the caller's mode
  at::parallel_for(0, b * hkv, 1, [&](int64_t first, int64_t end) {
    const c10::InferenceMode inference_mode(inference);
    const torch::NoGradGuard no_grad;
    torch::Tensor logits = torch::empty({groups * lq, lk}, q.options().dtype(torch::kFloat32));
    torch::Tensor scores = dt == torch::kFloat32 ? logits : torch::empty({groups * lq, lk}, q.options().dtype(dt));
    for (int64_t block = first; block < end; ++block) {
      const int64_t i = block / hkv, g = block % hkv;
      // Rows of the G query heads that share KV head g: [G·Lq, hd].
      const torch::Tensor qb = qd.select(0, i).narrow(1, g * groups, groups).permute({1, 0, 2}).reshape(
          {groups * lq, hd});
      torch::mm_out(scores, qb, kd.select(0, i).select(1, g).t());
      scores.mul_(scale);  // after the product: for a power-of-two scale the same numbers as scaling q first
      if (scores.data_ptr() != logits.data_ptr()) logits.copy_(scores);
      if (blocked.defined())
        logits.view({groups, lq, lk}).masked_fill_(blocked.select(0, i), std::numeric_limits<float>::lowest());
      torch::softmax_out(logits, logits, -1);
      const torch::Tensor ob = torch::mm(logits.to(v.scalar_type()), v.select(0, i).select(1, g));  // [G·Lq, hd]
      out.select(0, i).narrow(1, g * groups, groups).copy_(ob.view({groups, lq, hd}).permute({1, 0, 2}));
    }
  });
  return out.view({b, lq, h * hd});
}

// Attention with whatever hooks are active on its probabilities: `on_probs` (may be empty) sees [B, H, Lq, Lk]
// and may change it. Large unhooked maps take the blocked path.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& blocked, bool fp32_logits, double scale,
                        const std::function<void(torch::Tensor&)>& on_probs) {
  const int64_t elements = q.size(2) * q.size(1) * k.size(1);
  if (!on_probs && elements >= (int64_t{1} << 21) && !needs_grad({&q, &k, &v}))
    return attention_blocked(q, k, v, blocked, fp32_logits, scale);
  torch::Tensor probs = attention_probs(q, k, blocked, fp32_logits, scale);
  if (on_probs) on_probs(probs);
  return attention_apply(probs, v);
}

// Runs a hook on rows [begin, begin + len) of a [B, H, Lq, Lk] pattern; a replaced tensor is written back.
void hook_rows(const Hooks& hooks, HookStream stream, int layer, HookContext context, torch::Tensor& probs,
               int64_t begin, int64_t len, int64_t seq_begin) {
  if (!hooks.active(stream, layer, HookSite::kAttnPattern)) return;
  const torch::Tensor view = probs.narrow(2, begin, len);
  torch::Tensor rows = view;
  context.query_begin = static_cast<int>(seq_begin);
  hooks.run(stream, layer, HookSite::kAttnPattern, context, rows);
  if (!rows.is_same(view)) view.copy_(rows);
}

void hook(const Hooks& hooks, HookStream stream, int layer, HookSite site, const HookContext& context,
          torch::Tensor& x) {
  if (hooks.active(stream, layer, site)) hooks.run(stream, layer, site, context, x);
}

bool any_hook_after_attention(const Hooks& hooks, HookStream stream, int layer) {
  for (HookSite s : {HookSite::kAttnHeads, HookSite::kAttnOut, HookSite::kResidMid, HookSite::kMlpPost,
                     HookSite::kMlpOut, HookSite::kResidPost})
    if (hooks.active(stream, layer, s)) return true;
  return false;
}

}  // namespace

torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions) {
  return rope(x, rope_tables(positions, static_cast<int>(x.size(-1))));
}

torch::Tensor make_att_2d_masks(const torch::Tensor& pad_masks, const torch::Tensor& att_masks) {
  const torch::Tensor cumsum = torch::cumsum(att_masks.to(torch::kInt64), 1);
  const torch::Tensor att_2d = cumsum.unsqueeze(1) <= cumsum.unsqueeze(2);  // [B, q, k]: c[k] ≤ c[q]
  const torch::Tensor pad_2d = pad_masks.unsqueeze(1) & pad_masks.unsqueeze(2);
  return att_2d & pad_2d;
}

torch::Tensor pixel_shuffle(const torch::Tensor& x, int s) {
  const int64_t n = x.size(0), seq = x.size(1), dim = x.size(2);
  const int64_t side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(seq))));
  require(side * side == seq && side % s == 0, "pixel_shuffle: " + std::to_string(seq) +
                                                   " patches do not form a square grid divisible by " +
                                                   std::to_string(s));
  // The exact sequence of views of transformers' SmolVLMConnector.pixel_shuffle.
  torch::Tensor y = x.view({n, side, side, dim});
  y = y.view({n, side, side / s, dim * s}).permute({0, 2, 1, 3});
  y = y.reshape({n, side / s, side / s, dim * s * s}).permute({0, 2, 1, 3});
  return y.reshape({n, seq / (s * s), dim * s * s});
}

torch::Tensor vision_position_ids(int grid_h, int grid_w, int per_side) {
  if (grid_h == per_side && grid_w == per_side) return torch::arange(int64_t{per_side} * per_side, torch::kInt64);
  // SmolVLMVisionEmbeddings: fractional patch coordinates bucketised onto the position table (float32, as in
  // the reference).
  const auto f32 = torch::kFloat32;
  const torch::Tensor boundaries = torch::arange(1.0 / per_side, 1.0, 1.0 / per_side, f32);
  const torch::Tensor fh = torch::arange(0.0, 1.0 - 1e-6, static_cast<double>(1.0f / grid_h), f32);
  const torch::Tensor fw = torch::arange(0.0, 1.0 - 1e-6, static_cast<double>(1.0f / grid_w), f32);
  const torch::Tensor bh = torch::bucketize(fh, boundaries, /*out_int32=*/false, /*right=*/true);
  const torch::Tensor bw = torch::bucketize(fw, boundaries, false, true);
  return (bh.unsqueeze(1) * per_side + bw.unsqueeze(0)).flatten();
}

// ---------------------------------------------------------------------------------------------------------------
// Vision tower and connector
// ---------------------------------------------------------------------------------------------------------------

torch::Tensor SmolVLA::vision_tower(const torch::Tensor& images) const {
  const VisionConfig& vc = config_.vision;
  const SmolVLAWeights& w = weights_;
  const HookContext context{ForwardPass::kPrefix};
  const torch::Tensor pixels = images.to(device_, w.patch_embedding_w.scalar_type());
  // Patch embedding, a stride-p p×p convolution written as a matmul over the patches (row-major order):
  // [N, 3, H, W] → [N·P, 3·p·p] × [3·p·p, Dv] → [N, P, Dv].
  const int64_t ps = vc.patch_size, gh = pixels.size(2) / ps, gw = pixels.size(3) / ps;
  const torch::Tensor patches = pixels.view({pixels.size(0), 3, gh, ps, gw, ps}).permute({0, 2, 4, 1, 3, 5}).reshape(
      {pixels.size(0) * gh * gw, 3 * ps * ps});
  torch::Tensor x = torch::addmm(w.patch_embedding_b, patches, w.patch_embedding_w.view({vc.hidden, -1}).t())
                        .view({pixels.size(0), gh * gw, vc.hidden});
  const torch::Tensor ids =
      vision_position_ids(static_cast<int>(gh), static_cast<int>(gw), vc.patches_per_side()).to(device_);
  x = x + w.position_embedding.index_select(0, ids).unsqueeze(0);

  const int64_t n = x.size(0), p = x.size(1), heads = vc.heads, hd = vc.head_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int i = 0; i < vc.layers; ++i) {
    const VisionLayer& l = w.vision_layers[i];
    // x = x + out_proj(MHA(LN1(x)))
    const torch::Tensor h = layer_norm(x, l.ln1, vc.layer_norm_eps);
    torch::Tensor q, k, v;  // [N, P, heads, hd]
    if (l.qkv.weight.defined()) {
      const torch::Tensor qkv = linear(h, l.qkv).view({n, p, 3 * heads, hd});
      q = qkv.narrow(2, 0, heads), k = qkv.narrow(2, heads, heads), v = qkv.narrow(2, 2 * heads, heads);
    } else {
      q = linear(h, l.q).view({n, p, heads, hd});
      k = linear(h, l.k).view({n, p, heads, hd});
      v = linear(h, l.v).view({n, p, heads, hd});
    }
    std::function<void(torch::Tensor&)> on_probs;
    if (hooks_.active(HookStream::kVision, i, HookSite::kAttnPattern))
      on_probs = [&](torch::Tensor& probs) { hooks_.run(HookStream::kVision, i, HookSite::kAttnPattern, context, probs); };
    x = x + linear(attention(q, k, v, torch::Tensor(), /*fp32_logits=*/false, scale, on_probs), l.o);
    // x = x + fc2(gelu_tanh(fc1(LN2(x))))
    torch::Tensor act = gelu_tanh(linear(layer_norm(x, l.ln2, vc.layer_norm_eps), l.fc1));
    hook(hooks_, HookStream::kVision, i, HookSite::kMlpPost, context, act);
    x = x + linear(act, l.fc2);
    hook(hooks_, HookStream::kVision, i, HookSite::kResidPost, context, x);
  }
  return layer_norm(x, w.vision_post_norm, vc.layer_norm_eps);  // [N, P, Dv]
}

torch::Tensor SmolVLA::embed_images(const torch::Tensor& images) const {
  require(images.dim() == 4 && images.size(1) == 3,
          "embed_images: images must be [N, 3, H, W], got " + std::to_string(images.dim()) + " dims");
  require(images.size(2) % config_.vision.patch_size == 0 && images.size(3) % config_.vision.patch_size == 0,
          "embed_images: image size " + std::to_string(images.size(2)) + "x" + std::to_string(images.size(3)) +
              " is not a multiple of the patch size " + std::to_string(config_.vision.patch_size));
  const torch::Tensor features = vision_tower(images);
  return linear(pixel_shuffle(features, config_.scale_factor), weights_.connector);  // [N, tokens, D]
}

// ---------------------------------------------------------------------------------------------------------------
// Prefix and suffix embeddings
// ---------------------------------------------------------------------------------------------------------------

Prefix SmolVLA::embed_prefix(const ModelInputs& in) const {
  require(in.images.size() == in.image_masks.size(), "embed_prefix: one image mask per camera");
  require(in.state.defined() && in.state.dim() == 2 && in.state.size(1) == config_.max_state_dim,
          "embed_prefix: state must be [B, " + std::to_string(config_.max_state_dim) + "]");
  require(in.lang_tokens.defined() && in.lang_tokens.dim() == 2 && in.lang_masks.sizes() == in.lang_tokens.sizes(),
          "embed_prefix: lang_tokens and lang_masks must both be [B, L]");
  const int64_t b = in.state.size(0);
  Prefix out;
  std::vector<torch::Tensor> embs, pads;
  std::vector<bool> ar;  // autoregressive flags: 0 for images and words, 1 for the state
  if (!in.images.empty()) {
    // All cameras through the tower in one batch: [cams·B, 3, H, W].
    for (size_t c = 0; c < in.images.size(); ++c)
      require(in.images[c].dim() == 4 && in.images[c].size(0) == b &&
                  in.images[c].sizes() == in.images[0].sizes(),
              "embed_prefix: camera " + std::to_string(c) + " image must be [B, 3, H, W] like camera 0");
    const torch::Tensor all = embed_images(torch::cat(in.images, 0));
    const int64_t tokens = all.size(1);
    for (size_t c = 0; c < in.images.size(); ++c) {
      const torch::Tensor emb = all.narrow(0, static_cast<int64_t>(c) * b, b);
      out.image_embeddings.push_back(emb);
      // × √D with the multiplier in the embedding's dtype (31.0 for D = 960 in bf16).
      const torch::Tensor scale = torch::tensor(std::sqrt(static_cast<double>(emb.size(-1))),
                                                torch::dtype(emb.scalar_type()).device(device_));
      embs.push_back(emb * scale);
      pads.push_back(in.image_masks[c].to(device_, torch::kBool).view({b, 1}).expand({b, tokens}));
      ar.insert(ar.end(), tokens, false);
    }
  }
  // Words: embed_tokens × √D (a Python-float multiply).
  const torch::Tensor tokens = in.lang_tokens.to(device_, torch::kInt64);
  require(tokens.numel() == 0 || (tokens.min().item<int64_t>() >= 0 &&
                                  tokens.max().item<int64_t>() < config_.text.vocab_size),
          "embed_prefix: a language token id is outside the vocabulary of " +
              std::to_string(config_.text.vocab_size));
  const torch::Tensor lang = weights_.embed_tokens.index_select(0, tokens.flatten()).view(
      {b, tokens.size(1), config_.text.hidden});
  embs.push_back(lang * std::sqrt(static_cast<double>(config_.text.hidden)));
  pads.push_back(in.lang_masks.to(device_, torch::kBool));
  ar.insert(ar.end(), tokens.size(1), false);
  out.words_begin = static_cast<int>(ar.size()) - static_cast<int>(tokens.size(1));
  out.state_index = static_cast<int>(ar.size());
  out.words_end = out.words_begin + (tokens.numel() ? static_cast<int>(in.lang_masks.select(0, 0).to(torch::kInt64)
                                                                           .sum()
                                                                           .item<int64_t>())
                                                    : 0);
  // State: one token, no scaling.
  embs.push_back(linear(in.state.to(device_, torch::kFloat32), weights_.state_proj).unsqueeze(1));
  pads.push_back(torch::ones({b, 1}, torch::dtype(torch::kBool).device(device_)));
  ar.push_back(true);

  // Mixed bf16 / fp32 segments promote to fp32, as torch.cat does in the reference.
  torch::ScalarType common = embs[0].scalar_type();
  for (const torch::Tensor& e : embs) common = torch::promote_types(common, e.scalar_type());
  for (torch::Tensor& e : embs) e = e.to(common);
  out.embs = torch::cat(embs, 1);
  out.pad_masks = torch::cat(pads, 1);
  std::vector<uint8_t> flags(ar.begin(), ar.end());
  out.att_masks = torch::tensor(flags, torch::kBool).to(device_).view({1, -1}).expand({b, -1});
  if (config_.prefix_length > 0 && out.embs.size(1) < config_.prefix_length) {
    const int64_t pad = config_.prefix_length - out.embs.size(1);
    out.embs = F::pad(out.embs, F::PadFuncOptions({0, 0, 0, pad}));
    out.pad_masks = F::pad(out.pad_masks, F::PadFuncOptions({0, pad}));
    out.att_masks = F::pad(out.att_masks.contiguous(), F::PadFuncOptions({0, pad}));
  }
  HookContext context{ForwardPass::kPrefix};
  context.words_begin = out.words_begin, context.state_index = out.state_index, context.words_end = out.words_end;
  hook(hooks_, HookStream::kVlm, -1, HookSite::kEmbed, context, out.embs);
  return out;
}

torch::Tensor SmolVLA::time_embedding(const torch::Tensor& t) const {
  // period_k = min·(max/min)^(k/(n−1)); angle = t·2π/period; [sin | cos]; float64 then fp32.
  const int64_t n = config_.expert_hidden() / 2;
  const auto f64 = torch::dtype(torch::kFloat64).device(t.device());
  const torch::Tensor fraction = torch::linspace(0.0, 1.0, n, f64);
  const torch::Tensor period =
      config_.min_period * torch::pow(config_.max_period / config_.min_period, fraction);
  const torch::Tensor scaling = 1.0 / period * 2 * M_PI;
  const torch::Tensor angle = scaling.unsqueeze(0) * t.unsqueeze(1);
  return torch::cat({torch::sin(angle), torch::cos(angle)}, 1).to(torch::kFloat32);
}

torch::Tensor SmolVLA::embed_suffix(const torch::Tensor& x_t, const torch::Tensor& t) const {
  const torch::Tensor action = linear(x_t.to(device_, torch::kFloat32), weights_.action_in_proj);  // [B, T, De]
  const torch::Tensor time = time_embedding(t.to(device_, torch::kFloat32)).to(action.scalar_type());
  const torch::Tensor joined = torch::cat({action, time.unsqueeze(1).expand_as(action)}, 2);  // [B, T, 2De]
  return linear(torch::silu(linear(joined, weights_.action_time_mlp_in)), weights_.action_time_mlp_out);
}

// ---------------------------------------------------------------------------------------------------------------
// The layer loop
// ---------------------------------------------------------------------------------------------------------------

struct SmolVLA::Stream {
  HookStream id;
  torch::Tensor h;          // [B, L, D or De] residual stream
  Rope rope;                // for this stream's positions
  Rope cross_rope;          // expert only: positions 0…T−1 for the cross-attention queries
  int64_t seq_begin = 0;    // first sequence position of these rows (0 for the prefix, Lp for the actions)
  const std::vector<DecoderLayer>* layers = nullptr;
  double eps = 1e-5;
};

void SmolVLA::finish_layer(Stream& s, const DecoderLayer& l, int i, torch::Tensor attn,
                           const HookContext& context) const {
  // h1 = h + o_proj(attn); h2 = h1 + down(silu(gate(norm(h1))) ⊙ up(norm(h1)))
  hook(hooks_, s.id, i, HookSite::kAttnHeads, context, attn);  // [B, L, H·hd]
  torch::Tensor out = linear(attn, l.o);
  hook(hooks_, s.id, i, HookSite::kAttnOut, context, out);
  out = out + s.h.to(out.scalar_type());  // the residual takes o_proj's dtype, as `out_emb += hidden_states` does
  hook(hooks_, s.id, i, HookSite::kResidMid, context, out);
  const torch::Tensor x = rms_norm(out, l.post_norm, s.eps);
  torch::Tensor act;  // [B, L, I]
  if (l.gate_up.weight.defined()) {
    const int64_t inter = l.gate.weight.size(0);
    const torch::Tensor gate_up = linear(x, l.gate_up);  // [B, L, 2I]
    act = torch::silu(gate_up.narrow(-1, 0, inter)) * gate_up.narrow(-1, inter, inter);
  } else {
    act = torch::silu(linear(x, l.gate)) * linear(x, l.up);
  }
  hook(hooks_, s.id, i, HookSite::kMlpPost, context, act);
  torch::Tensor mlp = linear(act, l.down);
  hook(hooks_, s.id, i, HookSite::kMlpOut, context, mlp);
  s.h = mlp + out;
  hook(hooks_, s.id, i, HookSite::kResidPost, context, s.h);
}

void SmolVLA::run_layers(Stream* prefix, Stream* suffix, const torch::Tensor& blocked, PrefixCache* fill_cache,
                         const PrefixCache* read_cache, const HookContext& context, bool need_prefix_output) const {
  const TextConfig& tc = config_.text;
  const int64_t hd = tc.head_dim;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const int64_t lp = prefix ? prefix->h.size(1) : read_cache->keys[0].size(1);
  const int64_t ls = suffix ? suffix->h.size(1) : 0;
  // `blocked` [B, 1, rows, cols]: rows = the present streams' rows (prefix then suffix), cols = prefix then suffix keys.
  const int64_t rows = blocked.size(2);
  const int last = config_.num_vlm_layers - 1;

  auto project = [&](const Stream& s, const DecoderLayer& l, bool with_q, torch::Tensor* q, torch::Tensor* k,
                     torch::Tensor* v) {
    const torch::Tensor h = rms_norm(s.h, l.input_norm, s.eps);
    const int64_t b = h.size(0), n = h.size(1);
    if (with_q && l.qkv.weight.defined()) {
      const torch::Tensor qkv = linear(h, l.qkv).view({b, n, -1, hd});
      *q = qkv.narrow(2, 0, tc.heads);
      *k = qkv.narrow(2, tc.heads, tc.kv_heads);
      *v = qkv.narrow(2, tc.heads + tc.kv_heads, tc.kv_heads);
      return;
    }
    if (with_q) *q = linear(h, l.q).view({b, n, tc.heads, hd});
    *k = linear(h, l.k).view({b, n, tc.kv_heads, hd});
    *v = linear(h, l.v).view({b, n, tc.kv_heads, hd});
  };

  for (int i = 0; i < config_.num_vlm_layers; ++i) {
    const int j = config_.expert_layer_at(i);
    Stream* expert = suffix && j >= 0 ? suffix : nullptr;
    const DecoderLayer* vlm_layer = prefix ? &(*prefix->layers)[i] : nullptr;
    const DecoderLayer* expert_layer = expert ? &(*expert->layers)[j] : nullptr;
    // The VLM rows of the last layer feed nothing but hooks and the (unused) final norm.
    const bool prefix_rows_needed =
        prefix && (i < last || need_prefix_output || hooks_.active(HookStream::kVlm, i, HookSite::kAttnPattern) ||
                   any_hook_after_attention(hooks_, HookStream::kVlm, i));
    const bool joint = fill_cache != nullptr || config_.vlm_layer_is_self_attention(i);

    torch::Tensor prefix_attn, suffix_attn;  // [B, rows, H·hd] per stream
    if (joint) {
      // One softmax over [prefix ; suffix] keys, each stream with its own projections (smolvla.md §3.5).
      std::vector<torch::Tensor> qs, ks, vs;
      torch::Tensor q, k, v;
      if (prefix) {
        project(*prefix, *vlm_layer, prefix_rows_needed, &q, &k, &v);
        if (prefix_rows_needed) qs.push_back(rope(q, prefix->rope));
        ks.push_back(rope(k, prefix->rope));
        vs.push_back(v);
        if (fill_cache) {
          fill_cache->keys[i] = ks.back();
          fill_cache->values[i] = v;
        }
      } else if (read_cache) {
        ks.push_back(read_cache->keys[i]);
        vs.push_back(read_cache->values[i]);
      }
      if (expert) {
        project(*expert, *expert_layer, true, &q, &k, &v);
        qs.push_back(rope(q, expert->rope));
        ks.push_back(rope(k, expert->rope));
        vs.push_back(v);
      }
      if (!qs.empty()) {
        const torch::Tensor qcat = qs.size() == 1 ? qs[0] : torch::cat(qs, 1);
        const torch::Tensor kcat = ks.size() == 1 ? ks[0] : torch::cat(ks, 1);
        const torch::Tensor vcat = vs.size() == 1 ? vs[0] : torch::cat(vs, 1);
        const int64_t row0 = prefix_rows_needed ? 0 : (prefix ? lp : 0);  // first mask row of the queries
        const torch::Tensor blk = blocked.narrow(2, row0, qcat.size(1));
        const int64_t r = prefix_rows_needed ? lp : 0;  // first expert row
        std::function<void(torch::Tensor&)> on_probs;
        if ((prefix_rows_needed && hooks_.active(HookStream::kVlm, i, HookSite::kAttnPattern)) ||
            (expert && hooks_.active(HookStream::kExpert, j, HookSite::kAttnPattern)))
          on_probs = [&](torch::Tensor& probs) {
            if (prefix_rows_needed) hook_rows(hooks_, HookStream::kVlm, i, context, probs, 0, lp, 0);
            if (expert) hook_rows(hooks_, HookStream::kExpert, j, context, probs, r, ls, expert->seq_begin);
          };
        const torch::Tensor attn = attention(qcat, kcat, vcat, blk, /*fp32_logits=*/true, scale, on_probs);
        if (prefix_rows_needed) prefix_attn = attn.narrow(1, 0, lp);
        if (expert) suffix_attn = attn.narrow(1, r, ls);
      }
    } else {
      // Cross-attention layer (smolvla.md §3.6): the prefix attends to itself; the expert's queries (roped at
      // 0…T−1) attend to the prefix's post-RoPE K and V, re-projected by the expert's own k/v.
      torch::Tensor k_prefix, v_prefix;
      if (prefix) {
        torch::Tensor q, k, v;
        project(*prefix, *vlm_layer, prefix_rows_needed, &q, &k, &v);
        k_prefix = rope(k, prefix->rope);
        v_prefix = v;
        if (prefix_rows_needed) {
          std::function<void(torch::Tensor&)> on_probs;
          if (hooks_.active(HookStream::kVlm, i, HookSite::kAttnPattern))
            on_probs = [&](torch::Tensor& probs) { hook_rows(hooks_, HookStream::kVlm, i, context, probs, 0, lp, 0); };
          prefix_attn = attention(rope(q, prefix->rope), k_prefix, v_prefix, blocked.narrow(2, 0, lp).narrow(3, 0, lp),
                                  true, scale, on_probs);
        }
      }
      if (expert) {
        torch::Tensor ek, ev;
        if (read_cache && read_cache->cross_keys[i].defined()) {
          ek = read_cache->cross_keys[i];
          ev = read_cache->cross_values[i];
        } else {
          const torch::Tensor kp = prefix ? k_prefix : read_cache->keys[i];
          const torch::Tensor vp = prefix ? v_prefix : read_cache->values[i];
          const int64_t b = kp.size(0), n = kp.size(1);
          ek = linear(kp.reshape({b, n, -1}), expert_layer->k).view({b, n, tc.kv_heads, hd});
          ev = linear(vp.reshape({b, n, -1}), expert_layer->v).view({b, n, tc.kv_heads, hd});
        }
        const torch::Tensor h = rms_norm(expert->h, expert_layer->input_norm, expert->eps);
        const torch::Tensor q =
            rope(linear(h, expert_layer->q).view({h.size(0), h.size(1), tc.heads, hd}), expert->cross_rope);
        const torch::Tensor blk = blocked.narrow(2, rows - ls, ls).narrow(3, 0, ek.size(1));
        std::function<void(torch::Tensor&)> on_probs;
        if (hooks_.active(HookStream::kExpert, j, HookSite::kAttnPattern))
          on_probs = [&](torch::Tensor& probs) {
            hook_rows(hooks_, HookStream::kExpert, j, context, probs, 0, ls, expert->seq_begin);
          };
        suffix_attn = attention(q, ek, ev, blk, true, scale, on_probs);
      }
    }
    if (prefix && prefix_rows_needed) finish_layer(*prefix, *vlm_layer, i, prefix_attn, context);
    if (expert) finish_layer(*expert, *expert_layer, j, suffix_attn, context);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Inference
// ---------------------------------------------------------------------------------------------------------------

ChunkFlops chunk_flops(const SmolVLAConfig& c, int cameras, int image, int words) {
  ChunkFlops f;
  const double p = std::pow(image / c.vision.patch_size, 2), dv = c.vision.hidden, iv = c.vision.intermediate;
  const double vis = 2 * p * 3 * c.vision.patch_size * c.vision.patch_size * dv +
                     c.vision.layers * (2 * 4 * p * dv * dv + 2 * 2 * p * p * dv + 2 * 2 * p * dv * iv);
  const double tokens = p / (c.scale_factor * c.scale_factor);
  const double d = c.text.hidden, qw = c.attention_width(), kvw = c.kv_width(), it = c.text.intermediate;
  const double lp = cameras * tokens + words + 1;
  f.prefix = cameras * (vis + 2 * tokens * dv * c.scale_factor * c.scale_factor * d);
  for (int i = 0; i < c.num_vlm_layers; ++i) {
    f.prefix += 2 * 2 * lp * d * kvw;
    if (i + 1 < c.num_vlm_layers) f.prefix += 2 * lp * (d * qw + 2 * lp * qw + qw * d + 3 * d * it);
    if (!c.vlm_layer_is_self_attention(i)) f.prefix += 2 * 2 * lp * kvw * kvw;  // expert re-projection, once
  }
  const double t = c.chunk_size, de = c.expert_hidden(), ie = c.expert_intermediate(), a = c.max_action_dim;
  double step = 2 * t * (a * de + 2 * de * de + de * de) + 2 * t * de * a;
  for (int i = 0; i < c.num_vlm_layers; ++i) {
    const bool joint = c.vlm_layer_is_self_attention(i);
    step += 2 * t * (de * qw + qw * de + 3 * de * ie);
    step += joint ? 2 * (2 * t * de * kvw + 2 * t * (lp + t) * qw) : 2 * 2 * t * lp * qw;
  }
  f.denoise = c.num_steps * step;
  return f;
}

int phase_threads(int setting, double flops) {
  if (setting >= 0) return setting;
  // "All" is libtorch's count, which Policy sets from --threads: a process given one thread (a --workers process
  // beside another) must not take a second core for its big phases.
  return flops >= 1e9 ? std::max(1, at::get_num_threads()) : 1;
}

PrefixCache SmolVLA::run_prefix(const Prefix& prefix) const {
  const int n = config_.num_vlm_layers;
  PrefixCache cache;
  cache.pad_masks = prefix.pad_masks;
  cache.valid_count = prefix.pad_masks.to(torch::kInt64).sum(-1, /*keepdim=*/true);
  cache.keys.resize(n);
  cache.values.resize(n);
  cache.cross_keys.resize(n);
  cache.cross_values.resize(n);

  const torch::Tensor positions = torch::cumsum(prefix.pad_masks.to(torch::kInt64), 1) - 1;
  Stream s{HookStream::kVlm, prefix.embs, rope_tables(positions, config_.text.head_dim), {}, 0,
           &weights_.vlm_layers, config_.text.rms_norm_eps};
  const torch::Tensor mask = make_att_2d_masks(prefix.pad_masks, prefix.att_masks);
  HookContext context{ForwardPass::kPrefix};
  context.words_begin = prefix.words_begin, context.state_index = prefix.state_index;
  context.words_end = prefix.words_end;
  run_layers(&s, nullptr, mask.logical_not().unsqueeze(1), &cache, nullptr, context, /*need_prefix_output=*/false);

  // The expert's re-projection of each cross layer's K/V does not depend on the denoising step: do it once.
  for (int i = 0; i < n; ++i) {
    const int j = config_.expert_layer_at(i);
    if (j < 0 || config_.vlm_layer_is_self_attention(i)) continue;
    const DecoderLayer& l = weights_.expert_layers[j];
    const torch::Tensor& k = cache.keys[i];
    const int64_t b = k.size(0), lp = k.size(1);
    cache.cross_keys[i] = linear(k.reshape({b, lp, -1}), l.k).view({b, lp, config_.text.kv_heads, -1});
    cache.cross_values[i] = linear(cache.values[i].reshape({b, lp, -1}), l.v).view({b, lp, config_.text.kv_heads, -1});
  }

  // Actions see every valid prefix token and the actions up to themselves; positions continue after the prefix.
  const int64_t b = prefix.pad_masks.size(0), lp = prefix.pad_masks.size(1), chunk = config_.chunk_size;
  const auto opts = torch::dtype(torch::kBool).device(device_);
  const torch::Tensor causal = torch::ones({chunk, chunk}, opts).tril().unsqueeze(0).expand({b, chunk, chunk});
  const torch::Tensor visible = torch::cat({prefix.pad_masks.unsqueeze(1).expand({b, chunk, lp}), causal}, 2);
  cache.action_blocked = visible.logical_not().unsqueeze(1);  // [B, 1, T, Lp + T]
  const torch::Tensor steps = torch::arange(chunk, torch::dtype(torch::kInt64).device(device_)).unsqueeze(0);
  const Rope joint = rope_tables(cache.valid_count + steps, config_.text.head_dim);
  const Rope cross = rope_tables(steps.expand({b, chunk}), config_.text.head_dim);
  cache.action_rope_cos = joint.cos, cache.action_rope_sin = joint.sin;
  cache.cross_rope_cos = cross.cos, cache.cross_rope_sin = cross.sin;
  return cache;
}

torch::Tensor SmolVLA::denoise_step(const PrefixCache& cache, const torch::Tensor& x_t, const torch::Tensor& t,
                                    int step) const {
  const int64_t b = x_t.size(0), chunk = x_t.size(1), lp = cache.pad_masks.size(1);
  require(x_t.dim() == 3 && chunk == config_.chunk_size && x_t.size(2) == config_.max_action_dim,
          "denoise_step: x_t must be [B, " + std::to_string(config_.chunk_size) + ", " +
              std::to_string(config_.max_action_dim) + "]");
  HookContext context{ForwardPass::kDenoise, step, t.numel() ? t.flatten()[0].item<double>() : 0.0};
  const SmallOpsOnOneThread small_ops(device_.is_cpu() && !torch::GradMode::is_enabled() ? at::get_num_threads() : 1);
  torch::Tensor suffix = embed_suffix(x_t, t);
  hook(hooks_, HookStream::kExpert, -1, HookSite::kEmbed, context, suffix);

  require(cache.action_blocked.defined() && cache.action_blocked.size(0) == b &&
              cache.action_blocked.size(2) == chunk && cache.action_blocked.size(3) == lp + chunk,
          "denoise_step: the prefix cache was not made by run_prefix for this batch");
  Stream s{HookStream::kExpert, suffix, Rope{cache.action_rope_cos, cache.action_rope_sin},
           Rope{cache.cross_rope_cos, cache.cross_rope_sin}, lp, &weights_.expert_layers, config_.text.rms_norm_eps};
  run_layers(nullptr, &s, cache.action_blocked, nullptr, &cache, context, false);
  torch::Tensor v = linear(rms_norm(s.h, weights_.expert_norm, s.eps).to(torch::kFloat32), weights_.action_out_proj);
  hook(hooks_, HookStream::kExpert, -1, HookSite::kVelocity, context, v);
  return v;
}

torch::Tensor SmolVLA::velocity_uncached(const Prefix& prefix, const torch::Tensor& x_t, const torch::Tensor& t,
                                         int step) const {
  const ForwardPass pass = step >= 0 ? ForwardPass::kDenoise : ForwardPass::kTrain;
  HookContext context{pass, step, t.numel() ? t.flatten()[0].item<double>() : 0.0};
  context.words_begin = prefix.words_begin, context.state_index = prefix.state_index;
  context.words_end = prefix.words_end;
  const int64_t b = x_t.size(0), chunk = x_t.size(1), lp = prefix.embs.size(1);
  torch::Tensor suffix = embed_suffix(x_t, t);
  hook(hooks_, HookStream::kExpert, -1, HookSite::kEmbed, context, suffix);
  const auto bool_opts = torch::dtype(torch::kBool).device(device_);
  const torch::Tensor pad = torch::cat({prefix.pad_masks, torch::ones({b, chunk}, bool_opts)}, 1);
  const torch::Tensor att = torch::cat({prefix.att_masks, torch::ones({b, chunk}, bool_opts)}, 1);
  const torch::Tensor mask = make_att_2d_masks(pad, att);
  const torch::Tensor positions = torch::cumsum(pad.to(torch::kInt64), 1) - 1;
  const int hd = config_.text.head_dim;
  const torch::Tensor suffix_positions = positions.narrow(1, lp, chunk);
  Stream p{HookStream::kVlm, prefix.embs, rope_tables(positions.narrow(1, 0, lp), hd), {}, 0, &weights_.vlm_layers,
           config_.text.rms_norm_eps};
  Stream s{HookStream::kExpert, suffix, rope_tables(suffix_positions, hd),
           rope_tables(suffix_positions - std::get<0>(suffix_positions.min(1, true)), hd), lp,
           &weights_.expert_layers, config_.text.rms_norm_eps};
  run_layers(&p, &s, mask.logical_not().unsqueeze(1), nullptr, nullptr, context, false);
  torch::Tensor v = linear(rms_norm(s.h, weights_.expert_norm, s.eps).to(torch::kFloat32), weights_.action_out_proj);
  hook(hooks_, HookStream::kExpert, -1, HookSite::kVelocity, context, v);
  return v;
}

SmolVLA::Threads SmolVLA::call_threads(const ModelInputs& inputs, bool use_cache) const {
  const int64_t image = inputs.images.empty() ? 0 : inputs.images[0].size(-1);
  const ChunkFlops flops = chunk_flops(config_, static_cast<int>(inputs.images.size()), static_cast<int>(image),
                                       static_cast<int>(inputs.lang_tokens.size(1)));
  const double rows = static_cast<double>(inputs.state.size(0));  // the whole call's work: every batch row
  const int prefix = phase_threads(threads_.prefix, rows * flops.prefix);
  return {prefix, use_cache ? phase_threads(threads_.denoise, rows * flops.denoise) : prefix};
}

torch::Tensor SmolVLA::sample_actions(const ModelInputs& inputs, const torch::Tensor& noise, bool use_cache) const {
  const int64_t b = inputs.state.size(0);
  require(noise.dim() == 3 && noise.size(0) == b && noise.size(1) == config_.chunk_size &&
              noise.size(2) == config_.max_action_dim,
          "sample_actions: noise must be [B, chunk_size, max_action_dim]");
  // Both phases' threads decided before the first scope changes libtorch's count, which phase_threads reads.
  const Threads threads = call_threads(inputs, use_cache);
  ThreadCount prefix_threads(threads.prefix);
  const Prefix prefix = embed_prefix(inputs);
  PrefixCache cache;
  if (use_cache) cache = run_prefix(prefix);
  ThreadCount denoise_threads(threads.denoise);
  // Euler from t = 1 to 0; t accumulates dt in fp32 exactly like the reference loop.
  const torch::Tensor dt = torch::tensor(-1.0f / static_cast<float>(config_.num_steps),
                                         torch::dtype(torch::kFloat32).device(device_));
  torch::Tensor time = torch::tensor(1.0f, torch::dtype(torch::kFloat32).device(device_));
  torch::Tensor x = noise.to(device_, torch::kFloat32).clone();
  for (int s = 0; s < config_.num_steps; ++s) {
    const torch::Tensor t = time.expand({b});
    const torch::Tensor v = use_cache ? denoise_step(cache, x, t, s) : velocity_uncached(prefix, x, t, s);
    x = x + dt * v;
    time = time + dt;
  }
  return x;
}

torch::Tensor SmolVLA::flow_loss(const ModelInputs& inputs, const torch::Tensor& actions, const torch::Tensor& noise,
                                 const torch::Tensor& time) const {
  // x_t = t·noise + (1 − t)·actions; target u_t = noise − actions.
  const torch::Tensor t = time.to(device_, torch::kFloat32).view({-1, 1, 1});
  const torch::Tensor a = actions.to(device_, torch::kFloat32), n = noise.to(device_, torch::kFloat32);
  const torch::Tensor x_t = t * n + (1 - t) * a;
  const torch::Tensor u_t = n - a;
  const torch::Tensor v_t = velocity_uncached(embed_prefix(inputs), x_t, time.to(device_, torch::kFloat32));
  return (u_t - v_t).pow(2);
}

torch::Tensor SmolVLA::caption_logits(const std::vector<torch::Tensor>& images, const std::vector<torch::Tensor>& masks,
                                      const torch::Tensor& tokens, const torch::Tensor& token_masks) const {
  const int64_t b = tokens.size(0), l = tokens.size(1);
  std::vector<torch::Tensor> embs, pads;
  std::vector<uint8_t> ar;
  if (!images.empty()) {
    const torch::Tensor all = embed_images(torch::cat(images, 0));
    const int64_t n = all.size(1);
    for (size_t c = 0; c < images.size(); ++c) {
      const torch::Tensor emb = all.narrow(0, static_cast<int64_t>(c) * b, b);
      embs.push_back(emb * torch::tensor(std::sqrt(static_cast<double>(emb.size(-1))),
                                         torch::dtype(emb.scalar_type()).device(device_)));
      pads.push_back(masks[c].to(device_, torch::kBool).view({b, 1}).expand({b, n}));
      ar.insert(ar.end(), n, 0);
    }
  }
  const torch::Tensor ids = tokens.to(device_, torch::kInt64);
  embs.push_back(weights_.embed_tokens.index_select(0, ids.flatten()).view({b, l, -1}) *
                 std::sqrt(static_cast<double>(config_.text.hidden)));
  pads.push_back(token_masks.to(device_, torch::kBool));
  ar.insert(ar.end(), l, 1);  // every word its own block: causal language modelling
  for (torch::Tensor& e : embs) e = e.to(embs.back().scalar_type());
  const torch::Tensor h = torch::cat(embs, 1);
  const torch::Tensor pad = torch::cat(pads, 1);
  const torch::Tensor att = torch::tensor(ar, torch::kBool).to(device_).view({1, -1}).expand({b, -1});
  const torch::Tensor positions = torch::cumsum(pad.to(torch::kInt64), 1) - 1;
  Stream s{HookStream::kVlm, h, rope_tables(positions, config_.text.head_dim), {}, 0, &weights_.vlm_layers,
           config_.text.rms_norm_eps};
  run_layers(&s, nullptr, make_att_2d_masks(pad, att).logical_not().unsqueeze(1), nullptr, nullptr,
             HookContext{ForwardPass::kTrain},
             /*need_prefix_output=*/true);
  const torch::Tensor words = s.h.narrow(1, h.size(1) - l, l);
  const torch::Tensor normed = rms_norm(words, weights_.vlm_norm, config_.text.rms_norm_eps);
  return torch::matmul(normed, output_embedding().to(normed.scalar_type()).t()).to(torch::kFloat32);
}

}  // namespace vlascope
