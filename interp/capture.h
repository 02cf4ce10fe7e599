// Capture and intervention on a running policy, through the named activation points of policy/hooks.h. The same
// hooks serve all three: recording attention maps, recording FFN neuron activations, and steering neurons.
// Nothing is recorded when no recorder exists, and recording never changes the actions (it only copies).
//
//   AttentionRecorder rec(policy, spec);        // hooks registered
//   run_rollout(robot, policy, seed);           // every chunk's maps land in rec.chunks() (a bounded ring)
//   const CapturedChunk& c = rec.chunks().back();
//   const CapturedAttention* a = c.find(HookStream::kVlm, 3);   // layer 3 of the prefix pass
//   // a->pattern is [heads, rows, keys]; a->query_positions says which prefix positions the rows are,
//   // c.layout says what every key is (camera + grid cell, word, state, action).
//
//   Steering steer(policy.model(), sets, {{"high", InterventionOp::kSet, 4.0}});   // active while it lives
//
// Headers stay torch-free; the .cpp converts tensors to the plain structs of interp/attention_metrics.h.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "interp/attention_metrics.h"
#include "interp/neuron_set.h"
#include "policy/hooks.h"
#include "policy/layout.h"

namespace vlascope {

class Policy;
class SmolVLA;
struct SmolVLAConfig;

// ---- attention -----------------------------------------------------------------------------------------

struct AttentionCaptureSpec {
  bool vlm = true;      // VLM self-attention of the prefix pass (once per chunk)
  bool expert = true;   // the expert's joint and cross layers (every denoising step kept)
  bool vision = false;  // the vision tower (big: cameras × heads × P²)
  std::vector<int> vlm_layers, expert_layers, vision_layers;  // empty = all
  std::vector<int> heads;  // heads to keep; empty = all
  bool fuse_heads = false;  // keep one head: the fusion of the kept heads
  HeadFusion fusion = HeadFusion::kMean;
  std::vector<int> steps;  // denoising steps to keep; empty = all
  // VLM rows to keep: every prefix position, or only the last word and the state token (the usual queries).
  enum class VlmQueries { kAll, kLastWordAndState } vlm_queries = VlmQueries::kAll;
  bool mean_over_actions = false;  // expert: keep the mean over the chunk's action rows instead of every row
  bool mean_over_steps = false;    // expert: keep one map per layer, the mean over the kept steps
  int max_chunks = 16;             // oldest chunks are dropped beyond this (bounded memory on long rollouts)
};

// What the live view (`rollout/eval --live`) keeps: the last word's and the state token's VLM rows and the
// expert's maps averaged over action rows and denoising steps, for the latest chunk only — cheap enough to
// capture on every chunk of a 30 Hz loop (bench_shipped measures it).
inline AttentionCaptureSpec live_view_capture_spec() {
  AttentionCaptureSpec spec;
  spec.vlm_queries = AttentionCaptureSpec::VlmQueries::kLastWordAndState;
  spec.mean_over_actions = true;
  spec.mean_over_steps = true;
  spec.max_chunks = 1;
  return spec;
}

struct CapturedAttention {
  HookPoint point;                   // which layer
  ForwardPass pass = ForwardPass::kPrefix;
  int step = -1;                     // denoising step (−1 for the prefix, or when averaged over steps)
  int steps_averaged = 1;
  double time = 1;                   // flow-matching time of the step
  std::vector<int> heads;            // original head indices of the pattern's heads ({−1} when fused)
  std::vector<int> query_positions;  // sequence position of every row (−1 for a mean over action rows)
  AttentionPattern pattern;          // [heads, rows, keys]; keys index CapturedChunk::layout
};

struct CapturedChunk {
  int index = 0;        // chunks since the recorder started
  PrefixLayout layout;  // the token table of this chunk's prefix
  std::vector<CapturedAttention> maps;
  // The map of a layer (and denoising step; −1 = the first found). nullptr when not captured.
  const CapturedAttention* find(HookStream stream, int layer, int step = -1) const;
  std::vector<const CapturedAttention*> all(HookStream stream, int layer) const;  // every step
};

class AttentionRecorder {
 public:
  AttentionRecorder(Policy& policy, AttentionCaptureSpec spec = {});
  AttentionRecorder(const AttentionRecorder&) = delete;
  AttentionRecorder& operator=(const AttentionRecorder&) = delete;

