// Sparse autoencoders on the policy's activations (issue 17; Gao et al. 2024's TopK SAE, as Action Atlas trains them
// on SmolVLA): x ≈ b_dec + Σ_{i ∈ top-k} f_i(x) d_i with f = ReLU(TopK(W_enc (x − b_dec) + b_enc)) and unit-norm
// decoder rows d_i — a basis of "features" in which a hook point's activations are sparse.
//
//   sae capture   recorded frames or fresh rollouts → activation store on disk (interp/activation_store.h), rows
//                 chosen as in a PatchSpec ("vlm.layers.2.resid.post@images+last_word+state", "expert.layers.4.mlp.post")
//   Sae::train    Adam on minibatches drawn from the store (mapped, so not bounded by memory), AuxK loss on dead
//                 features, decoder rows renormalised after every step; inputs scaled so E|x|² = width
//   evaluate      fraction of variance explained on held-out episodes, dead and dense features
//   SaeSplice     hooks the SAE into the policy: the rows replaced by their reconstruction (does the policy still
//                 work on what the SAE keeps?), by the data mean (the reference), or one feature clamped
//   features      per feature: frequency, top-activating rows, mean per task phase, high vs low and fast vs slow
//                 demonstrations (Hedges' g over episodes), the logit lens of its decoder direction (VLM)
//
// Saved as <dir>/sae.safetensors (W_enc [width, features], b_enc, W_dec [features, width], b_dec, input_mean) with
// <dir>/sae.json (sizes, k, input scale, the hook spec, where the activations came from, how it was trained).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/image.h"
#include "interp/activation_store.h"
#include "interp/neuron_set.h"
#include "interp/rollout.h"

namespace vlascope {

class DatasetReader;
class Policy;
class Robot;

struct SaeConfig {
  std::string hook;             // the PatchSpec text of the rows it reads and writes
  int64_t width = 0;            // input width
  int64_t features = 0;         // dictionary size
  int k = 32;                   // active features per row
  double input_scale = 1;       // the SAE sees x · input_scale (E|x|² = width on the training rows)
  // Where it came from and how it was trained (written to sae.json, not needed to run it).
  std::string store, checkpoint, checkpoint_digest;
  int64_t steps = 0, batch = 0, train_rows = 0;
  double lr = 0, aux_coef = 0;
  int aux_k = 0, holdout = 0;
  bool balance_kinds = false;
  uint64_t seed = 0;
};

struct SaeTrainOptions {
  int64_t features = 0;  // 0: 8 × width
  int k = 32;
  int64_t steps = 4000;
  int batch = 1024;
  double lr = 1e-3;      // Adam; linear decay to 0 over the last fifth
  int aux_k = 0;         // 0: width / 2
  double aux_coef = 1.0 / 32;
  int64_t dead_after = 200000;  // a feature not active on this many training rows counts as dead (for AuxK)
  int holdout = 10;      // every 10th episode held out for evaluation
  // Minibatches draw each kind of row (image, word, state, action) equally often, and no padding rows: a VLM prefix
  // is 94% image rows, and a dictionary fit to the natural mix keeps the few word and state rows — the ones the
  // actions read — worst.
  bool balance_kinds = true;
  uint64_t seed = 0;
  int threads = 0;       // intra-op threads (0: leave them)
};

struct SaeTrainReport {
  double seconds = 0, samples_per_second = 0;
  std::vector<std::pair<int64_t, double>> curve;  // (step, fraction of variance unexplained on that minibatch)
  double dead_fraction = 0;                       // dead by the AuxK criterion at the end
  int64_t train_rows = 0, heldout_rows = 0;
};

struct SaeEvaluation {
  int64_t rows = 0;
  double variance_explained = 0;  // 1 − Σ|x − x̂|² / Σ|x − mean|² (held-out rows, input units)
  double mean_l0 = 0;             // active features per row (≤ k)
  int dead = 0, dense = 0;        // never active on these rows; active on more than 10% of them
  std::vector<double> frequency;  // per feature: share of rows it is active on
  // The same per kind of row (image, word, state, action): a VLM store is mostly image rows, so the overall number
  // can hide a badly kept state or word row — the rows the actions depend on most.
  struct Part {
    int64_t rows = 0;
    double variance_explained = 0;
  };
  std::map<RowKind, Part> by_kind;
};

class Sae {
 public:
  Sae();
  ~Sae();
  Sae(Sae&&) noexcept;
  Sae& operator=(Sae&&) noexcept;

  static Sae train(const ActivationStore& store, const SaeTrainOptions& options, SaeTrainReport* report = nullptr);
  // Error naming the file and field on a missing or malformed SAE.
  static Sae load(const std::string& dir);
  void save(const std::string& dir) const;  // atomic per file

