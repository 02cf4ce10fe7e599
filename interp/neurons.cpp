#include "interp/neurons.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <tuple>

#include "common/error.h"
#include "common/progress.h"
#include "hardware/robot.h"
#include "interp/capture.h"
#include "interp/stats.h"
#include "policy/policy.h"
#include "policy/smolvla.h"
#include "policy/tokenizer.h"

namespace vlascope {
namespace {

// Vocabulary logits of every value vector of one layer: [I, V] (optionally through the final RMSNorm).
torch::Tensor layer_logits(const SmolVLA& model, int layer, bool final_norm) {
  torch::NoGradGuard no_grad;
  const SmolVLAWeights& w = model.weights();
  torch::Tensor v = w.vlm_layers[static_cast<size_t>(layer)].down.weight.t().to(torch::kFloat32);  // [I, D]
  if (final_norm) v = rms_norm(v, Norm{w.vlm_norm.weight.to(torch::kFloat32), {}}, model.config().text.rms_norm_eps);
  return torch::mm(v, model.output_embedding().to(torch::kFloat32).t());  // [I, V]
}

// Ids that are not concepts: the tokenizer's special tokens.
torch::Tensor special_mask(const Tokenizer& tok, int64_t vocab) {
  torch::Tensor m = torch::zeros({vocab}, torch::kBool);
  for (int64_t i = 0; i < std::min(vocab, tok.vocab_size()); ++i)
    if (tok.is_special(i)) m[i] = true;
  return m;
}

// A logit row's text: its token, or "#id" for a row past the tokenizer's vocabulary (a checkpoint may pad its
// embedding table beyond the tokens it has).
std::string token_text(const Tokenizer& tok, int64_t id) {
  return id < tok.vocab_size() ? tok.piece(id) : "#" + std::to_string(id);
}

// Semantic embedding of value vectors: the softmax over their top-k logits [I, k] weights those tokens'
// embeddings (rows `ids` [I, k] of `embed` [V, D]). Returns [I, D].
torch::Tensor semantic_embedding_rows(const torch::Tensor& top_logits, const torch::Tensor& top_ids,
                                      const torch::Tensor& embed) {
  const torch::Tensor weights = torch::softmax(top_logits, 1);  // [I, k]
  const torch::Tensor rows = embed.index_select(0, top_ids.flatten()).view({top_ids.size(0), top_ids.size(1), -1});
  return (weights.unsqueeze(2) * rows).sum(1);  // [I, D]
}

// A word's one token as it stands inside a sentence: after a space first (a byte-level BPE vocabulary spells it
// "Ġhigh" there; a word-level one ignores the space), else as written; −1 when the vocabulary has neither.
int64_t single_token(const Tokenizer& tokenizer, const std::string& word) {
  for (const std::string& text : {" " + word, word}) {
    const std::vector<int64_t> ids = tokenizer.encode(text, false);
    if (ids.size() == 1 && !tokenizer.is_special(ids[0])) return ids[0];
  }
  return -1;
}

std::vector<float> to_floats(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// A concept neuron with its note: the best concept token's rank and z, the semantic cosine, its top tokens.
NeuronRef concept_neuron(const ConceptScore& s) {
  char head[128];
  std::snprintf(head, sizeof head, "%s rank %d, z %.2f, semantic %.2f; top:", s.best_token.c_str(), s.best_rank, s.z,
                s.semantic);
  std::string note = head;
  for (const std::string& t : s.top_tokens) note += " " + t;
  return {Stream::kVlm, s.layer, s.index, note};
}

}  // namespace

PolicyInput frame_input(const Frame& frame, const std::string& task) {
  PolicyInput in;
  in.images = frame.images;
  in.state.assign(frame.state.begin(), frame.state.end());
  in.task = task;
  return in;
}

std::vector<std::pair<int, int>> successful_episode_frames(const DatasetReader& dataset, int episodes, int stride,
                                                           const std::string& what) {
  std::vector<std::pair<int, int>> frames;
  int used = 0;
  for (int e = 0; e < dataset.num_episodes() && used < episodes; ++e) {
    if (!dataset.info(e).success) continue;
    ++used;
    for (int i = 0; i < dataset.num_frames(e); i += std::max(1, stride)) frames.push_back({e, i});
  }
  require(used > 0, what + ": the dataset " + std::filesystem::path(dataset.path(0)).parent_path().string() +
                        " has no successful episode");
  return frames;
}

std::vector<int> successful_variant_episodes(const DatasetReader& dataset, const std::string& variant, int at_most) {
  std::vector<int> out;
  for (int e = 0; e < dataset.num_episodes() && static_cast<int>(out.size()) < at_most; ++e)
    if (dataset.info(e).success && dataset.info(e).variant == variant) out.push_back(e);
  return out;
}

std::vector<NeuronTokens> value_vector_top_tokens(const SmolVLA& model, const Tokenizer& tokenizer, int k,
                                                  bool final_norm) {
  const int64_t vocab = model.config().text.vocab_size;
  const torch::Tensor specials = special_mask(tokenizer, vocab);
  std::vector<NeuronTokens> out;
  for (int l = 0; l < model.config().num_vlm_layers; ++l) {
    const torch::Tensor logits = layer_logits(model, l, final_norm).masked_fill(specials, -INFINITY);
    const auto [values, ids] = logits.topk(std::min<int64_t>(k, vocab), 1);
    const auto va = values.accessor<float, 2>();
    const auto ia = ids.accessor<int64_t, 2>();
    for (int64_t i = 0; i < logits.size(0); ++i) {
      NeuronTokens n;
      n.layer = l;
      n.index = static_cast<int>(i);
      for (int64_t j = 0; j < values.size(1); ++j) {
        n.ids.push_back(ia[i][j]);
        n.tokens.push_back(token_text(tokenizer, ia[i][j]));
        n.logits.push_back(va[i][j]);
      }
      out.push_back(std::move(n));
    }
  }
  return out;
}

std::vector<std::string> direction_top_tokens(const SmolVLA& model, const Tokenizer& tokenizer,
                                              const std::vector<float>& direction, int k, bool final_norm) {
  torch::NoGradGuard no_grad;
  const int64_t hidden = model.config().text.hidden, vocab = model.config().text.vocab_size;
  require(static_cast<int64_t>(direction.size()) == hidden,
          "logit lens: a direction of " + std::to_string(direction.size()) + " values, the residual stream has " +
              std::to_string(hidden));
  torch::Tensor v = torch::tensor(direction, torch::kFloat32).view({1, hidden});
  if (final_norm)
    v = rms_norm(v, Norm{model.weights().vlm_norm.weight.to(torch::kFloat32), {}}, model.config().text.rms_norm_eps);
  const torch::Tensor logits = torch::mm(v, model.output_embedding().to(torch::kFloat32).t())
                                   .view({vocab})
                                   .masked_fill(special_mask(tokenizer, vocab), -INFINITY);
  const torch::Tensor ids = std::get<1>(logits.topk(std::min<int64_t>(k, vocab)));
  std::vector<std::string> out;
  for (int64_t j = 0; j < ids.size(0); ++j) out.push_back(token_text(tokenizer, ids[j].item<int64_t>()));
  return out;
}

std::vector<ConceptScore> search_concept(const SmolVLA& model, const Tokenizer& tokenizer,
                                         const std::vector<std::string>& words, int k, bool final_norm) {
  torch::NoGradGuard no_grad;
  const int64_t vocab = model.config().text.vocab_size;
  std::vector<int64_t> concept_ids;
  std::string unknown;
  for (const std::string& w : words) {
    const int64_t id = single_token(tokenizer, w);
    if (id >= 0)
      concept_ids.push_back(id);
    else
      unknown += (unknown.empty() ? "" : ", ") + w;
  }
  require(unknown.empty(), "concept search: not single tokens of the model's vocabulary: " + unknown);
  const torch::Tensor specials = special_mask(tokenizer, vocab);
  const torch::Tensor embed = model.weights().embed_tokens.to(torch::kFloat32);  // [V, D]
  const torch::Tensor cids = torch::tensor(concept_ids);
  const torch::Tensor concept_vec = embed.index_select(0, cids).mean(0);
  std::vector<ConceptScore> out;
  for (int l = 0; l < model.config().num_vlm_layers; ++l) {
    const torch::Tensor logits = layer_logits(model, l, final_norm).masked_fill(specials, -INFINITY);  // [I, V]
    const torch::Tensor finite = logits.masked_fill(specials, 0);
    const int64_t real = vocab - specials.sum().item<int64_t>();
    const torch::Tensor mean = finite.sum(1, true) / real;
    const torch::Tensor sd =
        ((finite - mean).pow(2).masked_fill(specials, 0).sum(1, true) / std::max<int64_t>(1, real - 1)).sqrt();
    const torch::Tensor z = (logits.index_select(1, cids) - mean) / sd.clamp_min(1e-12);  // [I, C]
    // Rank of each concept token: 1 + how many tokens score higher.
    const torch::Tensor concept_logits = logits.index_select(1, cids);                           // [I, C]
    const torch::Tensor ranks = (logits.unsqueeze(1) > concept_logits.unsqueeze(2)).sum(2) + 1;  // [I, C]
    const auto [top_vals, top_ids] = logits.topk(std::min<int64_t>(k, real), 1);
    const torch::Tensor cosine =
        torch::cosine_similarity(semantic_embedding_rows(top_vals, top_ids, embed), concept_vec.unsqueeze(0), 1);
    const auto tia = top_ids.accessor<int64_t, 2>();
    const torch::Tensor best_z = std::get<0>(z.max(1));
    const auto za = best_z.accessor<float, 1>();
    const auto ra = ranks.accessor<int64_t, 2>();
    const auto sa = cosine.accessor<float, 1>();
    for (int64_t i = 0; i < logits.size(0); ++i) {
      ConceptScore s;
      s.layer = l;
      s.index = static_cast<int>(i);
      int64_t best_rank = ra[i][0], best = 0;
      for (int64_t c = 1; c < static_cast<int64_t>(concept_ids.size()); ++c)
        if (ra[i][c] < best_rank) best_rank = ra[i][c], best = c;
      s.best_rank = static_cast<int>(best_rank);
      s.best_token = tokenizer.piece(concept_ids[static_cast<size_t>(best)]);
      s.z = za[i];
      s.semantic = sa[i];
      s.exact = best_rank <= k;
      for (int64_t j = 0; j < top_ids.size(1); ++j) s.top_tokens.push_back(token_text(tokenizer, tia[i][j]));
      out.push_back(s);
    }
  }
  std::sort(out.begin(), out.end(), [](const ConceptScore& a, const ConceptScore& b) { return a.z > b.z; });
  return out;
}

std::vector<ConceptScore> without_opposite(const std::vector<ConceptScore>& scores,
                                           const std::vector<ConceptScore>& opposite, bool by_semantic) {
  auto key = [&](const ConceptScore& s) { return by_semantic ? s.semantic : s.z; };
  std::map<std::pair<int, int>, double> opposite_score;
  for (const ConceptScore& s : opposite) opposite_score[{s.layer, s.index}] = key(s);
  std::vector<ConceptScore> out;
  for (const ConceptScore& s : scores) {
    const auto it = opposite_score.find({s.layer, s.index});
    if (it == opposite_score.end() || it->second < key(s)) out.push_back(s);
  }
  return out;
}

std::vector<ConceptScore> only_layers(const std::vector<ConceptScore>& scores, const std::vector<int>& layers) {
  if (layers.empty()) return scores;
  std::vector<ConceptScore> kept;
  for (const ConceptScore& s : scores)
    if (std::find(layers.begin(), layers.end(), s.layer) != layers.end()) kept.push_back(s);
  return kept;
}

NeuronSet concept_set(const std::vector<ConceptScore>& scores, const std::string& name, int n, const std::string& model,
                      const std::vector<std::string>& words) {
  std::vector<ConceptScore> ranked = scores;
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const ConceptScore& a, const ConceptScore& b) { return a.exact > b.exact; });
  NeuronSet set;
  set.name = name;
  std::string w;
  for (const std::string& x : words) w += (w.empty() ? "" : ", ") + x;
  set.description = "VLM value vectors that most promote the tokens " + w + " (logit lens)";
  set.provenance = {"logit lens: top-" + std::to_string(n) +
                        " by logit z-score of the concept tokens, exact top-k hits "
                        "first",
                    model, ""};
  for (int i = 0; i < n && i < static_cast<int>(ranked.size()); ++i)
    set.neurons.push_back(concept_neuron(ranked[static_cast<size_t>(i)]));
  return set;
}

