// Activation patching (interpretability.md; Action Atlas's causal tests): the activations at chosen hook points
// are recorded from a source forward pass — another prompt ("… lift it high"), another frame — and written into
// a target pass, on chosen token rows and denoising steps. How far the target's chunk then moves toward the
// source's says how much of the difference between the two runs those activations carry.
//
//   ActivationPatcher patcher(policy, {parse_patch_spec("vlm.layers.3.resid.post@words")});
//   patcher.record();  policy.predict_chunk(source, seed, 0);   // every spec's values kept
//   patcher.patch();   policy.predict_chunk(target, seed, 0);   // the spec's rows now hold the source's
//   patcher.off();                                              // (also on destruction)
//
// The control: random() writes, instead of the source's rows, the target's own rows plus a random vector whose
// norm, row by row, is that of (source − target) — a push of the same size in no particular direction.
// The same specs serve ablation: zero(), mean() (the mean over recorded frames, record_mean()) and resampling (record()
// on another frame, then patch()); at attn.heads a spec can name one head.
//
// The two runs must be the same batch and, for expert points, the same noise (predict_chunk with an explicit
// (seed, chunk) or the same NoiseId): the expert's activations depend on the noisy actions x_t. Rows are matched by
// role: images to images, the state token to the state token, the last real word to the last real word wherever each
// sits (prompts of different lengths make prefixes of different lengths). Words (and so all) are matched by position
// and need prompts of the same length — "… lift it high" and the neutral "… lift it" differ by a word, so patch
// images+last_word+state between them, or compare "… lift it high" with "… lift it low". (last_word is the last real
// token: the concept word with vlascope's word-level tokenizers; with a BPE tokenizer whose "\n" after the task is a
// token of its own, that newline — patch rows:<begin>-<end> there.)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "interp/neuron_set.h"
#include "policy/hooks.h"

namespace vlascope {

class DatasetReader;
class Policy;

struct PatchSpec {
  HookPoint point;                          // any point with one row per token: embed, attn.heads, attn.out,
                                            // resid.mid, mlp.post, mlp.out, resid.post, velocity (not attn.pattern)
  // VLM prefix rows, one or more kinds of token (images, words, state, last_word; all = images, words and state);
  // the expert's rows are its action tokens, always all of them.
  std::vector<TokenRegion> tokens = {TokenRegion::kAll};
  std::string camera;                       // with images: that camera's tokens only ("" = every camera)
  int row_begin = -1, row_end = -1;         // explicit prefix rows [begin, end) instead of kinds of token
  std::vector<int> steps;                   // expert: the denoising steps patched; empty = every step
  int head = -1;                            // attn.heads: that head's columns only (−1 = every column)
  std::string text;                         // as written (the name in reports)
};
// "<hook point>[@<rows>][@steps:<list>][@head:<h>]": rows are all | images | images:<camera> | words | last_word | state |
// rows:<begin>-<end> (end exclusive), or kinds joined by '+' ("images+last_word+state"); steps a list like 0,1,5-9.
// E.g. "vlm.layers.3.resid.post@last_word", "expert.layers.5.resid.post@steps:0-4", "vlm.embed@images:wrist",
// "expert.layers.2.attn.heads@head:1" (one attention head: at attn.heads only).
// Throws Error naming the text and the part.
PatchSpec parse_patch_spec(const std::string& text);
// Checks a spec against a policy: the layer exists in its stream, the camera exists, the steps are within
// num_steps, prefix rows and heads only where they exist. Error naming the spec and the field. Whether rows match
// between two prompts is known only from their prefixes: check_patch_between runs both once on a blank observation
// (a source pass recorded, a target pass patched), so a bad spec fails before an experiment, not in its middle.
void validate_patch_spec(const PatchSpec& spec, const Policy& policy);
void check_patch_between(Policy& policy, const std::vector<PatchSpec>& specs, const std::string& source_task,
                         const std::string& target_task);

// The rows of one pass a spec names, as [begin, begin + length) blocks: every action row at an expert point; at a
// VLM point the spec's kinds of token where `context` says they are (camera, explicit rows). What the patcher writes,
// for anything else that reads or writes a spec's rows (a sparse autoencoder's capture and splice).
std::vector<std::pair<int64_t, int64_t>> spec_rows(const PatchSpec& spec, const Policy& policy,
                                                   const HookContext& context, int64_t sequence_length);

class ActivationPatcher {
 public:
  // Validates every spec; registers its hooks (removed on destruction). Starts off.
  ActivationPatcher(Policy& policy, std::vector<PatchSpec> specs, uint64_t random_seed = 0);
  ~ActivationPatcher();
  ActivationPatcher(const ActivationPatcher&) = delete;
  ActivationPatcher& operator=(const ActivationPatcher&) = delete;

