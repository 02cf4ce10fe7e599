// Named activation points of the SmolVLA forward pass (TransformerLens style). One mechanism serves capture,
// ablation and steering: a hook receives the activation at its point and may read it, modify it in place or
// replace it; the forward pass continues with whatever the tensor holds afterwards.
//
// Names (stable; `i` is the layer index within its stack):
//
//   vision.layers.{i}.attn.pattern   [N, H, P, P]    vision-tower attention probabilities (N = batch × cameras)
//   vision.layers.{i}.mlp.post       [N, P, I]       GELU output, the input to fc2
//   vision.layers.{i}.resid.post     [N, P, D]
//   vlm.embed                        [B, Lp, D]      the assembled prefix (images ×√D, words ×√D, state)
//   vlm.layers.{i}.attn.pattern      [B, H, Lq, Lk]  softmax probabilities (rows: queries, columns: keys)
//   vlm.layers.{i}.attn.heads        [B, L, H·hd]    every head's output side by side (head h: columns h·hd …
//                                                    (h+1)·hd − 1), the input to o_proj: ablate a head here
//   vlm.layers.{i}.attn.out          [B, L, D]       after o_proj, before the residual add
//   vlm.layers.{i}.resid.mid         [B, L, D]       after the attention residual
//   vlm.layers.{i}.mlp.post          [B, L, I]       silu(gate(x)) ⊙ up(x): the input to down_proj, one value
//                                                    per FFN neuron (the coefficient of its value vector)
//   vlm.layers.{i}.mlp.out           [B, L, D]       after down_proj
//   vlm.layers.{i}.resid.post        [B, L, D]
//   expert.embed                     [B, T, De]      suffix tokens (action + time MLP), T = chunk_size
//   expert.layers.{i}.<same sites as vlm>            expert stream: attn.pattern rows are the T action tokens
//   expert.velocity                  [B, T, A]       action_out_proj output (the flow-matching velocity)
//
// When and on which rows each point fires:
//   prefix pass (inference, once per chunk): vision.*, vlm.*; Lq = Lk = Lp.
//   denoising step s (inference): expert.*; joint layers Lk = Lp + T (prefix keys then action keys), cross layers
//     Lk = Lp.
//   training forward (prefix and suffix together): vlm.* on the prefix rows, expert.* on the suffix rows; in joint
//     layers the pattern is that stream's rows of the shared softmax, Lk = Lp + T.
// Key columns always index the token table of policy/layout.h (prefix positions 0…Lp−1, then actions).
//
// Cost: a point nobody hooks costs one array lookup. The output of the last VLM layer is never read by the
// actions (smolvla.md §2.3), so its o_proj and MLP run only when a hook asks for one of their points.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace vlascope {

enum class HookStream : int8_t { kVision = 0, kVlm = 1, kExpert = 2 };
enum class HookSite : int8_t {
  kEmbed = 0,  // layer −1: vlm.embed, expert.embed
  kAttnPattern,
  kAttnHeads,
  kAttnOut,
  kResidMid,
  kMlpPost,
  kMlpOut,
  kResidPost,
  kVelocity,  // layer −1: expert.velocity
  kCount
};
enum class ForwardPass : int8_t { kPrefix = 0, kDenoise = 1, kTrain = 2 };
const char* stream_name(HookStream stream);
const char* site_name(HookSite site);  // "attn.pattern", "mlp.post", …
const char* pass_name(ForwardPass pass);

struct HookPoint {
  HookStream stream = HookStream::kVlm;
  int layer = -1;  // −1 for the per-stream points (embed, velocity)
  HookSite site = HookSite::kMlpPost;
  std::string name() const;  // "vlm.layers.3.mlp.post"
  bool operator==(const HookPoint& o) const { return stream == o.stream && layer == o.layer && site == o.site; }
};
// Parses a hook name; throws Error (naming the text) on anything that is not one of the names above.
HookPoint parse_hook_point(const std::string& name);
HookPoint mlp_post_point(HookStream stream, int layer);
HookPoint attn_pattern_point(HookStream stream, int layer);

// What the forward pass is doing when a hook fires.
struct HookContext {
  ForwardPass pass = ForwardPass::kPrefix;
  int step = -1;       // denoising step 0 … num_steps−1 (kDenoise), else −1
  double time = 1.0;   // flow-matching time of that step
  int query_begin = 0;  // attn.pattern: the first query row's sequence position (prefix rows start at 0, action
                        // rows at Lp)
  // Where the prefix's kinds of token are, in the action model's vlm.embed and layer passes (run_prefix, the
  // uncached velocity); −1 elsewhere (expert.embed, captions): rows [0, words_begin) are image tokens, [words_begin, state_index)
  // the instruction's words (padding included), state_index the state token; words_end is one past the last real
  // word (padding follows it), for batch element 0 — every element at inference, where a call has one task.
  int words_begin = -1, state_index = -1, words_end = -1;
};

// A hook may modify `activation` in place (same shape) or assign a new tensor of the same shape.
using HookFn = std::function<void(const HookContext& context, at::Tensor& activation)>;

class Hooks;

// One registered hook, for as long as this object lives (TransformerLens's `with model.hooks(...)`): destroying or
// resetting it removes the hook. Move-only; the Hooks it came from must outlive it. Every recorder, patcher and
// splice holds its hooks this way, so none can outlive its owner.
class HookHandle {
 public:
  HookHandle() = default;
  HookHandle(HookHandle&& other) noexcept;
  HookHandle& operator=(HookHandle&& other) noexcept;
  HookHandle(const HookHandle&) = delete;
  HookHandle& operator=(const HookHandle&) = delete;
  ~HookHandle() { reset(); }
  void reset();  // removes the hook now (no-op when empty)
  bool active() const { return hooks_ != nullptr; }

 private:
  friend class Hooks;
  HookHandle(Hooks* hooks, int id) : hooks_(hooks), id_(id) {}
  Hooks* hooks_ = nullptr;
  int id_ = 0;
};

class Hooks {
 public:
  Hooks();
  Hooks(const Hooks&) = delete;  // handles point here
  Hooks& operator=(const Hooks&) = delete;
  // Registers fn at a point (a name as above) while the returned handle lives. Several hooks on one point run in
  // registration order.
  [[nodiscard]] HookHandle add(const std::string& name, HookFn fn);
  [[nodiscard]] HookHandle add(const HookPoint& point, HookFn fn);
  // Removes every hook; outstanding handles become no-ops.
  void clear();
  bool empty() const { return entries_.empty(); }
  // Every registered point, for validation against a model's layer counts.
  std::vector<HookPoint> points() const;

  // Used by the forward pass.
  bool active(HookStream stream, int layer, HookSite site) const;
  void run(HookStream stream, int layer, HookSite site, const HookContext& context, at::Tensor& activation) const;

 private:
  friend class HookHandle;
  void remove(int id);
  struct Entry {
    int handle;
    HookPoint point;
    HookFn fn;
  };
  static int slot(HookStream stream, int layer, HookSite site);
  void rebuild();

  std::vector<Entry> entries_;
  std::vector<uint8_t> active_;  // by slot
  int next_handle_ = 1;
};

}  // namespace vlascope
