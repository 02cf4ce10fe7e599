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
#include <string>
#include <vector>

#include "dataset/dataset.h"
#include "interp/neuron_set.h"

namespace vlascope {

class Policy;
class SmolVLA;
class Tokenizer;

struct NeuronTokens {
  int layer = 0, index = 0;
  std::vector<int64_t> ids;         // top-k token ids, best first (special tokens excluded)
  std::vector<std::string> tokens;  // their text pieces
  std::vector<float> logits;
};
// Every VLM neuron's top-k tokens.
std::vector<NeuronTokens> value_vector_top_tokens(const SmolVLA& model, const Tokenizer& tokenizer, int k,
                                                  bool final_norm);

struct ConceptScore {
  int layer = 0, index = 0;
  int best_rank = 0;       // 1 = the concept's best token is the vector's top token
  std::string best_token;  // that token
  double z = 0;            // its logit's z-score over the vocabulary
  double semantic = 0;     // cosine of the top-k weighted mean embedding with the concept embedding
  bool exact = false;      // best_rank ≤ k
};
// Every VLM neuron scored for a concept (its words; unknown words are an Error naming them), sorted by z.
std::vector<ConceptScore> search_concept(const SmolVLA& model, const Tokenizer& tokenizer,
                                         const std::vector<std::string>& words, int k, bool final_norm);
// The first n scored neurons as a set (exact hits first, then by z).
NeuronSet concept_set(const std::vector<ConceptScore>& scores, const std::string& name, int n, const std::string& model,
                      const std::vector<std::string>& words);

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

}  // namespace vlascope