NeuronSet semantic_set(const std::vector<ConceptScore>& scores, const std::string& name, int n,
                       const std::string& model, const std::vector<std::string>& words) {
  std::vector<ConceptScore> ranked = scores;
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const ConceptScore& a, const ConceptScore& b) { return a.semantic > b.semantic; });
  NeuronSet set;
  set.name = name;
  std::string w;
  for (const std::string& x : words) w += (w.empty() ? "" : ", ") + x;
  set.description = "VLM value vectors whose semantic embedding is nearest to the words " + w + " (logit lens)";
  set.provenance = {"logit lens: top-" + std::to_string(n) +
                        " by cosine of the softmax-weighted mean embedding of the top tokens with the concept words' "
                        "mean embedding",
                    model, ""};
  for (int i = 0; i < n && i < static_cast<int>(ranked.size()); ++i)
    set.neurons.push_back(concept_neuron(ranked[static_cast<size_t>(i)]));
  return set;
}

std::vector<std::vector<float>> semantic_embeddings(const std::vector<std::vector<float>>& logits,
                                                    const std::vector<std::vector<float>>& embeddings, int k) {
  require(!logits.empty() && !embeddings.empty(), "semantic_embeddings: no logits or no embeddings");
  const int64_t v = static_cast<int64_t>(embeddings.size()), d = static_cast<int64_t>(embeddings[0].size());
  torch::Tensor l = torch::empty({static_cast<int64_t>(logits.size()), v});
  torch::Tensor e = torch::empty({v, d});
  for (size_t i = 0; i < logits.size(); ++i) {
    require(static_cast<int64_t>(logits[i].size()) == v, "semantic_embeddings: logit row " + std::to_string(i) +
                                                             " has " + std::to_string(logits[i].size()) +
                                                             " entries for " + std::to_string(v) + " embeddings");
    l[static_cast<int64_t>(i)] = torch::tensor(logits[i]);
  }
  for (int64_t t = 0; t < v; ++t) e[t] = torch::tensor(embeddings[static_cast<size_t>(t)]);
  const auto [top_vals, top_ids] = l.topk(std::min<int64_t>(k, v), 1);
  const torch::Tensor s = semantic_embedding_rows(top_vals, top_ids, e);
  std::vector<std::vector<float>> out(logits.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = to_floats(s[static_cast<int64_t>(i)]);
  return out;
}

std::vector<NeuronContrast> contrast_neurons(Policy& policy, const DatasetReader& dataset, const ContrastOptions& o) {
  // Episodes of each variant, and their frames in the phase.
  std::map<std::string, std::vector<int>> episodes;
  for (const std::string& v : {o.variant_a, o.variant_b}) {
    episodes[v] = successful_variant_episodes(dataset, v, o.episodes_per_variant);
    require(episodes[v].size() >= 2, "contrast: the dataset has fewer than two successful '" + v + "' episodes");
  }
  ActivationRecorder recorder(policy, o.vlm, o.expert);
  // Per variant, per episode: the mean activation over the phase's frames, per (stream, layer).
  using Means = std::map<std::pair<int, int>, std::vector<float>>;
  std::map<std::string, std::vector<Means>> per_episode;
  const int stride = std::max(1, o.frame_stride);
  int total = 0;  // frames the loop below visits: every stride-th phase frame of each episode
  for (const auto& [v, list] : episodes)
    for (int e : list) {
      int in_phase = 0;
      for (const Frame& f : dataset.trajectory(e)) in_phase += f.phase == o.phase;
      total += (in_phase + stride - 1) / stride;
    }
  ProgressBar bar("contrast " + o.variant_a + "/" + o.variant_b, total, "frames");
  for (const std::string& v : {o.variant_a, o.variant_b}) {
    for (int e : episodes[v]) {
      const std::vector<Frame> traj = dataset.trajectory(e);
      Means sum;
      int frames = 0, seen = 0;
      for (int i = 0; i < static_cast<int>(traj.size()); ++i) {
        if (traj[static_cast<size_t>(i)].phase != o.phase || seen++ % stride != 0) continue;
        const PolicyInput in = frame_input(dataset.frame(e, i), o.task.empty() ? dataset.info(e).instruction : o.task);
        recorder.clear();
        policy.predict_chunk(in, o.seed, 0);
        const ChunkActivations& a = recorder.chunks().back();
        auto add = [&](int stream, const std::map<int, std::vector<float>>& m) {
          for (const auto& [layer, values] : m) {
            std::vector<float>& s = sum[{stream, layer}];
            if (s.empty()) s.assign(values.size(), 0.f);
            for (size_t k = 0; k < values.size(); ++k) s[k] += values[k];
          }
        };
        add(static_cast<int>(Stream::kVlm), a.vlm_mean);
        add(static_cast<int>(Stream::kExpert), a.expert_mean);
        ++frames;
        bar.advance();
      }
      if (frames == 0) continue;
      for (auto& [key, s] : sum)
        for (float& x : s) x /= static_cast<float>(frames);
      per_episode[v].push_back(std::move(sum));
    }
  }
  bar.finish();
  for (const std::string& v : {o.variant_a, o.variant_b})
    require(per_episode[v].size() >= 2, "contrast: fewer than two '" + v + "' episodes have frames in the phase");
  std::vector<NeuronContrast> out;
  for (const auto& [key, first] : per_episode[o.variant_a].front()) {
    for (size_t k = 0; k < first.size(); ++k) {
      std::vector<double> a, b;
      for (const Means& m : per_episode[o.variant_a]) a.push_back(m.at(key)[k]);
      for (const Means& m : per_episode[o.variant_b]) b.push_back(m.at(key)[k]);
      NeuronContrast c;
      c.stream = static_cast<Stream>(key.first);
      c.layer = key.second;
      c.index = static_cast<int>(k);
      c.mean_a = mean(a);
      c.mean_b = mean(b);
      c.n_a = static_cast<int>(a.size());
      c.n_b = static_cast<int>(b.size());
      const bool constant = sample_sd(a) == 0 && sample_sd(b) == 0;
      if (!constant) {
        c.g = hedges_g(a, b);
        const TTestResult t = welch_t_test(a, b);
        c.t = t.t;
        c.p = t.p;
      }
      out.push_back(c);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const NeuronContrast& x, const NeuronContrast& y) { return std::abs(x.g) > std::abs(y.g); });
  return out;
}

NeuronSet contrast_set(const std::vector<NeuronContrast>& contrasts, const std::string& name, int n, int sign,
                       const std::string& model, const ContrastOptions& o) {
  NeuronSet set;
  set.name = name;
  const std::string more = sign > 0 ? o.variant_a : o.variant_b, less = sign > 0 ? o.variant_b : o.variant_a;
  set.description = "neurons more active in '" + more + "' than in '" + less + "' demonstrations during the " +
                    phase_name(o.phase) + " phase (contrast)";
  set.provenance = {"contrast: Hedges' g over per-episode means, " + std::to_string(o.episodes_per_variant) +
                        " episodes per variant, top " + std::to_string(n),
                    model, ""};
  for (const NeuronContrast& c : contrasts) {
    if (static_cast<int>(set.neurons.size()) >= n) break;
    if (c.g * sign <= 0) continue;
    char note[128];
    std::snprintf(note, sizeof note, "g %.2f, p %.2g, %s %.3f vs %s %.3f", c.g, c.p, o.variant_a.c_str(), c.mean_a,
                  o.variant_b.c_str(), c.mean_b);
    set.neurons.push_back({c.stream, c.layer, c.index, note});
  }
  return set;
}

// ---- choice contrast -------------------------------------------------------------------------------------

const char* chunk_outcome_name(ChunkOutcome outcome) { return outcome == ChunkOutcome::kRise ? "rise" : "speed"; }

double chunk_outcome(const std::vector<std::vector<float>>& chunk, const std::vector<float>& state,
                     KinematicModel& kinematics, const UnitMapping& units, ChunkOutcome outcome) {
  require(!chunk.empty(), "chunk_outcome: empty chunk");
  auto position = [&](const std::vector<float>& lerobot) {
    require(lerobot.size() >= kNumJoints, "chunk_outcome: an action or state has " + std::to_string(lerobot.size()) +
                                              " values, the arm has " + std::to_string(kNumJoints) + " joints");
    JointVector q{};
    for (int j = 0; j < kNumJoints; ++j) q[j] = lerobot[static_cast<size_t>(j)];
    return kinematics.forward(from_lerobot(q, units)).position;
  };
  const std::array<double, 3> start = position(state);
  if (outcome == ChunkOutcome::kRise) {
    double top = -INFINITY;
    for (const std::vector<float>& a : chunk) top = std::max(top, position(a)[2]);
    return top - start[2];
  }
  double path = 0;
  std::array<double, 3> previous = start;
  for (const std::vector<float>& a : chunk) {
    const std::array<double, 3> p = position(a);
    path += std::hypot(p[0] - previous[0], p[1] - previous[1], p[2] - previous[2]);
    previous = p;
  }
  return path / static_cast<double>(chunk.size());
}

std::vector<ChoiceContrast> contrast_neurons_by_choice(Policy& policy, const DatasetReader& dataset,
                                                       KinematicModel& kinematics, const ChoiceContrastOptions& o) {
  require(o.samples_per_frame >= 4, "choice contrast: needs at least 4 noise samples per frame");
  require(!o.outcomes.empty(), "choice contrast: no outcome to rank the chunks by");
  std::vector<int> episodes;
  for (int e = 0; e < dataset.num_episodes() && static_cast<int>(episodes.size()) < o.episodes; ++e)
    if (dataset.info(e).success) episodes.push_back(e);
  require(episodes.size() >= 2, "choice contrast: the dataset has fewer than two successful episodes");
  const int stride = std::max(1, o.frame_stride);
  std::vector<std::pair<int, int>> frames;  // (episode, frame) in the phase
  for (int e : episodes) {
    int seen = 0;
    const std::vector<Frame> traj = dataset.trajectory(e);
    for (int i = 0; i < static_cast<int>(traj.size()); ++i)
      if (traj[static_cast<size_t>(i)].phase == o.phase && seen++ % stride == 0) frames.push_back({e, i});
  }
  require(frames.size() >= 3,
          std::string("choice contrast: fewer than three frames in the ") + phase_name(o.phase) + " phase");
  ActivationRecorder recorder(policy, /*vlm=*/false, /*expert=*/true);
  const int k = o.samples_per_frame, half = k / 2;
  const size_t n_outcomes = o.outcomes.size();
  // Per outcome and frame: the upper-half and lower-half mean coefficient of every expert neuron.
  std::vector<std::map<int, std::vector<std::vector<double>>>> upper(n_outcomes), lower(n_outcomes);  // layer → frame
  std::vector<std::vector<double>> frame_means(n_outcomes), within_sq(n_outcomes);
  std::string names;
  for (ChunkOutcome x : o.outcomes) names += (names.empty() ? "" : ", ") + std::string(chunk_outcome_name(x));
  ProgressBar bar("choice contrast (" + names + ")", static_cast<int64_t>(frames.size()) * k, "chunks");
  for (size_t f = 0; f < frames.size(); ++f) {
    const auto [e, i] = frames[f];
    const PolicyInput in = frame_input(dataset.frame(e, i), o.task.empty() ? dataset.info(e).instruction : o.task);
    std::vector<std::vector<double>> outcome(n_outcomes, std::vector<double>(static_cast<size_t>(k)));
    std::vector<std::map<int, std::vector<float>>> acts(static_cast<size_t>(k));
    for (int s = 0; s < k; ++s) {
      recorder.clear();
      const std::vector<std::vector<float>> chunk = policy.predict_chunk(in, o.seed + f, s);
      for (size_t m = 0; m < n_outcomes; ++m)
        outcome[m][static_cast<size_t>(s)] = chunk_outcome(chunk, in.state, kinematics, o.units, o.outcomes[m]);
      acts[static_cast<size_t>(s)] = recorder.chunks().back().expert_mean;
      bar.advance();
    }
    for (size_t m = 0; m < n_outcomes; ++m) {
      const std::vector<double>& y = outcome[m];
      std::vector<int> order(static_cast<size_t>(k));
      for (int s = 0; s < k; ++s) order[static_cast<size_t>(s)] = s;
      std::sort(order.begin(), order.end(), [&](int a, int b) { return y[a] > y[b]; });
      const double mu = mean(y);
      frame_means[m].push_back(mu);
      for (double v : y) within_sq[m].push_back((v - mu) * (v - mu));
      for (const auto& [layer, first] : acts.front()) {
        std::vector<double> hi(first.size(), 0.0), lo(first.size(), 0.0);
        for (int r = 0; r < k; ++r) {
          if (r >= half && r < k - half) continue;  // the median sample of an odd k belongs to neither half
          std::vector<double>& side = r < half ? hi : lo;
          const std::vector<float>& a = acts[static_cast<size_t>(order[static_cast<size_t>(r)])].at(layer);
          for (size_t n = 0; n < a.size(); ++n) side[n] += a[n] / half;
        }
        upper[m][layer].push_back(std::move(hi));
        lower[m][layer].push_back(std::move(lo));
      }
    }
  }
  bar.finish();
  std::vector<ChoiceContrast> results;
  const double nf = static_cast<double>(frames.size());
  for (size_t m = 0; m < n_outcomes; ++m) {
    ChoiceContrast out;
    out.outcome = o.outcomes[m];
    out.frames = static_cast<int>(frames.size());
    out.outcome_mean = mean(frame_means[m]);
    out.outcome_sd_between = sample_sd(frame_means[m]);
    double sq = 0;
    for (double x : within_sq[m]) sq += x;
    out.outcome_sd_within = std::sqrt(sq / static_cast<double>(frames.size() * static_cast<size_t>(k - 1)));
    for (const auto& [layer, per_frame] : upper[m]) {
      const size_t width = per_frame.front().size();
      for (size_t n = 0; n < width; ++n) {
        std::vector<double> diff, a, b;
        for (size_t f = 0; f < per_frame.size(); ++f) {
          a.push_back(per_frame[f][n]);
          b.push_back(lower[m].at(layer)[f][n]);
          diff.push_back(a.back() - b.back());
        }
        NeuronContrast c;
        c.stream = Stream::kExpert;
        c.layer = layer;
        c.index = static_cast<int>(n);
        c.mean_a = mean(a);
        c.mean_b = mean(b);
        c.n_a = c.n_b = out.frames;
        const double sd = sample_sd(diff);
        if (sd > 0) {
          c.g = mean(diff) / sd;
          c.t = c.g * std::sqrt(nf);
          c.p = student_t_two_sided_p(c.t, nf - 1);
        }
        out.neurons.push_back(c);
      }
    }
    std::sort(out.neurons.begin(), out.neurons.end(),
              [](const NeuronContrast& x, const NeuronContrast& y) { return std::abs(x.g) > std::abs(y.g); });
    results.push_back(std::move(out));
  }
  return results;
}

NeuronSet choice_set(const ChoiceContrast& contrast, const std::string& name, int n, int sign, const std::string& model,
                     const ChoiceContrastOptions& o) {
  const std::string what = contrast.outcome == ChunkOutcome::kRise ? "rise" : "move";
  NeuronSet set;
  set.name = name;
  set.description = "expert neurons more active when the model's own chunk would " + what +
                    (sign > 0 ? " more" : " less") + " (choice contrast over noise seeds, " + phase_name(o.phase) +
                    " phase)";
  set.provenance = {"choice contrast (" + std::string(chunk_outcome_name(contrast.outcome)) + "): paired d_z over " +
                        std::to_string(contrast.frames) + " frames, " + std::to_string(o.samples_per_frame) +
                        " noise seeds each, top " + std::to_string(n),
                    model, ""};
  for (const NeuronContrast& c : contrast.neurons) {
    if (static_cast<int>(set.neurons.size()) >= n) break;
    if (c.g * sign <= 0) continue;
    char note[128];
    std::snprintf(note, sizeof note, "d_z %.2f, p %.2g, upper %.3f vs lower %.3f", c.g, c.p, c.mean_a, c.mean_b);
    set.neurons.push_back({c.stream, c.layer, c.index, note});
  }
  return set;
}

NeuronSet choice_direction(const ChoiceContrast& contrast, const std::string& name, int n, const std::string& model,
                           const ChoiceContrastOptions& o) {
  NeuronSet set;
  set.name = name;
  set.description = std::string("direction of the model's own ") +
                    (contrast.outcome == ChunkOutcome::kRise ? "higher- vs lower-rising" : "faster vs slower") +
                    " chunks: expert neurons weighted by their upper − lower mean coefficient (use with op add; "
                    "α > 0 toward, α < 0 away)";
  set.provenance = {"choice contrast (" + std::string(chunk_outcome_name(contrast.outcome)) + "): top " +
                        std::to_string(n) + " by |d_z| over " + std::to_string(contrast.frames) +
                        " frames, weight = mean difference",
                    model, ""};
  for (const NeuronContrast& c : contrast.neurons) {
    if (static_cast<int>(set.neurons.size()) >= n) break;
    if (c.g == 0) continue;
    NeuronRef r{c.stream, c.layer, c.index, "", c.mean_a - c.mean_b};
    char note[64];
    std::snprintf(note, sizeof note, "d_z %.2f", c.g);
    r.note = note;
    set.neurons.push_back(r);
  }
  return set;
}

std::map<ChannelSite, PromptDirection> prompt_differences(Policy& policy, const DatasetReader& dataset,
                                                         const PromptDirectionOptions& o,
                                                         const std::vector<ChannelSite>& sites) {
  require(!o.prompt_a.empty() && !o.prompt_b.empty() && o.prompt_a != o.prompt_b,
          "prompt direction: needs two different prompts (got '" + o.prompt_a + "' and '" + o.prompt_b + "')");
  require(!sites.empty(), "prompt direction: no site to measure");
  const std::vector<std::pair<int, int>> frame_list =
      successful_episode_frames(dataset, o.episodes, o.frame_stride, "prompt direction");
  // One recorder per site, all hooked into the same forward passes.
  std::vector<std::unique_ptr<ActivationRecorder>> recorders;
  for (ChannelSite site : sites)
    recorders.push_back(std::make_unique<ActivationRecorder>(policy, true, false, o.vlm_layers, std::vector<int>{}, site));
  const std::vector<TokenRegion> regions = {TokenRegion::kAll, TokenRegion::kImages, TokenRegion::kWords,
                                            TokenRegion::kState, TokenRegion::kLastWord};
  auto of_region = [](const ChunkActivations& a, TokenRegion r) -> const std::map<int, std::vector<float>>& {
    switch (r) {
      case TokenRegion::kImages: return a.vlm_images;
      case TokenRegion::kWords: return a.vlm_words;
      case TokenRegion::kState: return a.vlm_state;
      case TokenRegion::kLastWord: return a.vlm_last_word;
      case TokenRegion::kAll: break;
    }
    return a.vlm_mean;
  };
  // Per site, region, layer and channel: running sums of (a − b), and of a and a² for the spread.
  struct Sums {
    std::map<int, std::vector<double>> diff, sum_a, sq_a;
  };
  std::vector<std::map<TokenRegion, Sums>> sums(sites.size());
  ProgressBar bar("prompt direction", static_cast<int64_t>(frame_list.size()), "frames");
  int frames = 0;
  for (const auto& [e, i] : frame_list) {
    PolicyInput in = frame_input(dataset.frame(e, i), o.prompt_a);
    std::vector<ChunkActivations> under_a(sites.size()), under_b(sites.size());
    for (int which = 0; which < 2; ++which) {
      in.task = which == 0 ? o.prompt_a : o.prompt_b;
      for (auto& r : recorders) r->clear();
      policy.predict_chunk(in, o.seed, 0);
      for (size_t s = 0; s < sites.size(); ++s) (which == 0 ? under_a : under_b)[s] = recorders[s]->chunks().back();
    }
    for (size_t s = 0; s < sites.size(); ++s)
      for (TokenRegion r : regions) {
        Sums& sr = sums[s][r];
        for (const auto& [layer, a] : of_region(under_a[s], r)) {
          const std::vector<float>& b = of_region(under_b[s], r).at(layer);
          std::vector<double>& d = sr.diff[layer];
          std::vector<double>& sa = sr.sum_a[layer];
          std::vector<double>& q = sr.sq_a[layer];
          if (d.empty()) d.assign(a.size(), 0), sa.assign(a.size(), 0), q.assign(a.size(), 0);
          for (size_t k = 0; k < a.size(); ++k) d[k] += a[k] - b[k], sa[k] += a[k], q[k] += double(a[k]) * a[k];
        }
      }
    ++frames;
    bar.advance();
  }
  bar.finish();
  const double n = frames;
  std::map<ChannelSite, PromptDirection> out;
  for (size_t s = 0; s < sites.size(); ++s) {
    PromptDirection& direction = out[sites[s]];
    direction.frames = frames;
    for (TokenRegion r : regions) {
      PromptDirection::Part& part = direction.parts[r];
      for (const auto& [layer, d] : sums[s][r].diff) {
        std::vector<double>& mean_diff = part.difference[layer];
        std::vector<double>& spread = part.spread[layer];
        for (size_t k = 0; k < d.size(); ++k) {
          mean_diff.push_back(d[k] / n);
          const double m = sums[s][r].sum_a[layer][k] / n;
          spread.push_back(n > 1 ? std::sqrt(std::max(0.0, (sums[s][r].sq_a[layer][k] - n * m * m) / (n - 1))) : 0.0);
          part.difference_norm += mean_diff.back() * mean_diff.back();
          part.spread_norm += spread.back() * spread.back();
        }
      }
      part.difference_norm = std::sqrt(part.difference_norm);
      part.spread_norm = std::sqrt(part.spread_norm);
    }
  }
  return out;
}

PromptDirection prompt_difference(Policy& policy, const DatasetReader& dataset, const PromptDirectionOptions& o) {
  return prompt_differences(policy, dataset, o, {o.site}).at(o.site);
}

const std::vector<TokenRegion>& per_token_kind_regions() {
  static const std::vector<TokenRegion> r = {TokenRegion::kImages, TokenRegion::kWords, TokenRegion::kState};
  return r;
}

const std::vector<TokenRegion>& per_token_kind_last_regions() {
  static const std::vector<TokenRegion> r = {TokenRegion::kImages, TokenRegion::kLastWord, TokenRegion::kState};
  return r;
}

PromptDirection only_layer(const PromptDirection& direction, int layer) {
  PromptDirection out;
  out.frames = direction.frames;
  for (const auto& [region, part] : direction.parts) {
    const auto d = part.difference.find(layer);
    require(d != part.difference.end(), "prompt direction: layer " + std::to_string(layer) + " was not measured");
    PromptDirection::Part& p = out.parts[region];
    p.difference[layer] = d->second;
    p.spread[layer] = part.spread.at(layer);
    for (size_t k = 0; k < d->second.size(); ++k) {
      p.difference_norm += d->second[k] * d->second[k];
      p.spread_norm += p.spread[layer][k] * p.spread[layer][k];
    }
    p.difference_norm = std::sqrt(p.difference_norm);
    p.spread_norm = std::sqrt(p.spread_norm);
  }
  return out;
}

NeuronSet prompt_direction_set(const PromptDirection& direction, const std::string& name, int n,
                               const std::string& model, const PromptDirectionOptions& o,
                               const std::vector<TokenRegion>& regions) {
  struct Channel {
    int layer, index;
    TokenRegion tokens;
    double difference, spread;
  };
  std::vector<Channel> channels;
  require(!regions.empty(), "prompt direction set '" + name + "': no kind of row to apply it on");
  const bool per_token_kind = regions != std::vector<TokenRegion>{TokenRegion::kAll};
  std::string region_list;
  for (TokenRegion r : regions) region_list += (region_list.empty() ? "" : ", ") + std::string(token_region_name(r));
  for (TokenRegion r : regions) {
    const PromptDirection::Part& part = direction.parts.at(r);
    for (const auto& [layer, d] : part.difference)
      for (size_t k = 0; k < d.size(); ++k)
        if (d[k] != 0) channels.push_back({layer, static_cast<int>(k), r, d[k], part.spread.at(layer)[k]});
  }
  std::stable_sort(channels.begin(), channels.end(),
                   [](const Channel& a, const Channel& b) { return std::abs(a.difference) > std::abs(b.difference); });
  if (n > 0 && static_cast<int>(channels.size()) > n) channels.resize(static_cast<size_t>(n));
  std::sort(channels.begin(), channels.end(), [](const Channel& a, const Channel& b) {
    return std::tie(a.layer, a.index, a.tokens) < std::tie(b.layer, b.index, b.tokens);
  });
  NeuronSet set;
  set.name = name;
  const bool resid = o.site == ChannelSite::kResidPost;
  set.description = "prompt difference '" + o.prompt_a + "' − '" + o.prompt_b + "': " +
                    (resid ? "VLM residual-stream channels (resid.post) weighted by their mean difference"
                           : "VLM neurons weighted by their mean coefficient difference") +
                    " on the same frames" +
                    (per_token_kind ? ", measured and applied per kind of row (" + region_list + ")" : "") +
                    " (use with op add; α > 0 toward the first prompt, α < 0 toward the second)";
  set.provenance = {"contrastive activation addition: " + std::to_string(direction.frames) + " frames, " +
                        (n > 0 ? "top " + std::to_string(n) + " channels by |difference|" : "every channel") +
                        " of the recorded layers" + (per_token_kind ? ", per kind of row" : ""),
                    model, ""};
  for (const Channel& c : channels) {
    char note[64];
    std::snprintf(note, sizeof note, "difference %.3g, spread %.3g", c.difference, c.spread);
    NeuronRef ref{Stream::kVlm, c.layer, c.index, note, c.difference};
    ref.tokens = c.tokens;
    ref.site = o.site;
    set.neurons.push_back(ref);
  }
  return set;
}

std::vector<float> word_difference(const SmolVLA& model, const Tokenizer& tokenizer, const std::string& a,
                                   const std::string& b) {
  torch::NoGradGuard no_grad;
  const int64_t ia = single_token(tokenizer, a), ib = single_token(tokenizer, b);
  require(ia >= 0, "word direction: '" + a + "' is not one token of the model's vocabulary");
  require(ib >= 0, "word direction: '" + b + "' is not one token of the model's vocabulary");
  const torch::Tensor embed = model.weights().embed_tokens.to(torch::kFloat32);  // [V, D]
  // SmolVLA scales its language embeddings by √D before layer 0 (embed_language_tokens · √hidden).
  const double scale = std::sqrt(static_cast<double>(model.config().text.hidden));
  return to_floats((embed[ia] - embed[ib]) * scale);
}

std::vector<float> set_write_direction(const SmolVLA& model, const NeuronSet& set) {
  torch::NoGradGuard no_grad;
  torch::Tensor sum = torch::zeros({model.config().text.hidden}, torch::kFloat32);
  for (const NeuronRef& r : set.neurons) {
    require(r.stream == Stream::kVlm && r.site == ChannelSite::kMlpPost,
            "set " + set.name + ": its write direction is defined for VLM FFN neurons only (" +
                std::string(stream_name(r.stream)) + ".layers." + std::to_string(r.layer) + "." +
                channel_site_name(r.site) + " channel " + std::to_string(r.index) + " is not one)");
    require(r.layer >= 0 && r.layer < model.config().num_vlm_layers,
            "set " + set.name + ": layer " + std::to_string(r.layer) + " is not a VLM layer");
    const torch::Tensor& down = model.weights().vlm_layers[static_cast<size_t>(r.layer)].down.weight;  // [D, I]
    require(r.index >= 0 && r.index < down.size(1),
            "set " + set.name + ": neuron " + std::to_string(r.index) + " is past layer " + std::to_string(r.layer) +
                "'s " + std::to_string(down.size(1)) + " channels");
    sum += r.weight * down.select(1, r.index).to(torch::kFloat32);
  }
  return to_floats(sum);
}

double norm(const std::vector<float>& a) {
  double aa = 0;
  for (const float x : a) aa += static_cast<double>(x) * x;
  return std::sqrt(aa);
}

double cosine(const std::vector<float>& a, const std::vector<float>& b) {
  require(a.size() == b.size(), "cosine: vectors of " + std::to_string(a.size()) + " and " +
                                    std::to_string(b.size()) + " values");
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0;
}

NeuronSet residual_direction_set(const std::vector<float>& direction, const std::string& name, int layer,
                                 TokenRegion rows, const std::string& description, const std::string& method,
                                 const std::string& model) {
  NeuronSet set;
  set.name = name;
  set.description = description;
  set.provenance = {method, model, ""};
  for (size_t c = 0; c < direction.size(); ++c) {
    if (direction[c] == 0) continue;
    NeuronRef ref{Stream::kVlm, layer, static_cast<int>(c), "", direction[c]};
    ref.tokens = rows;
    ref.site = ChannelSite::kResidPost;
    set.neurons.push_back(ref);
  }
  return set;
}

}  // namespace vlascope
