// Named neuron sets and intervention records, as small human-editable JSON files, so a set found once
// (by the logit lens or by contrast) is reused by every command, and a steering run is data.
//
// A neuron is an FFN unit: one channel of `<stream>.layers.<layer>.mlp.post` (the input of down_proj). An entry
// may instead name a channel of the residual stream after the layer (`resid.post`, "site": "resid.post"): a
// direction measured there (contrastive activation addition in the residual basis) is applied there.
// Layer numbers are the hook indices (policy/hooks.h): the layer's index within its own stack.
//
// neuron_sets.json:
//   {
//     "format": "vlascope.neuron_sets", "version": 1,
//     "sets": [
//       { "name": "high", "description": "value vectors whose top tokens mean up/high",
//         "provenance": { "method": "logit-lens, top-10 tokens, hand-picked", "model": "models/small_unfrozen",
//                         "date": "2026-05-01" },
//         "neurons": [ { "stream": "vlm", "layer": 15, "index": 1234, "note": "up, high, above" }, … ] }
//     // optional per neuron: "weight" (multiplies α), "tokens": "images" | "words" | "state" | "last_word"
//     //                     (default: all rows), "site": "resid.post" (default: "mlp.post")
//     ]
//   }
// interventions.json (pyvene-style records):
//   { "format": "vlascope.interventions", "version": 1,
//     "interventions": [ { "set": "high", "op": "set", "alpha": 4.0, "passes": ["prefix", "denoise"],
//                          "steps": [0, 1, 2] } ] }        // "steps" omitted = every denoising step
//
// Keys starting with '_' (e.g. "_comment") are ignored; any other unknown key is an error, so a typo does not
// silently drop a field. Every parse or validation error names the file, the set and the entry.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vlascope {

enum class Stream { kVlm, kExpert };
const char* stream_name(Stream stream);        // "vlm" | "expert"
Stream parse_stream(const std::string& name);  // throws Error otherwise
// The hook point a neuron lives on, e.g. "vlm.layers.15.mlp.post".
std::string mlp_post_hook(Stream stream, int layer);

// The prefix rows an intervention on a VLM channel reaches: all of them, or one kind of token (the camera images,
// the instruction's words, the state token). A prompt's words change the words' rows most: a direction measured
// there is applied there. Expert channels act on the action tokens, always all of them.
// kLastWord is the instruction's last real token alone (its row, whatever its length): where a prompt that ends
// in its concept word ("… lift it high") differs most, and the row a shorter prompt's own ending sits in.
enum class TokenRegion { kAll, kImages, kWords, kState, kLastWord };
const char* token_region_name(TokenRegion region);  // "all" | "images" | "words" | "state" | "last_word"
TokenRegion parse_token_region(const std::string& name);  // throws Error otherwise

// Where a channel lives: an FFN neuron (mlp.post, the set's usual kind) or a residual-stream dimension after the
// layer (resid.post).
enum class ChannelSite { kMlpPost, kResidPost };
const char* channel_site_name(ChannelSite site);         // "mlp.post" | "resid.post"
ChannelSite parse_channel_site(const std::string& name);  // throws Error otherwise

struct NeuronRef {
  Stream stream = Stream::kVlm;
  int layer = 0;
  int index = 0;     // channel of the site: 0 … ffn_width − 1 (mlp.post) or 0 … width − 1 (resid.post)
  std::string note;  // optional: why it is in the set (its top tokens, its effect size)
  // Multiplies an intervention's α for this channel (1 for a plain set). A set whose weights are a contrast's mean
  // differences is a direction in neuron space: `add` with α moves every channel by α times its own difference.
  double weight = 1;
  TokenRegion tokens = TokenRegion::kAll;  // JSON "tokens", omitted for all; one channel may appear once per region
  ChannelSite site = ChannelSite::kMlpPost;  // JSON "site", omitted for mlp.post

  bool operator==(const NeuronRef& o) const {
    return stream == o.stream && layer == o.layer && index == o.index && tokens == o.tokens && site == o.site;
  }
  bool operator<(const NeuronRef& o) const;
};

struct Provenance {
  std::string method;  // how the set was found
  std::string model;   // the checkpoint it was found on
  std::string date;    // ISO date
};

