// Finding neurons that carry concepts (interpretability.md §1), two ways:
//
//   lexical: each FFN value vector (a column of down_proj.weight) projected onto the vocabulary through the
//            language head (raw, as Häon et al.; or through the final norm, as Geva et al.), its top tokens, and a
//            search by concept words: where a concept's tokens rank, how strongly the vector promotes them
//            (z-score of the logit over the vocabulary), and the semantic neighbourhood (cosine between the
//            softmax-weighted mean embedding of its top tokens and the concept words' mean embedding).
//   contrastive: the neurons' coefficients (mlp.post) on recorded frames of two variants that share the
//            instruction (high vs low, fast vs slow), in the same task phase, compared per neuron: Hedges' g and
//            Welch's t over per-episode means, in the VLM and the action expert.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "dataset/dataset.h"
#include "hardware/units.h"
#include "interp/neuron_set.h"

namespace vlascope {

class KinematicModel;
class Policy;
class SmolVLA;
class Tokenizer;
struct PolicyInput;

// The policy's input for a recorded frame: its images and state, with the instruction `task`.
PolicyInput frame_input(const Frame& frame, const std::string& task);
// Every stride-th frame (from frame 0) of the dataset's first `episodes` successful episodes, in order, as
// (episode, frame); an Error "<what>: the dataset <dir> has no successful episode" when there is none.
std::vector<std::pair<int, int>> successful_episode_frames(const DatasetReader& dataset, int episodes, int stride,
                                                           const std::string& what);
// The dataset's first `at_most` successful episodes of a variant ("high", …), in order.
std::vector<int> successful_variant_episodes(const DatasetReader& dataset, const std::string& variant,
                                             int at_most = std::numeric_limits<int>::max());

struct NeuronTokens {
  int layer = 0, index = 0;
  std::vector<int64_t> ids;         // top-k token ids, best first (special tokens excluded)
  std::vector<std::string> tokens;  // their text pieces
  std::vector<float> logits;
};
// Every VLM neuron's top-k tokens.
std::vector<NeuronTokens> value_vector_top_tokens(const SmolVLA& model, const Tokenizer& tokenizer, int k,
                                                  bool final_norm);

// The logit lens of any direction in the VLM's residual basis ([hidden] values): its top-k tokens through the
// output embedding (raw, or after the final norm), special tokens left out, best first.
std::vector<std::string> direction_top_tokens(const SmolVLA& model, const Tokenizer& tokenizer,
                                              const std::vector<float>& direction, int k, bool final_norm);

struct ConceptScore {
  int layer = 0, index = 0;
  int best_rank = 0;       // 1 = the concept's best token is the vector's top token
  std::string best_token;  // that token
  double z = 0;            // its logit's z-score over the vocabulary
  double semantic = 0;     // cosine of the top-k weighted mean embedding with the concept embedding
  bool exact = false;      // best_rank ≤ k
  std::vector<std::string> top_tokens;  // the value vector's top-k tokens, best first (what it writes)
};
// Every VLM neuron scored for a concept (its words; unknown words are an Error naming them), sorted by z.
std::vector<ConceptScore> search_concept(const SmolVLA& model, const Tokenizer& tokenizer,
                                         const std::vector<std::string>& words, int k, bool final_norm);
// The scores whose neuron promotes the opposite concept less (a lower z) than this one; order kept. A value vector
// whose top tokens hold both "fast" and "slowly" carries the slot the two words fill, not either concept.
// by_semantic: compare the semantic cosines instead (a neuron nearer the opposite concept's words is left out).
std::vector<ConceptScore> without_opposite(const std::vector<ConceptScore>& scores,
                                           const std::vector<ConceptScore>& opposite, bool by_semantic = false);
// The scores of the neurons in the given layers (every layer when empty), in their order.
std::vector<ConceptScore> only_layers(const std::vector<ConceptScore>& scores, const std::vector<int>& layers);
// The first n scored neurons as a set (exact hits first, then by z). Each neuron's note holds its top tokens.
NeuronSet concept_set(const std::vector<ConceptScore>& scores, const std::string& name, int n, const std::string& model,
                      const std::vector<std::string>& words);
// The grouping of the steering papers (Häon et al.): the n value vectors whose semantic embedding (the
// softmax-weighted mean of their top-k tokens' input embeddings) is the nearest, by cosine, to the concept words'
// mean embedding. Catches a neuron that writes "elevated, aloft, raised" though none of the listed words.
NeuronSet semantic_set(const std::vector<ConceptScore>& scores, const std::string& name, int n,
                       const std::string& model, const std::vector<std::string>& words);
// The semantic embedding of value vectors from their vocabulary logits: logits [I, V] (row-major), embeddings
// [V, D]; for each row the softmax over its top-k logits weights those tokens' embeddings. Returns [I, D].
// Tokens whose logit is −∞ (special tokens) are never among the top k.
std::vector<std::vector<float>> semantic_embeddings(const std::vector<std::vector<float>>& logits,
                                                    const std::vector<std::vector<float>>& embeddings, int k);

struct ContrastOptions {
  std::string variant_a, variant_b;  // e.g. "high", "low"
  Phase phase = Phase::kLift;        // frames of this expert phase
  int episodes_per_variant = 12;
  int frame_stride = 3;  // every n-th frame of the phase
  std::string task;      // "" = each episode's instruction
  bool vlm = true, expert = true;
  uint64_t seed = 0;  // noise of the forward passes
};
struct NeuronContrast {
  Stream stream = Stream::kVlm;
  int layer = 0, index = 0;
  double mean_a = 0, mean_b = 0;
  double g = 0;  // Hedges' g of a vs b (positive: higher in a)
  double t = 0, p = 1;
  int n_a = 0, n_b = 0;  // episodes
};
// All neurons, sorted by |g| (largest first). Progress on stderr.
std::vector<NeuronContrast> contrast_neurons(Policy& policy, const DatasetReader& dataset,
                                             const ContrastOptions& options);
// The n neurons with the largest g in the given direction (+1: higher in a; −1: higher in b).
NeuronSet contrast_set(const std::vector<NeuronContrast>& contrasts, const std::string& name, int n, int sign,
                       const std::string& model, const ContrastOptions& options);

// Choice contrast: what the model itself decides. With one instruction for high and low (fast and slow)
// demonstrations, nothing in a frame says which variant to perform; the flow-matching sampler picks one through its
// noise. So each recorded frame is sampled with several noise seeds, the chunks are ranked by what they would do
// (how far the end effector rises over the chunk, or how fast it moves), and every neuron's coefficient in the upper
// half of a frame's samples is compared with the lower half, paired by frame. Only the action expert sees the noise,
// so only its neurons can differ; the VLM is not recorded.
enum class ChunkOutcome { kRise, kSpeed };
const char* chunk_outcome_name(ChunkOutcome outcome);  // "rise", "speed"
// rise: the highest end-effector z over the chunk's actions minus the z at the observed state (m); speed: the mean
// end-effector displacement per action step from the state through the chunk (m/step). Actions and state in LeRobot
// units.
double chunk_outcome(const std::vector<std::vector<float>>& chunk, const std::vector<float>& state,
                     KinematicModel& kinematics, const UnitMapping& units, ChunkOutcome outcome);

struct ChoiceContrastOptions {
  std::vector<ChunkOutcome> outcomes = {ChunkOutcome::kRise};  // each ranks the same sampled chunks
  Phase phase = Phase::kLift;  // frames of this expert phase, from successful episodes of every variant
  int episodes = 16;
  int frame_stride = 6;
  int samples_per_frame = 8;  // noise seeds per frame (≥ 4)
  std::string task;           // "" = each episode's instruction
  UnitMapping units;
  uint64_t seed = 0;
};
struct ChoiceContrast {
  // Expert neurons, sorted by |g|. mean_a / mean_b: the coefficient in the upper / lower half of the samples by
  // outcome; g: the paired effect size d_z (mean of the per-frame differences over their sd); t, p: paired t-test;
  // n_a = n_b = frames.
  std::vector<NeuronContrast> neurons;
  ChunkOutcome outcome = ChunkOutcome::kRise;
  int frames = 0;
  double outcome_mean = 0;
  double outcome_sd_within = 0;   // sd of the outcome across noise seeds of one frame (pooled): the choice's spread
  double outcome_sd_between = 0;  // sd of the per-frame mean outcome across frames (the observation's part, plus
                                  // the seeds' sd / √samples)
};
// One contrast per outcome of `options.outcomes`, in that order, all from one pass of sampled chunks.
std::vector<ChoiceContrast> contrast_neurons_by_choice(Policy& policy, const DatasetReader& dataset,
                                                       KinematicModel& kinematics,
                                                       const ChoiceContrastOptions& options);
// The n neurons with the largest g in the given direction (+1: higher when the chunk rises more / moves faster).
NeuronSet choice_set(const ChoiceContrast& contrast, const std::string& name, int n, int sign, const std::string& model,
                     const ChoiceContrastOptions& options);

// The n neurons with the largest |g| as a direction: each weighted by its upper − lower mean coefficient, so
// `add` with α = 1 moves every channel by the difference between the model's higher- and lower-rising (faster and
// slower) chunks, and α = −1 by the opposite (contrastive activation addition in the neuron basis).
NeuronSet choice_direction(const ChoiceContrast& contrast, const std::string& name, int n, const std::string& model,
                           const ChoiceContrastOptions& options);

// Prompt-difference direction (contrastive activation addition; the positive control of issue 14): the same
// recorded frames run with two prompts that differ in one concept ("… lift it high" vs "… lift it low"); for every
// VLM neuron of the chosen layers, the mean over frames of its coefficient (mlp.post) under prompt a minus under
// prompt b — averaged over every prefix row, and separately over the image rows, the word rows and the state row.
// The words change their own rows most; a direction averaged over all rows and added at all rows spreads that
// change thin, one measured per kind of row and added there puts it back where it was.
// At site kResidPost the same is measured on the residual stream after each layer: what the prompt changes there
// includes the word embedding and the attention outputs, which mlp.post does not see. A residual direction is
// applied at one layer (only_layer): the difference at layer l already carries the earlier layers' part of it.
struct PromptDirectionOptions {
  std::string prompt_a, prompt_b;
  std::vector<int> vlm_layers;  // empty = every VLM layer
  ChannelSite site = ChannelSite::kMlpPost;
  int episodes = 8;             // successful episodes, any variant
  int frame_stride = 10;        // every n-th frame of each episode, all phases
  uint64_t seed = 0;            // noise of the forward passes (the VLM does not see it)
};
struct PromptDirection {
  struct Part {
    std::map<int, std::vector<double>> difference;  // layer → per channel: mean over frames of (a − b)
    std::map<int, std::vector<double>> spread;      // layer → per channel: sd across frames of the coefficient under a
    double difference_norm = 0;  // L2 norm of every difference together
    double spread_norm = 0;      // L2 norm of every spread together: the push's size against the natural range
  };
  int frames = 0;
  std::map<TokenRegion, Part> parts;  // kAll (the mean over every valid row), kImages, kWords, kState, kLastWord
  const Part& all() const { return parts.at(TokenRegion::kAll); }
};
PromptDirection prompt_difference(Policy& policy, const DatasetReader& dataset, const PromptDirectionOptions& options);
// The same at several sites from one set of forward passes (options.site ignored): what `vlascope neurons` measures
// at mlp.post and resid.post without running every frame twice.
std::map<ChannelSite, PromptDirection> prompt_differences(Policy& policy, const DatasetReader& dataset,
                                                         const PromptDirectionOptions& options,
                                                         const std::vector<ChannelSite>& sites);
// The direction restricted to one layer (Error when it was not measured there).
PromptDirection only_layer(const PromptDirection& direction, int layer);
// The direction as a weighted set of channels at options.site: the n channels with the largest |difference|
// (n ≤ 0: every channel of the layers), each weighted by its difference, from the parts of `regions`, each entry
// acting on its own rows (NeuronRef::tokens): {kAll} (the default) acts on every row; {kImages, kWords, kState}
// puts each kind of row's change back on those rows; with kLastWord instead of kWords, the instruction's last
// token carries what the prompts' last tokens (their concept words) differ by.
NeuronSet prompt_direction_set(const PromptDirection& direction, const std::string& name, int n,
                               const std::string& model, const PromptDirectionOptions& options,
                               const std::vector<TokenRegion>& regions = {TokenRegion::kAll});
// Word directions (the rung between the prompt's own activations and single neurons): the input embedding of
// word a minus word b, scaled by √hidden as SmolVLA scales its language rows — what swapping b for a changes in
// that row's input, read straight from the vocabulary with no forward pass. Each word must be one token (inside a
// sentence, i.e. after a space, or as written); an Error names the one that is not.
std::vector<float> word_difference(const SmolVLA& model, const Tokenizer& tokenizer, const std::string& a,
                                   const std::string& b);
// What a set of VLM FFN neurons writes into the residual stream per unit of α: Σ weight · value vector (the
// neurons' columns of down_proj), whatever their layers — the residual stream is one space. An Error names an
// entry that is not a VLM mlp.post channel of the model.
std::vector<float> set_write_direction(const SmolVLA& model, const NeuronSet& set);
double norm(const std::vector<float>& a);                                 // Euclidean
double cosine(const std::vector<float>& a, const std::vector<float>& b);  // 0 when either is zero
// A [hidden] direction as a weighted set of the residual channels after `layer` (site resid.post), acting on
// `rows`; steer it with op add (α 1 adds the direction itself). Zero channels are left out.
NeuronSet residual_direction_set(const std::vector<float>& direction, const std::string& name, int layer,
                                 TokenRegion rows, const std::string& description, const std::string& method,
                                 const std::string& model);

// The kinds of row of the per-token-kind sets.
const std::vector<TokenRegion>& per_token_kind_regions();       // images, words, state
const std::vector<TokenRegion>& per_token_kind_last_regions();  // images, last_word, state

}  // namespace vlascope