  const SaeConfig& config() const;
  // rows × width values (input units) → for each row, its active features and their activations, largest first.
  struct Code {
    std::vector<int32_t> features;
    std::vector<float> values;
  };
  std::vector<Code> encode(const float* x, int64_t rows) const;
  // rows × width → the reconstructions, rows × width.
  std::vector<float> reconstruct(const float* x, int64_t rows) const;
  // Feature i's decoder direction in input units (what one unit of activation adds to the activation).
  std::vector<float> decoder_direction(int feature) const;
  const std::vector<float>& input_mean() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

SaeEvaluation evaluate_sae(const Sae& sae, const ActivationStore& store, const std::vector<int64_t>& rows);

// ---- capture --------------------------------------------------------------------------------------------------

struct CaptureOptions {
  std::string spec;       // PatchSpec text: the hook point and rows
  int episodes = 0;       // the dataset's first episodes (0: all)
  int stride = 5;         // every n-th frame
  std::string prompt;     // the instruction every frame runs with ("": each episode's own)
  uint64_t seed = 0;      // the k-th frame run gets the noise (seed, k) (expert activations depend on it)
  std::string checkpoint;  // recorded in the store (with its weights' digest), not loaded here
};
// Runs every chosen frame through the policy and writes the spec's rows (at expert points, every denoising step the
// spec names) to an activation store in `out_dir`, published when the last frame is done. Returns its info.
StoreInfo capture_activations(Policy& policy, const DatasetReader& dataset, const CaptureOptions& options,
                              const std::string& out_dir);

// The same on fresh closed-loop rollouts (sim or the real arm), one at a time: episode k runs seed first_seed + k under
// prompts[k % n] (its name is the rows' variant, so "high=… lift it high;low=… lift it low" gives a store whose high
// vs low statistics compare what the prompts make the policy do). A row's frame is the step of its policy call; its
// phase comes from the episode's lift segment (reach, grasp, lift, hold), found when the episode ends.
struct RolloutCaptureOptions {
  std::string spec;
  int episodes = 0;
  uint64_t first_seed = 0;
  std::vector<std::pair<std::string, std::string>> prompts;  // (variant, prompt)
  RolloutOptions rollout;  // its task is replaced by the prompt
  std::string checkpoint;
};
StoreInfo capture_rollout_activations(Policy& policy, Robot& robot, const RolloutCaptureOptions& options,
                                      const std::string& out_dir);

// ---- splicing into the policy ----------------------------------------------------------------------------------

// While it lives, the SAE's rows (its hook spec) of every forward pass are rewritten as the mode says.
class SaeSplice {
 public:
  enum class Mode {
    kOff,
    kReconstruct,  // x ← x̂ (the policy runs on what the SAE keeps)
    kMean,         // x ← the training rows' mean (the reference: the policy with this information removed)
    kClamp,        // x ← x + (value − f_i(x)) d_i for each clamped feature (the SAE's error kept)
  };
  SaeSplice(Policy& policy, const Sae& sae);
  ~SaeSplice();
  SaeSplice(const SaeSplice&) = delete;
  SaeSplice& operator=(const SaeSplice&) = delete;
  void set_mode(Mode mode);
  // kClamp's features and values (activation units of the SAE, see SaeFeature::max_activation).
  void set_clamp(std::vector<std::pair<int, float>> features);
  // The kinds of row the mode acts on (VLM SAEs), some of those the SAE reads; empty: all of them. A feature that
  // fires on the state row alone is clamped there, not on every image row.
  void set_rows(const std::vector<TokenRegion>& rows);
  int64_t rows_written() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A splice's setting as the commands write it: reconstruct, mean, or clamp:F=V,F=V (feature F held at V), each
// optionally on some kinds of row, '@'-appended: clamp:701=2@state. Errors name `where` (the option or condition the
// text came from).
struct SpliceSetting {
  SaeSplice::Mode mode = SaeSplice::Mode::kReconstruct;
  std::vector<std::pair<int, float>> clamp;  // kClamp: (feature, value)
  std::vector<TokenRegion> rows;             // empty: every row the SAE reads
};
SpliceSetting parse_splice_setting(const std::string& text, const std::string& where);
// Sets the splice's mode, clamped features and rows (an Error when a feature or row is not one of the SAE's).
void apply_splice_setting(SaeSplice& splice, const SpliceSetting& setting);

// Open loop on recorded frames: each frame's chunk with the SAE spliced in and with the mean written instead,
// against the untouched chunk under the same noise (mean |Δ| over the chunk, LeRobot units).
struct SpliceError {
  int frames = 0;
  double spliced = 0, mean_ablated = 0;  // mean |chunk − original|
  double ratio() const { return mean_ablated > 0 ? spliced / mean_ablated : 0; }
};
SpliceError splice_action_error(Policy& policy, const Sae& sae, const DatasetReader& dataset,
                                const CaptureOptions& frames);

// ---- features --------------------------------------------------------------------------------------------------

struct SaeFeature {
  int feature = 0;
  double frequency = 0, mean_active = 0, max_activation = 0;
  std::vector<std::pair<float, int64_t>> top_rows;  // (activation, store row), largest first
  std::vector<double> phase_mean;                   // mean activation per dataset Phase (0 … 4), all rows
  double lift_d = 0;         // per episode: lift-phase mean − other phases' mean; mean / sd (paired d_z)
  double high_low_g = 0, high_low_p = 1;  // per-episode lift-phase means of high vs low episodes: Hedges' g, Welch p
  double fast_slow_g = 0, fast_slow_p = 1;  // per-episode means over every phase, fast vs slow
  std::vector<std::string> top_tokens;      // VLM features: the logit lens of the decoder direction
};
std::vector<SaeFeature> feature_statistics(const Sae& sae, const ActivationStore& store, int top_rows = 8);
// Fills top_tokens for VLM SAEs (nothing for expert ones): the decoder direction in the residual basis (through
// down_proj at mlp.post) through the output embedding, special tokens left out.
void label_with_tokens(std::vector<SaeFeature>& stats, const Sae& sae, Policy& policy, int k = 10);
// A feature's top-activating frames side by side, each captioned with its activation, episode, frame and phase: the
// camera image at 2× with the patch the feature fired on outlined (image rows; the model input is input_width ×
// input_height, resized with padding), or the first camera's image for word, state and action rows.
Image feature_frames_figure(const SaeFeature& stats, const ActivationStore& store, const DatasetReader& dataset,
                            int input_width, int input_height, int max_frames = 6);

}  // namespace vlascope