  // The next forward passes keep every spec's values (the prefix pass's, and each denoising step's), replacing
  // what was kept before.
  void record();
  // The next forward passes get the kept values written into the specs' rows: the specs listed (indices into
  // specs()), or all of them. A pass the recording has no values for (another batch size, a step or pass the source
  // did not run) is an Error naming the spec.
  void patch(std::vector<int> which = {});
  // The control: the target's rows plus a random vector of the norm of (source − target), row by row.
  void random(std::vector<int> which = {});
  // Ablations, without a source pass: the specs' rows get 0, or their mean over what record_mean() saw.
  void zero(std::vector<int> which = {});
  // The next forward passes add to each spec's mean activation — per sequence position, and per denoising step at
  // expert points, averaged over the batch rows and the passes — replacing what an earlier record_mean() kept;
  // mean() writes each row's own mean into it (so the passes must have prefixes of one length: one instruction).
  // Resample ablation is record() on another frame, then patch().
  void record_mean();
  void mean(std::vector<int> which = {});
  // Nothing happens in the forward passes (the recording is kept).
  void off();
  // Restarts the random control's draws: one seed for the whole batch, or one per batch row (each row then gets
  // the same push whichever rows share its call).
  void reseed(uint64_t seed);
  void reseed_rows(const std::vector<uint64_t>& seeds);

  const std::vector<PatchSpec>& specs() const { return specs_; }
  // Forward passes written into since the last record() (per spec), for checks that a patch happened.
  const std::vector<int>& writes() const;
  size_t bytes() const;  // memory of the recording

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<PatchSpec> specs_;
};

// One spec per layer of each stream listed ("vlm", "expert") at `site`, every step: the layer sweep. VLM specs patch
// `vlm_rows` (the rows part of a spec: "all", "images+last_word+state", …).
std::vector<PatchSpec> layer_patch_specs(const Policy& policy, const std::vector<std::string>& streams,
                                         HookSite site = HookSite::kResidPost, const std::string& vlm_rows = "all");
// One spec per expert layer and denoising step at `site` ("expert.layers.3.resid.post@steps:7"), layer by layer, steps
// in order: which step of the flow the source's behaviour passes through.
std::vector<PatchSpec> step_patch_specs(const Policy& policy, HookSite site = HookSite::kResidPost);

// ---- the open-loop study: prompt patching on recorded frames ------------------------------------------------

// Every frame of the dataset's first `episodes` successful episodes (every frame_stride-th) runs three times under
// the same noise — the source prompt, the target prompt, and the target prompt with one spec patched from the
// source (and once more with the random control) — and each patch is scored by how far it moves the target's chunk
// toward the source's.
struct PatchStudyOptions {
  std::string source_task = "pick up the cube and lift it high";
  std::string target_task = "pick up the cube and lift it";
  int episodes = 8;
  int frame_stride = 10;
  uint64_t seed = 0;           // frame f's noise is (seed, f) in every run of that frame
  bool random_control = true;
  int bootstrap = 1000;        // resamples of the frames for the intervals
  // Between episodes instead of prompts (both set, e.g. "high" and "low"): the frames of the first `episodes`
  // successful target-variant episodes (every frame_stride-th) get their activations from the k-th successful
  // source-variant episode's frame in the same task phase at the same fraction of it; both run under target_task
  // (source_task unused). Which layers and rows carry what makes the two demonstrations act differently.
  std::string source_variant, target_variant;
};
// The frames a study runs: (source episode, frame) → (target episode, frame), its frame on itself between prompts.
struct PatchFramePair {
  std::pair<int, int> source, target;
};
std::vector<PatchFramePair> patch_frame_pairs(const DatasetReader& dataset, const PatchStudyOptions& options);
struct PatchEffect {
  std::string spec;
  // Σ_f (p − t)·(s − t) / Σ_f |s − t|² over frames f, chunks flattened (LeRobot units): the share of the
  // source − target difference the patch moves over (1: all of it, 0: none, < 0: away from the source).
  double moved = 0, moved_low = 0, moved_high = 0;  // with its 95% percentile-bootstrap interval over frames
  double random_moved = 0, random_low = 0, random_high = 0;  // the norm-matched random patch (0 when not run)
  double remaining = 0;           // Σ_f |p − s|² / Σ_f |s − t|²: 0 when the patch gives the source's chunk
  double max_abs_to_source = 0;   // largest |p − s| over every frame and action value
};
struct PatchStudy {
  int frames = 0;  // frame pairs
  double mean_distance = 0;  // mean over frames of |s − t| (the whole chunk, LeRobot units)
  std::vector<PatchEffect> effects;  // one per spec, in order
};
PatchStudy run_patch_study(Policy& policy, const DatasetReader& dataset, const std::vector<PatchSpec>& specs,
                           const PatchStudyOptions& options);

}  // namespace vlascope