  const std::deque<CapturedChunk>& chunks() const { return chunks_; }
  void clear() { chunks_.clear(); }
  size_t bytes() const;  // memory held by the captured maps
  const AttentionCaptureSpec& spec() const { return spec_; }
  // While paused nothing is recorded (extra forward passes of a causal check, for instance).
  void set_paused(bool paused) { paused_ = paused; }

 private:
  void on_pattern(HookStream stream, int layer, const HookContext& context, const void* tensor);
  Policy& policy_;
  AttentionCaptureSpec spec_;
  std::vector<HookHandle> handles_;
  std::deque<CapturedChunk> chunks_;
  int next_index_ = 0;
  bool paused_ = false;
};

// ---- neuron activations --------------------------------------------------------------------------------

// Per chunk, the FFN neuron coefficients (mlp.post) of every captured layer — or the residual stream after it
// (resid.post), when the recorder is built for that site — reduced over positions:
//   VLM: the mean over the prefix's valid positions, over its valid image rows, over its valid word rows, and the
//        values at the state token and at the instruction's last real token;
//   expert: the mean over the chunk's action tokens and all denoising steps.
struct ChunkActivations {
  int index = 0;
  std::map<int, std::vector<float>> vlm_mean, vlm_images, vlm_words, vlm_state, vlm_last_word, expert_mean;
                                                                  // layer → [channels]
};

class ActivationRecorder {
 public:
  // Empty layer lists = every layer of the stream.
  ActivationRecorder(Policy& policy, bool vlm = true, bool expert = true, std::vector<int> vlm_layers = {},
                     std::vector<int> expert_layers = {}, ChannelSite site = ChannelSite::kMlpPost);
  ActivationRecorder(const ActivationRecorder&) = delete;
  ActivationRecorder& operator=(const ActivationRecorder&) = delete;
  const std::vector<ChunkActivations>& chunks() const { return chunks_; }
  void clear() { chunks_.clear(); }

 private:
  Policy& policy_;
  std::vector<HookHandle> handles_;
  std::vector<ChunkActivations> chunks_;
  std::map<int, int> expert_counts_;  // layer → steps accumulated in the current chunk
};

// ---- steering ------------------------------------------------------------------------------------------

// While it lives, overrides (kSet), shifts (kAdd) or scales (kScale) the chosen channels' values (mlp.post, or
// resid.post for a residual direction) at every token position of their region, in the passes and steps each Intervention names (Häon et al.: kSet with a constant α; a weighted
// set, a direction, applies α × each channel's weight). Layers
// without a chosen neuron get no hook, so an empty steering costs nothing. Validates the sets against the model
// (Error naming the set and entry).
class Steering {
 public:
  Steering(SmolVLA& model, const std::vector<NeuronSet>& sets, const std::vector<Intervention>& interventions);
  Steering(const Steering&) = delete;
  Steering& operator=(const Steering&) = delete;
  int hooked_layers() const { return static_cast<int>(handles_.size()); }
  // Closed-loop steering: batch row b of the next forward passes gets its interventions' α multiplied by gains[b]
  // (interp/closed_loop.h sets one per episode of a batched call); empty = 1 for every row. A pass whose batch is
  // not gains.size() rows is an Error.
  void set_row_gains(std::vector<float> gains) { *row_gains_ = std::move(gains); }

 private:
  SmolVLA& model_;
  std::vector<HookHandle> handles_;
  std::shared_ptr<std::vector<float>> row_gains_ = std::make_shared<std::vector<float>>();
};

// The FFN shapes of a model, for neuron-set validation and random control sets.
ModelShape model_shape(const SmolVLAConfig& config);

}  // namespace vlascope
