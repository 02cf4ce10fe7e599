// vlascope neurons: find neurons that carry "high", "low", "fast", "slow" — by the logit lens of the VLM's FFN value
// vectors and by contrasting recorded demonstrations of two variants — and write them as named sets
// (interp/neuron_set.h) plus the tables behind them (CSV and JSON), with the overlap of the two methods.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <tuple>
#include <utility>

#include "apps/commands.h"
#include "apps/policy_options.h"
#include "common/cli.h"
#include "common/error.h"
#include "dataset/dataset.h"
#include "interp/capture.h"
#include "interp/neurons.h"
#include "policy/captions.h"
#include "policy/policy.h"
#include "policy/smolvla.h"
#include "policy/tokenizer.h"
#include "sim/kinematics.h"
#include "sim/model.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

struct Concept {
  std::string name;
  std::vector<std::string> words;
};

std::vector<Concept> parse_concepts(const std::string& text) {
  // "high=high,higher,up;low=low,lower,down"
  std::vector<Concept> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(';', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const size_t eq = item.find('=');
    require(eq != std::string::npos && eq > 0, "--concepts: '" + item + "' must be name=word,word");
    Concept c{item.substr(0, eq), {}};
    std::string words = item.substr(eq + 1);
    size_t s = 0;
    while (s <= words.size()) {
      size_t e = words.find(',', s);
      if (e == std::string::npos) e = words.size();
      if (e > s) c.words.push_back(words.substr(s, e - s));
      s = e + 1;
    }
    require(!c.words.empty(), "--concepts: '" + c.name + "' has no words");
    out.push_back(c);
    start = end + 1;
  }
  return out;
}

// "a:b" → {a, b}; `form` names the parts in the Error ("a:b", "outcome:phase").
// "name=A|B" → {name, A, B}; an error names the option and the item otherwise.
struct NamedPair {
  std::string name, a, b;
};
NamedPair split_named_pair(const std::string& item, const std::string& option, const char* form) {
  const size_t eq = item.find('='), bar = item.find('|');
  require(eq != std::string::npos && eq > 0 && bar != std::string::npos && bar > eq + 1 && bar + 1 < item.size(),
          "--" + option + ": '" + item + "' must be " + form);
  return {item.substr(0, eq), item.substr(eq + 1, bar - eq - 1), item.substr(bar + 1)};
}

// "high=high,higher,…;low=…": the concept clusters of vlascope's own vocabulary (policy/captions.h).
std::string default_concepts() {
  std::string text;
  for (const char* name : {"high", "low", "fast", "slow"}) {
    text += (text.empty() ? "" : ";") + std::string(name) + "=";
    const std::vector<std::string>& words = concept_words(name);
    for (size_t i = 0; i < words.size(); ++i) text += (i ? "," : "") + words[i];
  }
  return text;
}

// The words a single token of the tokenizer spells (as the concept search takes them); the others go to `dropped`.
std::vector<std::string> known_words(const Tokenizer& tokenizer, const std::vector<std::string>& words,
                                     std::vector<std::string>& dropped) {
  std::vector<std::string> out;
  for (const std::string& w : words) {
    const std::vector<int64_t> plain = tokenizer.encode(w, false), spaced = tokenizer.encode(" " + w, false);
    const bool one = (plain.size() == 1 && !tokenizer.is_special(plain[0])) ||
                     (spaced.size() == 1 && !tokenizer.is_special(spaced[0]));
    (one ? out : dropped).push_back(w);
  }
  return out;
}

// A list of the VLM's layers given by an option; an error names the option and the layers there are.
std::vector<int> vlm_layers_option(const ArgParser& args, const std::string& name, const SmolVLA& model) {
  std::vector<int> layers;
  for (const double l : args.get_doubles(name)) {
    require(l == std::floor(l) && l >= 0 && l < model.config().num_vlm_layers,
            "--" + name + ": " + args.get(name) + " names a layer the VLM lacks (" + format_number(l) + "; it has 0 … " +
                std::to_string(model.config().num_vlm_layers - 1) + ")");
    layers.push_back(static_cast<int>(l));
  }
  return layers;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

}  // namespace