struct NeuronSet {
  std::string name;  // letters, digits, '_', '-', '.'
  std::string description;
  Provenance provenance;
  std::vector<NeuronRef> neurons;
};

// Sizes of one stream as plain numbers: which layer indices exist, the FFN width and the residual width.
struct StreamShape {
  std::vector<int> layers;
  int ffn_width = 0;
  int width = 0;  // the residual stream's (hidden size)
  static StreamShape contiguous(int count, int ffn_width, int width);  // layers 0 … count − 1
  int channels(ChannelSite site) const { return site == ChannelSite::kMlpPost ? ffn_width : width; }
};
struct ModelShape {
  StreamShape vlm, expert;
};

// Throws Error naming the set, each bad entry and what is wrong: a layer the stream does not have, an index
// outside the FFN width, a neuron listed twice. All problems are listed, not just the first.
void validate_neuron_set(const NeuronSet& set, const ModelShape& shape);

std::string neuron_sets_to_json(const std::vector<NeuronSet>& sets);
// `source` names the text in errors (usually the file path). Checks syntax, types, names and duplicates;
// not the model shape (see validate_neuron_set).
std::vector<NeuronSet> parse_neuron_sets(const std::string& text, const std::string& source);
std::vector<NeuronSet> read_neuron_sets(const std::string& path);
void write_neuron_sets(const std::string& path, const std::vector<NeuronSet>& sets);  // atomic replace
const NeuronSet& find_neuron_set(const std::vector<NeuronSet>& sets, const std::string& name);

// The set's mlp.post channels per layer of one stream, sorted: what a steering hook on mlp.post needs.
std::map<int, std::vector<int>> indices_by_layer(const NeuronSet& set, Stream stream);

// A control set: for each neuron of `reference`, a random channel in the same stream, layer and site that is not
// in `reference` (and not drawn twice). Same size and layer profile; seeded and reproducible. Where the reference
// takes more than half of a layer's channels (a dense direction, e.g. a residual prompt difference), there are not
// enough others to draw from: that group keeps its channels and gets its weights shuffled among them — a random
// direction of the same norm and the same distribution of values.
NeuronSet random_like(const NeuronSet& reference, const ModelShape& shape, uint64_t seed, const std::string& name);

// Every channel of one layer at one site (weight 1): with op set and α 0 at mlp.post, the layer's MLP adds nothing to
// the residual stream (its down_proj sees zeros) — the zero ablation of a whole MLP.
NeuronSet whole_layer_set(Stream stream, int layer, ChannelSite site, const ModelShape& shape, const std::string& name);

struct SetOverlap {
  int a = 0, b = 0, shared = 0;
  double jaccard = 0;  // shared / |a ∪ b|
};
SetOverlap overlap(const NeuronSet& a, const NeuronSet& b);

// ---- interventions -------------------------------------------------------------------------------------

// What a steering hook does to the chosen channels x_i of mlp.post: kSet x_i ← α (Häon et al.), kAdd
// x_i ← x_i + α, kScale x_i ← α·x_i. At every token position.
enum class InterventionOp { kSet, kAdd, kScale };
const char* intervention_op_name(InterventionOp op);  // "set" | "add" | "scale"
InterventionOp parse_intervention_op(const std::string& name);

struct Intervention {
  std::string set;  // neuron set name
  InterventionOp op = InterventionOp::kSet;
  double alpha = 0;
  bool prefix_pass = true;     // the VLM prefix pass (once per chunk)
  bool denoise_passes = true;  // the expert's denoising passes
  std::vector<int> steps;      // denoising steps it applies to; empty = all

  // True when the intervention acts in this pass; step is the denoising step (ignored for the prefix).
  bool applies(bool prefix, int step) const;
  std::string describe() const;  // one line, e.g. "set high := 4 in prefix+denoise (all steps)"
};

std::string interventions_to_json(const std::vector<Intervention>& interventions);
std::vector<Intervention> parse_interventions(const std::string& text, const std::string& source);
std::vector<Intervention> read_interventions(const std::string& path);
void write_interventions(const std::string& path, const std::vector<Intervention>& interventions);
// Throws Error if the named set is not among `sets` or a step is outside 0 … num_steps − 1.
void validate_intervention(const Intervention& intervention, const std::vector<NeuronSet>& sets, int num_steps);

}  // namespace vlascope