int run_neurons(int argc, char** argv) {
  ArgParser args("vlascope neurons",
                 "Find concept neurons of a checkpoint: (1) the logit lens of every VLM FFN value vector (top tokens,\n"
                 "concept search with exact ranks and semantic neighbours); (2) the contrast of neuron activations on\n"
                 "recorded demonstrations of two variants in the lift phase (VLM and expert); (3) the choice contrast\n"
                 "of the expert's neurons between the model's own higher- and lower-rising (faster and slower) chunks\n"
                 "under different noise. Writes neuron_sets.json, top_tokens.csv/json, concept_<name>.csv,\n"
                 "contrast_<a>_<b>.csv, choice_<outcome>.csv, overlaps.json and choices.json.");
  add_policy_options(args);
  args.required("out", "output directory");
  args.option("top-k", "10", "top tokens per value vector");
  args.flag("final-norm", "project through the VLM's final RMSNorm (Geva et al.) instead of raw (Häon et al.)");
  args.option("concepts", default_concepts(),
              "concepts as name=word,word;… (words the model's vocabulary lacks are left out, and named)");
  args.option("opposites", "high:low,fast:slow",
              "concept pairs a:b whose sets leave out the neurons that promote the other concept at least as much\n"
              "(z): a value vector whose top tokens hold both 'fast' and 'slowly' carries the slot, not the concept\n"
              "(empty: keep them)");
  args.option("set-size", "10", "neurons per set");
  args.option("lexical-layers", "",
              "VLM layers the lexical and semantic sets draw from (empty: every layer). The action expert reads the\n"
              "VLM's keys and values at each layer's input, so the last layer's MLP reaches nothing it reads");
  args.option("lexical-tokens", "all",
              "prefix rows the lexical and semantic sets act on: all, images, words, state or last_word");
  args.option("prompt-directions",
              "rise=pick up the cube and lift it high|pick up the cube and lift it low;"
              "speed=pick up the cube and lift it fast|pick up the cube and lift it slowly",
              "prompt-difference directions name=PROMPT_A|PROMPT_B;… on the --dataset frames: sets prompt_<name>\n"
              "(the mean over every prefix row, added at every row) and prompt_<name>_tokens (measured and added per\n"
              "kind of row: images, words, state) on the FFN neurons, and prompt_<name>_resid<layer> on the residual\n"
              "stream after each layer (images, the instruction's last token, state; apply one layer); weighted by\n"
              "the mean activation difference; steer with op add; empty: skip");
  args.option("prompt-layers", "lexical",
              "VLM layers of the prompt directions: 'lexical' (the layers the lexical concept sets use) or a list");
  args.option("word-directions", "up=high|it;down=low|it;fast=fast|it;slow=slowly|it",
              "word directions name=WORD_A|WORD_B;… read from the vocabulary alone (the defaults swap the neutral\n"
              "instruction's last word 'it' for a concept word): set word_<name>, the input\n"
              "embedding of A minus B (× √hidden, as the model scales its words) on the residual stream after\n"
              "--word-direction-layer at the instruction's last token; steer with op add, α 1 = the swap's size.\n"
              "word_directions.json: each one's norm and its cosine with every lexical and semantic set's write\n"
              "direction (empty: skip). Meant for a word-level vocabulary such as vlascope's: with a BPE tokenizer\n"
              "the instruction's last token is the newline SmolVLA appends, not the word");
  args.option("word-direction-layer", "0", "VLM layer after which the word directions are added");
  args.option("prompt-episodes", "6", "episodes whose frames the prompt directions are measured on");
  args.option("prompt-stride", "10", "every n-th frame of those episodes");
  args.option("prompt-direction-size", "0", "channels in each prompt direction (0: every channel of its layers)");
  args.option("dataset", "", "recorded demonstrations for the contrastive search (skipped when empty)");
  args.option("contrasts", "high:low,fast:slow", "variant pairs a:b to contrast");
  args.option("episodes", "12", "episodes per variant in the contrast");
  args.option("stride", "3", "every n-th frame of the phase");
  args.option("phase", "lift", "expert phase whose frames are compared (reach, grasp, lift, hold)");
  args.option("choices", "rise:lift,speed:lift",
              "choice contrasts outcome:phase (outcome rise or speed; empty: skip): the model's own chunks under\n"
              "several noise seeds, ranked by how far they lift (sets high_choice, low_choice) or how fast they\n"
              "move (fast_choice, slow_choice); expert neurons");
  args.option("choice-episodes", "16", "episodes (any variant) in each choice contrast");
  args.option("choice-stride", "6", "every n-th frame of the phase in a choice contrast");
  args.option("choice-samples", "8", "noise seeds per frame in a choice contrast");
  args.option("direction-size", "100",
              "neurons in each choice contrast's direction set (rise_direction, speed_direction: weighted by the\n"
              "mean difference, for --op add with α > 0 toward higher/faster, α < 0 toward lower/slower)");
  if (!args.parse(argc, argv)) return 0;
  const fs::path out(args.get("out"));
  fs::create_directories(out);
  std::unique_ptr<Policy> policy = load_policy(args);
  const SmolVLA& model = policy->model();
  const Tokenizer& tokenizer = policy->tokenizer();
  const int k = args.get_int("top-k"), n = args.get_int("set-size");
  const bool final_norm = args.get_flag("final-norm");
  std::vector<NeuronSet> sets;

  // 1. Logit lens.
  const std::vector<NeuronTokens> tops = value_vector_top_tokens(model, tokenizer, k, final_norm);
  {
    std::ofstream csv(out / "top_tokens.csv");
    csv << "layer,neuron,top_tokens,top_logits\n";
    nlohmann::json j = nlohmann::json::array();
    for (const NeuronTokens& t : tops) {
      std::string logits;
      for (float l : t.logits) logits += (logits.empty() ? "" : " ") + std::to_string(l).substr(0, 6);
      csv << t.layer << "," << t.index << ",\"" << join(t.tokens, " ") << "\"," << logits << "\n";
      j.push_back({{"layer", t.layer}, {"neuron", t.index}, {"tokens", t.tokens}, {"logits", t.logits}});
    }
    std::ofstream(out / "top_tokens.json") << j.dump(1) << "\n";
  }
  std::printf("logit lens (%s): %zu value vectors, top-%d tokens → %s\n", final_norm ? "final norm" : "raw",
              tops.size(), k, (out / "top_tokens.csv").c_str());
  std::vector<Concept> concepts = parse_concepts(args.get("concepts"));
  const std::vector<int> lexical_layers = vlm_layers_option(args, "lexical-layers", model);
  TokenRegion lexical_rows = TokenRegion::kAll;
  try {
    lexical_rows = parse_token_region(args.get("lexical-tokens"));
  } catch (const Error& e) {
    throw Error(std::string("--lexical-tokens: ") + e.what());
  }
  std::string restricted;  // what the options changed, for the sets' provenance
  if (!lexical_layers.empty()) {
    restricted += "; VLM layers";
    for (const int l : lexical_layers) restricted += " " + std::to_string(l);
  }
  if (lexical_rows != TokenRegion::kAll)
    restricted += std::string("; acting on the ") + token_region_name(lexical_rows) + " rows";
  std::map<std::string, std::vector<ConceptScore>> scores_of;
  for (Concept& c : concepts) {
    std::vector<std::string> dropped;
    c.words = known_words(tokenizer, c.words, dropped);
    require(!c.words.empty(), "--concepts: none of " + c.name + "'s words is a token of " + args.get("checkpoint") +
                                  "'s vocabulary (" + join(dropped, ", ") + ")");
    if (!dropped.empty())
      std::printf("concept %s: not in the vocabulary, left out: %s\n", c.name.c_str(), join(dropped, ", ").c_str());
    scores_of[c.name] = only_layers(search_concept(model, tokenizer, c.words, k, final_norm), lexical_layers);
  }
  std::map<std::string, std::string> opposite_of;
  for (const std::string& pair : args.get_list("opposites")) {
    const auto [a, b] = split_pair(pair, "--opposites", "a:b");
    require(scores_of.count(a) && scores_of.count(b), "--opposites: '" + pair + "' names a concept --concepts lacks");
    opposite_of[a] = b;
    opposite_of[b] = a;
  }
  for (const Concept& c : concepts) {
    const std::vector<ConceptScore>& scores = scores_of.at(c.name);
    std::ofstream csv(out / ("concept_" + c.name + ".csv"));
    csv << "layer,neuron,best_token,best_rank,z,semantic,exact\n";
    int exact = 0;
    for (const ConceptScore& s : scores) {
      csv << s.layer << "," << s.index << "," << s.best_token << "," << s.best_rank << "," << s.z << "," << s.semantic
          << "," << s.exact << "\n";
      exact += s.exact;
    }
    const auto opposite = opposite_of.find(c.name);
    const std::vector<ConceptScore> kept =
        opposite == opposite_of.end() ? scores : without_opposite(scores, scores_of.at(opposite->second));
    NeuronSet set = concept_set(kept, c.name, n, args.get("checkpoint"), c.words);
    std::printf("concept %-5s (%s): %d neurons have a concept token in their top %d", c.name.c_str(),
                join(c.words, ",").c_str(), exact, k);
    if (opposite != opposite_of.end())
      std::printf(", %zu promote '%s' at least as much", scores.size() - kept.size(), opposite->second.c_str());
    std::printf("\n");
    // The steering papers' grouping: nearest by the semantic embedding of the top tokens.
    const std::vector<ConceptScore> kept_semantic =
        opposite == opposite_of.end() ? scores : without_opposite(scores, scores_of.at(opposite->second), true);
    NeuronSet semantic = semantic_set(kept_semantic, c.name + "_semantic", n, args.get("checkpoint"), c.words);
    for (NeuronSet* chosen : {&set, &semantic}) {
      chosen->provenance.method += restricted;
      for (NeuronRef& r : chosen->neurons) r.tokens = lexical_rows;
      std::printf("  set %s:\n", chosen->name.c_str());
      for (const NeuronRef& r : chosen->neurons) std::printf("    L%d/%-5d %s\n", r.layer, r.index, r.note.c_str());
    }
    sets.push_back(std::move(set));
    sets.push_back(std::move(semantic));
  }
  const SetOverlap lexical_semantic_high =
      overlap(find_neuron_set(sets, concepts.front().name), find_neuron_set(sets, concepts.front().name + "_semantic"));
  std::printf("%s: z-score set ∩ semantic set = %d of %d\n", concepts.front().name.c_str(),
              lexical_semantic_high.shared, lexical_semantic_high.a);

  // Word directions: what the vocabulary says a concept word writes into its row, against what the sets write.
  if (!args.get("word-directions").empty()) {
    const std::vector<int> at = vlm_layers_option(args, "word-direction-layer", model);
    require(at.size() == 1, "--word-direction-layer: one layer, not " + args.get("word-direction-layer"));
    struct Written {
      std::string name;
      std::vector<float> direction;  // what the set writes per unit α
    };
    std::vector<Written> written;  // the sets chosen through the vocabulary so far
    for (const NeuronSet& set : sets) written.push_back({set.name, set_write_direction(model, set)});
    nlohmann::json report = nlohmann::json::object();
    std::printf("word directions (embedding of A − B × √hidden, after layer %d, last word):\n", at[0]);
    for (const std::string& item : split_nonempty(args.get("word-directions"), ';')) {
      const auto [name, a, b] = split_named_pair(item, "word-directions", "name=WORD_A|WORD_B");
      const std::string set_name = "word_" + name;
      const std::string where = "--word-directions: '" + item + "'";
      require(a != b, where + ": the two words are the same");
      require(!report.contains(set_name), where + ": the name '" + name + "' is given twice");
      std::vector<float> d;
      try {
        d = word_difference(model, tokenizer, a, b);
      } catch (const Error& e) {
        throw Error(where + ": " + e.what() + " (--word-directions \"\" skips the word directions)");
      }
      nlohmann::json sets_json = nlohmann::json::object();
      std::printf("  %s = '%s' − '%s': norm %.2f; cosine with the sets' write directions (norm per unit α):\n",
                  set_name.c_str(), a.c_str(), b.c_str(), norm(d));
      for (const Written& w : written) {
        sets_json[w.name] = {{"cosine", cosine(w.direction, d)}, {"write_norm_per_alpha", norm(w.direction)}};
        std::printf("    %-16s %+.2f (%.2f)\n", w.name.c_str(), cosine(w.direction, d), norm(w.direction));
      }
      report[set_name] = {{"a", a}, {"b", b}, {"layer", at[0]}, {"norm", norm(d)},
                          {"top_tokens", direction_top_tokens(model, tokenizer, d, k, final_norm)},
                          {"sets", sets_json}};
      sets.push_back(residual_direction_set(
          d, set_name, at[0], TokenRegion::kLastWord,
          "the input embedding of '" + a + "' minus '" + b + "' (× √hidden) on the residual stream after layer " +
              std::to_string(at[0]) + " at the instruction's last token (op add; α 1 = the swap's size, added after "
              "the layer, so the layer itself and the expert's keys and values of it still see the old word)",
          "word direction: the vocabulary's embeddings, no forward pass", args.get("checkpoint")));
    }
    std::ofstream(out / "word_directions.json") << report.dump(1) << "\n";
  }

  // 2. Contrast.
  nlohmann::json overlaps = nlohmann::json::object();
  if (!args.get("dataset").empty()) {
    const DatasetReader dataset(args.get("dataset"));
    const Phase phase = parse_task_phase(args.get("phase"), "--phase");
    for (const std::string& pair : args.get_list("contrasts")) {
      ContrastOptions o;
      std::tie(o.variant_a, o.variant_b) = split_pair(pair, "--contrasts", "a:b");
      o.phase = phase;
      o.episodes_per_variant = args.get_int("episodes");
      o.frame_stride = args.get_int("stride");
      const std::vector<NeuronContrast> c = contrast_neurons(*policy, dataset, o);
      std::ofstream csv(out / ("contrast_" + o.variant_a + "_" + o.variant_b + ".csv"));
      csv << "stream,layer,neuron,mean_" << o.variant_a << ",mean_" << o.variant_b << ",hedges_g,t,p,n_a,n_b\n";
      int significant = 0;
      for (const NeuronContrast& x : c) {
        csv << stream_name(x.stream) << "," << x.layer << "," << x.index << "," << x.mean_a << "," << x.mean_b << ","
            << x.g << "," << x.t << "," << x.p << "," << x.n_a << "," << x.n_b << "\n";
        significant += x.p < 0.01;
      }
      NeuronSet a = contrast_set(c, o.variant_a + "_contrast", n, +1, args.get("checkpoint"), o);
      NeuronSet b = contrast_set(c, o.variant_b + "_contrast", n, -1, args.get("checkpoint"), o);
      std::printf(
          "contrast %s vs %s (%s phase, %d+%d episodes): %d of %zu neurons differ at p < 0.01; strongest |g| "
          "%.2f (%s L%d/%d)\n",
          o.variant_a.c_str(), o.variant_b.c_str(), phase_name(o.phase), c.front().n_a, c.front().n_b, significant,
          c.size(), std::abs(c.front().g), stream_name(c.front().stream), c.front().layer, c.front().index);
      // Agreement with the lexical sets of the same names: overlap of the sets, and how the lexical neurons rank
      // in the contrast.
      for (const NeuronSet* s : {&a, &b}) {
        const std::string lexical = s->name.substr(0, s->name.size() - std::string("_contrast").size());
        for (const NeuronSet& l : sets) {
          if (l.name != lexical) continue;
          const SetOverlap ov = overlap(l, *s);
          std::vector<double> gs;
          for (const NeuronRef& r : l.neurons)
            for (const NeuronContrast& x : c)
              if (x.stream == r.stream && x.layer == r.layer && x.index == r.index) gs.push_back(x.g);
          double mean_g = 0;
          for (double g : gs) mean_g += g / std::max<size_t>(1, gs.size());
          overlaps[lexical] = {{"lexical", l.name},
                               {"contrastive", s->name},
                               {"shared", ov.shared},
                               {"jaccard", ov.jaccard},
                               {"lexical_mean_g", mean_g}};
          std::printf("  %s: lexical ∩ contrastive = %d of %d (Jaccard %.2f); the lexical neurons' mean g = %+.2f\n",
                      lexical.c_str(), ov.shared, ov.a, ov.jaccard, mean_g);
        }
      }
      sets.push_back(std::move(a));
      sets.push_back(std::move(b));
    }
  }
  // 3. Choice contrast: the expert neurons that go with the model's own decision under its sampling noise.
  nlohmann::json choices = nlohmann::json::object();
  if (!args.get("dataset").empty() && !args.get("choices").empty()) {
    const DatasetReader dataset(args.get("dataset"));
    ArmKinematics kinematics = ArmKinematics::load(scene_path("pick_cube.xml"));
    // Outcomes of one phase rank the same sampled chunks: one pass over the frames per phase.
    std::vector<ChoiceContrastOptions> passes;
    for (const std::string& item : args.get_list("choices")) {
      const auto [name, phase_text] = split_pair(item, "--choices", "outcome:phase");
      require(name == "rise" || name == "speed", "--choices: outcome '" + name + "' is not rise or speed");
      const ChunkOutcome outcome = name == "rise" ? ChunkOutcome::kRise : ChunkOutcome::kSpeed;
      const Phase phase = parse_task_phase(phase_text, "--choices");
      for (const ChoiceContrastOptions& p : passes)
        require(std::find(p.outcomes.begin(), p.outcomes.end(), outcome) == p.outcomes.end(),
                "--choices: outcome '" + name + "' is listed twice (its sets would share names)");
      auto pass = std::find_if(passes.begin(), passes.end(), [&](const auto& p) { return p.phase == phase; });
      if (pass != passes.end()) {
        pass->outcomes.push_back(outcome);
        continue;
      }
      ChoiceContrastOptions o;
      o.outcomes = {outcome};
      o.phase = phase;
      o.episodes = args.get_int("choice-episodes");
      o.frame_stride = args.get_int("choice-stride");
      o.samples_per_frame = args.get_int("choice-samples");
      passes.push_back(o);
    }
    for (const ChoiceContrastOptions& o : passes)
      for (const ChoiceContrast& c : contrast_neurons_by_choice(*policy, dataset, kinematics, o)) {
        const std::string outcome = chunk_outcome_name(c.outcome);
        const bool rise = c.outcome == ChunkOutcome::kRise;
        std::ofstream csv(out / ("choice_" + outcome + ".csv"));
        csv << "stream,layer,neuron,mean_upper,mean_lower,d_z,t,p,frames\n";
        int significant = 0;
        for (const NeuronContrast& x : c.neurons) {
          csv << stream_name(x.stream) << "," << x.layer << "," << x.index << "," << x.mean_a << "," << x.mean_b << ","
              << x.g << "," << x.t << "," << x.p << "," << x.n_a << "\n";
          significant += x.p < 0.01;
        }
        const double scale = rise ? 100 : 1000;
        const char* unit = rise ? "cm" : "mm/step";
        std::printf(
            "choice %s (%s phase, %d frames × %d seeds): outcome %.2f %s, sd across seeds %.2f, across frames "
            "%.2f; %d of %zu expert neurons differ at p < 0.01; strongest |d_z| %.2f (L%d/%d)\n",
            outcome.c_str(), phase_name(o.phase), c.frames, o.samples_per_frame, c.outcome_mean * scale, unit,
            c.outcome_sd_within * scale, c.outcome_sd_between * scale, significant, c.neurons.size(),
            std::abs(c.neurons.front().g), c.neurons.front().layer, c.neurons.front().index);
        sets.push_back(choice_set(c, rise ? "high_choice" : "fast_choice", n, +1, args.get("checkpoint"), o));
        sets.push_back(choice_set(c, rise ? "low_choice" : "slow_choice", n, -1, args.get("checkpoint"), o));
        sets.push_back(
            choice_direction(c, outcome + "_direction", args.get_int("direction-size"), args.get("checkpoint"), o));
        choices[outcome] = {{"frames", c.frames},
                            {"outcome_mean", c.outcome_mean},
                            {"outcome_sd_within_frame", c.outcome_sd_within},
                            {"outcome_sd_between_frames", c.outcome_sd_between}};
      }
  }
  // 4. Prompt-difference directions (the positive control): what the words themselves change, on the same frames.
  nlohmann::json prompt_directions = nlohmann::json::object();
  if (!args.get("dataset").empty() && !args.get("prompt-directions").empty()) {
    const DatasetReader dataset(args.get("dataset"));
    std::vector<int> layers;
    if (args.get("prompt-layers") == "lexical") {
      for (const Concept& c : concepts)
        for (const NeuronRef& r : find_neuron_set(sets, c.name).neurons) layers.push_back(r.layer);
      std::sort(layers.begin(), layers.end());
      layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
    } else {
      layers = vlm_layers_option(args, "prompt-layers", model);
    }
    for (const std::string& item : split_nonempty(args.get("prompt-directions"), ';')) {
      const NamedPair pair = split_named_pair(item, "prompt-directions", "name=PROMPT_A|PROMPT_B");
      PromptDirectionOptions o;
      o.prompt_a = pair.a;
      o.prompt_b = pair.b;
      o.vlm_layers = layers;
      o.episodes = args.get_int("prompt-episodes");
      o.frame_stride = args.get_int("prompt-stride");
      const std::string name = "prompt_" + pair.name;
      const int size = args.get_int("prompt-direction-size");
      // Per kind of row and layer: |difference| against |spread across frames|, printed and kept in the JSON.
      auto describe = [&](const PromptDirection& d, const std::string& label) {
        std::string layer_list;
        for (const auto& [layer, diff] : d.all().difference)
          layer_list += (layer_list.empty() ? "" : ",") + std::to_string(layer);
        nlohmann::json parts = nlohmann::json::object();
        for (const auto& [region, part] : d.parts) {
          nlohmann::json per_layer = nlohmann::json::object();
          for (const auto& [layer, diff] : part.difference) {
            const PromptDirection::Part& one = only_layer(d, layer).parts.at(region);
            per_layer[std::to_string(layer)] = {{"difference_norm", one.difference_norm},
                                                {"spread_norm", one.spread_norm}};
          }
          parts[token_region_name(region)] = {{"difference_norm", part.difference_norm},
                                              {"spread_norm", part.spread_norm},
                                              {"layers", per_layer}};
          std::printf("prompt direction %s ('%s' − '%s', %d frames, VLM layers %s, %s), %s rows: |difference| %.3f, "
                      "|spread across frames| %.3f (ratio %.2f)\n",
                      name.c_str(), o.prompt_a.c_str(), o.prompt_b.c_str(), d.frames, layer_list.c_str(),
                      label.c_str(), token_region_name(region), part.difference_norm, part.spread_norm,
                      part.spread_norm > 0 ? part.difference_norm / part.spread_norm : 0.0);
        }
        return parts;
      };
      // Both sites from one pass over the frames.
      std::map<ChannelSite, PromptDirection> measured =
          prompt_differences(*policy, dataset, o, {ChannelSite::kMlpPost, ChannelSite::kResidPost});
      const PromptDirection& d = measured.at(ChannelSite::kMlpPost);
      NeuronSet set = prompt_direction_set(d, name, size, args.get("checkpoint"), o);
      NeuronSet per_kind =
          prompt_direction_set(d, name + "_tokens", size, args.get("checkpoint"), o, per_token_kind_regions());
      const nlohmann::json parts = describe(d, "mlp.post");
      std::printf("  sets %s (%zu channels, every row) and %s (%zu, each kind of row its own)\n", name.c_str(),
                  set.neurons.size(), per_kind.name.c_str(), per_kind.neurons.size());
      // The same on the residual stream, one set per layer (a residual difference is applied at one layer), with the
      // instruction's last token in place of the mean over the words: the prompts differ in their last word, and
      // spread over every word row that change did not move the arm (models/README.md, H2).
      PromptDirectionOptions ro = o;
      ro.site = ChannelSite::kResidPost;
      const PromptDirection& resid = measured.at(ChannelSite::kResidPost);
      const nlohmann::json resid_parts = describe(resid, "resid.post");
      std::vector<std::string> resid_sets;
      for (const auto& [layer, diff] : resid.all().difference) {
        resid_sets.push_back(name + "_resid" + std::to_string(layer));
        sets.push_back(prompt_direction_set(only_layer(resid, layer), resid_sets.back(), size, args.get("checkpoint"),
                                            ro, per_token_kind_last_regions()));
      }
      std::string resid_list;
      for (const std::string& s : resid_sets) resid_list += (resid_list.empty() ? "" : ", ") + s;
      std::printf("  residual sets %s (each kind of row its own)\n", resid_list.c_str());
      prompt_directions[name] = {{"prompt_a", o.prompt_a},
                                 {"prompt_b", o.prompt_b},
                                 {"frames", d.frames},
                                 {"layers", parts["all"]["layers"]},
                                 {"difference_norm", d.all().difference_norm},
                                 {"spread_norm", d.all().spread_norm},
                                 {"channels", set.neurons.size()},
                                 {"by_token_kind", parts},
                                 {"per_token_kind_set", per_kind.name},
                                 {"resid_by_token_kind", resid_parts},
                                 {"resid_sets", resid_sets}};
      sets.push_back(std::move(set));
      sets.push_back(std::move(per_kind));
    }
  }
  const ModelShape shape = model_shape(model.config());
  for (const NeuronSet& s : sets) validate_neuron_set(s, shape);
  std::ofstream(out / "prompt_directions.json") << prompt_directions.dump(2) << "\n";
  write_neuron_sets((out / "neuron_sets.json").string(), sets);
  std::ofstream(out / "overlaps.json") << overlaps.dump(2) << "\n";
  std::ofstream(out / "choices.json") << choices.dump(2) << "\n";
  std::printf("wrote %s (%zu sets)\n", (out / "neuron_sets.json").c_str(), sets.size());
  return 0;
}

}  // namespace vlascope
