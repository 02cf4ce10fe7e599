// vlascope attention: where a policy looks, over a fresh rollout (sim or the real arm) or a recorded episode.
// Writes per-chunk figures (VLM self-attention of the last word over each camera and the words; the expert's last
// cross-attention block), layers × heads grids, an MP4 with the live overlay, and — where a segmentation exists —
// the numbers: attention mass on cube / gripper / arm / background, entropy, pointing game per layer and phase, plus
// the causal check (blank the most-attended cells vs random ones). --vlm-layers, --expert-layers, --heads, --query,
// --step and --rollout choose the aggregation the figures show and the causal check blanks; the defaults are the
// reference study's figures.
//
// vlascope compare-attention: the same numbers for two checkpoints (frozen vs unfrozen VLM) on the same seeds,
// side by side, with plots.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/attention_figures.h"
#include "apps/commands.h"
#include "apps/policy_options.h"
#include "apps/robot_factory.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/image_io.h"
#include "common/plot.h"
#include "common/progress.h"
#include "dataset/dataset.h"
#include "interp/attention_study.h"
#include "interp/explorer.h"
#include "interp/label_mask.h"
#include "interp/neurons.h"
#include "interp/stats.h"
#include "policy/config.h"
#include "policy/policy.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

void study_options(ArgParser& args) {
  add_policy_run_options(args);
  add_episode_options(args);
  args.option("causal-cells", "4",
              "causal check: blank this many most-attended cells per camera vs as many random "
              "ones (0 = off)");
  args.option("causal-every", "1", "causal check on every n-th chunk");
  // Which map the figures show and the causal check blanks; --heads, --query and --step also set how every
  // layer's metrics are computed.
  args.option("vlm-layers", "", "VLM layers whose maps are averaged: A, A-B or A,B,… (empty = every layer)");
  args.option("expert-layers", "",
              "expert layers whose maps are averaged: A, A-B or A,B,… (empty = the last "
              "cross-attention layer)");
  args.option("heads", "mean", "heads: fused by mean, max or min, or one head index");
  args.option("query", "last-word",
              "VLM query row: last-word or state; actions = the action tokens' attention, "
              "which only the expert has (the VLM is then left out)");
  args.option("step", "mean",
              "expert denoising step: an index 0…N−1 (only that step's maps are captured) or mean "
              "(the mean over all steps)");
  args.flag("rollout", "VLM: attention rollout through --vlm-layers (Abnar & Zuidema) instead of their mean");
  args.option("mask", "",
              "camera=mask.png[,camera=mask.png]: hand-painted segmentation for the metrics, replacing\n"
              "the simulator's (the real arm has none). PNG colours: black or white background, red cube,\n"
              "green gripper, blue arm (nearest colour per pixel); resized by nearest neighbour to the\n"
              "frame when the aspect ratio matches");
}

// One index 0 … count−1 of `what` (a layer, a step), for the option named in errors.
int parse_index(const std::string& text, int count, const std::string& option, const std::string& what) {
  size_t used = 0;
  int v = -1;
  try {
    v = std::stoi(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  require(!text.empty() && used == text.size(), "--" + option + ": '" + text + "' is not a " + what + " index");
  require(v >= 0 && v < count, "--" + option + ": " + what + " " + text + " does not exist (the model has " +
                                   std::to_string(count) + ", 0…" + std::to_string(count - 1) + ")");
  return v;
}

// "A", "A-B" or "A,B,…" → layer indices, each checked against the stream's layer count.
std::vector<int> parse_layers(const std::string& text, int count, const std::string& option) {
  std::vector<int> out;
  if (text.empty()) return out;
  auto number = [&](const std::string& s) { return parse_index(s, count, option, "layer"); };
  const size_t dash = text.find('-');
  if (dash != std::string::npos) {
    const int a = number(text.substr(0, dash)), b = number(text.substr(dash + 1));
    require(a <= b, "--" + option + " " + text + ": the range is empty");
    for (int l = a; l <= b; ++l) out.push_back(l);
    return out;
  }
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    out.push_back(number(text.substr(start, comma - start)));
    start = comma + 1;
  }
  return out;
}

// The study (rollout, capture, causal check, per-layer scoring) and the figure maps the flags ask for. Needs the
// model's config to check layers and steps, so it runs once the policy is loaded.
struct AttentionSettings {
  StudyOptions study;
  FigureMaps figures;
  std::string masks;  // --mask, or empty for the simulator's segmentation
};

AttentionSettings read_settings(const ArgParser& args, const SmolVLAConfig& config) {
  AttentionSettings o;
  StudyOptions& s = o.study;
  s.rollout = rollout_options(args);
  s.causal_cells = args.get_int("causal-cells");
  s.causal_every = args.get_int("causal-every");

  MapRequest& vlm = o.figures.vlm;
  MapRequest& expert = o.figures.expert;
  vlm.layers = parse_layers(args.get("vlm-layers"), config.num_vlm_layers, "vlm-layers");
  expert.layers = parse_layers(args.get("expert-layers"), config.num_expert_layers, "expert-layers");
  if (expert.layers.empty())
    for (int j = config.num_expert_layers - 1; j >= 0 && expert.layers.empty(); --j)
      if (config.expert_layer_is_cross(j)) expert.layers = {j};
  const std::string heads = args.get("heads");
  if (!heads.empty() && std::all_of(heads.begin(), heads.end(), [](unsigned char c) { return std::isdigit(c) != 0; })) {
    vlm.head = expert.head = std::stoi(heads);
  } else {
    try {
      vlm.fusion = expert.fusion = parse_head_fusion(heads);
    } catch (const Error&) {
      throw Error("--heads " + heads + ": expected mean, max, min or a head index");
    }
  }
  try {
    vlm.query = parse_query_choice(args.get("query"));
  } catch (const Error& e) {
    throw Error(std::string("--query: ") + e.what());
  }
  vlm.rollout = args.get_flag("rollout");
  require(!vlm.rollout || vlm.query != QueryChoice::kActions,
          "--rollout is for the VLM's self-attention; --query actions leaves the VLM out");
  const std::string step = args.get("step");
  if (step != "mean") {
    const int n = parse_index(step, config.num_steps, "step", "denoising step");
    expert.step = n;
    // Keep that step's maps, not their mean (the study's default capture averages the steps).
    s.capture.mean_over_steps = false;
    s.capture.steps = {n};
  }
  s.layer_scores.head = vlm.head;
  s.layer_scores.fusion = vlm.fusion;
  s.layer_scores.query = vlm.query;
  s.layer_scores.step = expert.step;
  s.causal_map = o.figures.draw_vlm() ? vlm : expert;
  o.masks = args.get("mask");
  if (!o.masks.empty()) mask_segmentation(o.masks);  // bad files fail now, before any rollout
  return o;
}

const char* const kPhases[] = {"all", "reach", "grasp", "lift", "hold"};

struct Metric {
  const char* name;
  double (*get)(const AttentionScores&);
};
const Metric kMetrics[] = {
    {"cube_mass", [](const AttentionScores& s) { return s.cube.mass; }},
    {"cube_chance", [](const AttentionScores& s) { return s.cube.chance; }},
    {"gripper_mass", [](const AttentionScores& s) { return s.gripper.mass; }},
    {"arm_mass", [](const AttentionScores& s) { return s.arm.mass; }},
    {"background_mass", [](const AttentionScores& s) { return s.background.mass; }},
    {"entropy", [](const AttentionScores& s) { return s.entropy; }},
    {"pointing_hit", [](const AttentionScores& s) { return s.pointing.hit ? 1.0 : 0.0; }},
    {"image_ratio", [](const AttentionScores& s) { return s.image_ratio; }},
};

// Per camera, stream, layer and phase: mean of every metric over chunks and episodes.
nlohmann::json metric_summary(const std::vector<EpisodeStudy>& episodes, const std::vector<std::string>& cameras,
                              const SmolVLAConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  for (size_t cam = 0; cam < cameras.size(); ++cam) {
    for (const Metric& m : kMetrics) {
      ScoreTable t;
      t.add(episodes, static_cast<int>(cam), m.get);
      for (HookStream s : {HookStream::kVlm, HookStream::kExpert}) {
        const int layers = s == HookStream::kVlm ? config.num_vlm_layers : config.num_expert_layers;
        for (int l = 0; l < layers; ++l)
          for (const char* phase : kPhases) {
            auto it = t.values.find(ScoreTable::key(s, l, phase));
            if (it == t.values.end() || it->second.empty()) continue;
            out[cameras[cam]][stream_name(s)][std::to_string(l)][phase][m.name] = mean(it->second);
          }
      }
    }
  }
  return out;
}

nlohmann::json causal_summary(const std::vector<EpisodeStudy>& episodes) {
  std::vector<double> top, random, diff;
  for (const EpisodeStudy& e : episodes)
    for (const ChunkStudy& c : e.chunks)
      if (c.causal_top >= 0)
        top.push_back(c.causal_top), random.push_back(c.causal_random), diff.push_back(c.causal_top - c.causal_random);
  if (top.size() < 2) return nullptr;
  const Summary d = summarize(diff);
  // Paired: the same chunk, the same noise, two kinds of blanking.
  const double p = d.se > 0 ? student_t_two_sided_p(d.mean / d.se, d.n - 1) : 1.0;
  return {{"chunks", top.size()},
          {"top_mean_abs_daction", mean(top)},
          {"random_mean_abs_daction", mean(random)},
          {"paired_difference_mean", d.mean},
          {"paired_difference_ci95", {d.ci_lo, d.ci_hi}},
          {"paired_p", p},
          {"top_over_random", mean(random) > 0 ? mean(top) / mean(random) : 0.0}};
}

// ---- model A vs model B ----

// Episodes, not chunks, are the unit of the A-vs-B tests: the chunks of one episode share its cube position, its
// trajectory and its mistakes, so they are not independent samples. Per episode: the mean over its chunks (and,
// for layer −1, over every layer) of one metric of one camera and stream; episodes without a value are skipped.
std::vector<double> episode_means(const std::vector<EpisodeStudy>& episodes, int camera, HookStream stream, int layer,
                                  double (*get)(const AttentionScores&)) {
  std::vector<double> out;
  for (const EpisodeStudy& e : episodes) {
    std::vector<double> v;
    for (const ChunkStudy& c : e.chunks)
      for (const LayerScores& l : c.layers)
        if (l.camera == camera && l.stream == stream && (layer < 0 || l.layer == layer)) v.push_back(get(l.scores));
    if (!v.empty()) out.push_back(mean(v));
  }
  return out;
}

// Per episode, the mean over its checked chunks of |Δaction| for top cells minus that for random cells.
std::vector<double> episode_causal_effects(const std::vector<EpisodeStudy>& episodes) {
  std::vector<double> out;
  for (const EpisodeStudy& e : episodes) {
    std::vector<double> v;
    for (const ChunkStudy& c : e.chunks)
      if (c.causal_top >= 0) v.push_back(c.causal_top - c.causal_random);
    if (!v.empty()) out.push_back(mean(v));
  }
  return out;
}

// Welch's t-test and Mann–Whitney U (normal approximation) of a vs b; null when either has fewer than two values.
nlohmann::json two_sample_test(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2 || b.size() < 2) return nullptr;
  nlohmann::json out = {{"n_a", a.size()},
                        {"n_b", b.size()},
                        {"mean_a", mean(a)},
                        {"mean_b", mean(b)},
                        {"difference", mean(a) - mean(b)}};
  try {
    const TTestResult t = welch_t_test(a, b);
    out["welch_t"] = t.t;
    out["welch_df"] = t.df;
    out["welch_p"] = t.p;
    out["difference_ci95"] = {t.ci_lo, t.ci_hi};
  } catch (const Error&) {  // both samples constant (a pointing game never won, say): no t statistic
    out["welch_p"] = nullptr;
  }
  const MannWhitneyResult m = mann_whitney_u(a, b);
  out["mann_whitney_u"] = m.u_a;
  out["mann_whitney_p"] = m.p;
  out["rank_biserial"] = m.rank_biserial;
  return out;
}

const char* const kTestedMetrics[] = {"cube_mass", "gripper_mass", "arm_mass",   "background_mass",
                                      "entropy",   "pointing_hit", "image_ratio"};

// Per camera, stream, layer ("all" = every layer pooled) and metric: a vs b over episodes, with Holm-adjusted
// Welch p-values over the whole family (every test written here), so scanning many layers does not manufacture
// a finding.
nlohmann::json compare_metrics(const std::vector<EpisodeStudy>& a, const std::vector<EpisodeStudy>& b,
                               const std::vector<std::string>& cameras, const SmolVLAConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  std::vector<nlohmann::json::json_pointer> where;
  std::vector<double> p;
  for (size_t cam = 0; cam < cameras.size(); ++cam)
    for (HookStream s : {HookStream::kVlm, HookStream::kExpert}) {
      const int layers = s == HookStream::kVlm ? config.num_vlm_layers : config.num_expert_layers;
      for (int l = -1; l < layers; ++l)
        for (const char* name : kTestedMetrics) {
          const Metric* m = nullptr;
          for (const Metric& k : kMetrics)
            if (std::string(k.name) == name) m = &k;
          const nlohmann::json t = two_sample_test(episode_means(a, static_cast<int>(cam), s, l, m->get),
                                                   episode_means(b, static_cast<int>(cam), s, l, m->get));
          if (t.is_null()) continue;
          const nlohmann::json::json_pointer at("/" + cameras[cam] + "/" + stream_name(s) + "/" +
                                                (l < 0 ? std::string("all") : std::to_string(l)) + "/" + name);
          out[at] = t;
          if (!t["welch_p"].is_null()) where.push_back(at), p.push_back(t["welch_p"].get<double>());
        }
    }
  const std::vector<double> adjusted = p.empty() ? std::vector<double>{} : holm_adjust(p);
  for (size_t i = 0; i < where.size(); ++i) out[where[i]]["welch_p_holm"] = adjusted[i];
  return out;
}

void print_tests(const nlohmann::json& tests, const std::string& a, const std::string& b) {
  if (tests.empty()) {
    std::printf("A vs B tests need at least 2 episodes per model with metrics (--episodes, a segmentation)\n");
    return;
  }
  std::printf("%s vs %s over episodes, every layer pooled (Holm: adjusted over every per-layer and pooled test):\n",
              a.c_str(), b.c_str());
  for (const auto& [cam, streams] : tests.items())
    for (const auto& [stream, layers] : streams.items()) {
      if (!layers.contains("all")) continue;
      for (const auto& [metric, t] : layers["all"].items()) {
        auto p_of = [&](const char* key) { return t.contains(key) && t[key].is_number() ? t[key].get<double>() : 1.0; };
        std::printf(
            "  %-7s %-6s %-15s %s %.3f  %s %.3f  diff %+.3f  Welch p %.3g (Holm %.3g)  Mann-Whitney p %.3g  "
            "(%d vs %d episodes)\n",
            cam.c_str(), stream.c_str(), metric.c_str(), a.c_str(), t["mean_a"].get<double>(), b.c_str(),
            t["mean_b"].get<double>(), t["difference"].get<double>(), p_of("welch_p"), p_of("welch_p_holm"),
            p_of("mann_whitney_p"), t["n_a"].get<int>(), t["n_b"].get<int>());
      }
    }
}

// The causal check side by side: |Δaction| when blanking the most-attended vs random cells, and their difference,
// per model (mean over checked chunks, 95% CI).
void plot_causal(const std::vector<std::pair<std::string, std::vector<EpisodeStudy>>>& models,
                 const std::string& path) {
  BarChart chart{"causal check: blanking the most-attended vs random cells", "mean |d action| (LeRobot units)"};
  chart.categories = {"most-attended cells", "random cells", "top - random"};
  bool any = false;
  for (const auto& [name, episodes] : models) {
    std::vector<double> top, random, diff;
    for (const EpisodeStudy& e : episodes)
      for (const ChunkStudy& c : e.chunks)
        if (c.causal_top >= 0)
          top.push_back(c.causal_top), random.push_back(c.causal_random),
              diff.push_back(c.causal_top - c.causal_random);
    BarChart::Group g{name, {}, {}};
    for (const std::vector<double>* v : {&top, &random, &diff}) {
      const Summary su = v->empty() ? Summary{} : summarize(*v);
      g.values.push_back(su.mean);
      g.errors.push_back(su.n >= 2 ? (su.ci_hi - su.ci_lo) / 2 : 0.0);
    }
    any = any || !top.empty();
    chart.groups.push_back(g);
  }
  if (any) chart.save(path);
}

// One line per (camera, stream, layer) of the "all" phase, for the terminal.
void print_summary(const nlohmann::json& s, const char* label) {
  for (const auto& [cam, streams] : s.items())
    for (const auto& [stream, layers] : streams.items())
      for (const auto& [layer, phases] : layers.items()) {
        const auto& a = phases["all"];
        std::printf(
            "%-10s %-7s %-6s L%-2s cube %.3f (chance %.3f)  gripper %.3f  arm %.3f  background %.3f  "
            "entropy %.3f  pointing %.2f\n",
            label, cam.c_str(), stream.c_str(), layer.c_str(), a.value("cube_mass", 0.0), a.value("cube_chance", 0.0),
            a.value("gripper_mass", 0.0), a.value("arm_mass", 0.0), a.value("background_mass", 0.0),
            a.value("entropy", 0.0), a.value("pointing_hit", 0.0));
      }
}

// Bars per layer of one metric (phase "all"), one group per model or camera.
void plot_by_layer(const std::vector<std::pair<std::string, nlohmann::json>>& summaries, const std::string& camera,
                   const std::string& stream, const std::string& metric, int layers, const std::string& path) {
  BarChart chart{stream + " attention: " + metric + " per layer (" + camera + " camera)", metric};
  for (int l = 0; l < layers; ++l) chart.categories.push_back("L" + std::to_string(l));
  for (const auto& [name, s] : summaries) {
    BarChart::Group g{name, {}, {}};
    for (int l = 0; l < layers; ++l) {
      const auto& node =
          s.contains(camera) && s[camera].contains(stream) && s[camera][stream].contains(std::to_string(l))
              ? s[camera][stream][std::to_string(l)]["all"]
              : nlohmann::json();
      g.values.push_back(node.is_object() ? node.value(metric, 0.0) : 0.0);
    }
    chart.groups.push_back(g);
  }
  chart.save(path);
}

void write_chunk_csv(const fs::path& path, const std::vector<EpisodeStudy>& episodes,
                     const std::vector<std::string>& cameras) {
  std::ofstream csv(path);
  csv << "seed,chunk,time,phase,camera,stream,layer,cube_mass,cube_chance,gripper_mass,arm_mass,background_mass,"
         "entropy,hoyer,pointing_hit,image_ratio,causal_top,causal_random\n";
  for (const EpisodeStudy& e : episodes)
    for (const ChunkStudy& c : e.chunks)
      for (const LayerScores& l : c.layers)
        csv << e.rollout.seed << "," << c.chunk << "," << c.time << "," << c.phase << "," << cameras[l.camera] << ","
            << stream_name(l.stream) << "," << l.layer << "," << l.scores.cube.mass << "," << l.scores.cube.chance
            << "," << l.scores.gripper.mass << "," << l.scores.arm.mass << "," << l.scores.background.mass << ","
            << l.scores.entropy << "," << l.scores.hoyer << "," << l.scores.pointing.hit << "," << l.scores.image_ratio
            << "," << c.causal_top << "," << c.causal_random << "\n";
}

// The still figures of one chunk: the chunk figure and the layers × heads grids of the streams drawn.
void write_chunk_stills(const fs::path& dir, const CapturedChunk& c, const Observation& obs,
                        const SmolVLAConfig& config, const std::string& title, const FigureMaps& maps) {
  char name[64];
  std::snprintf(name, sizeof name, "chunk_%02d", c.index);
  write_png((dir / (std::string(name) + ".png")).string(), chunk_figure(c, obs, config, title, maps));
  if (maps.draw_vlm())
    write_png((dir / (std::string(name) + "_vlm_layers_heads.png")).string(),
              layers_heads_figure(c, obs, config, HookStream::kVlm, 0, maps));
  write_png((dir / (std::string(name) + "_expert_layers_heads.png")).string(),
            layers_heads_figure(c, obs, config, HookStream::kExpert, 0, maps));
}

// Runs `episodes` studies of one policy; figures for the first episode when `figures_dir` is given.
std::vector<EpisodeStudy> run_studies(Robot& robot, Policy& policy, uint64_t seed0, int episodes,
                                      const AttentionSettings& settings, const fs::path& figures_dir, int figure_every,
                                      const std::string& label, const fs::path& explore_dir = {}) {
  std::vector<EpisodeStudy> out;
  ProgressBar bar("attention " + label, episodes, "episodes");
  const SegmentationSource seg =
      settings.masks.empty() ? simulator_segmentation(robot) : mask_segmentation(settings.masks);
  for (int k = 0; k < episodes; ++k) {
    std::unique_ptr<VideoWriter> video;
    ChunkFigures figures;
    std::unique_ptr<ExplorerEpisode> explorer;
    if (!explore_dir.empty()) {
      const auto [input_w, input_h] = policy.config().input_image_size();
      explorer = std::make_unique<ExplorerEpisode>(explore_dir.string(), k, seed0 + k, settings.study.rollout.task,
                                                   input_w, input_h);
    }
    if (k == 0 && !figures_dir.empty()) {
      fs::create_directories(figures_dir);
      video = std::make_unique<VideoWriter>((figures_dir / "attention.mp4").string(), 3.0);
      figures = [&](const CapturedChunk& c, const Observation& obs, double t) {
        char title[128];
        std::snprintf(title, sizeof title, "%s  seed %llu  chunk %d  t %.1f s", label.c_str(),
                      static_cast<unsigned long long>(seed0), c.index, t);
        video->write(overlay_strip(&c, obs, policy.config(), title, settings.figures));
        if (c.index % std::max(1, figure_every) == 0)
          write_chunk_stills(figures_dir, c, obs, policy.config(), title, settings.figures);
      };
    }
    const ChunkFigures both = [&](const CapturedChunk& c, const Observation& obs, double t) {
      if (figures) figures(c, obs, t);
      if (explorer) explorer->add_chunk(c, obs, t);
    };
    out.push_back(study_episode(robot, policy, seed0 + k, settings.study, seg, both));
    if (explorer) explorer->finish(out.back().rollout, out.back().lift);
    if (video) video->close();
    bar.advance();
  }
  bar.finish();
  return out;
}

}  // namespace

int run_attention(int argc, char** argv) {
  ArgParser args(
      "vlascope attention",
      "Attention of a policy over camera patches and words, on fresh rollouts (sim or the real arm) or a\n"
      "recorded episode: figures per chunk, layers × heads grids, an overlay video, and (where a\n"
      "segmentation exists) mass on cube/gripper/arm/background, entropy, pointing game per layer and phase,\n"
      "with the causal check.");
  args.required("checkpoint", "SmolVLA checkpoint directory");
  args.required("out", "output directory");
  add_robot_options(args);
  study_options(args);
  args.option("episodes", "1", "fresh rollouts (figures for the first)");
  args.option("seed", "100000", "first seed");
  args.option("every", "3", "write the still figures of every n-th chunk");
  args.option("dataset", "", "instead of rollouts: replay the frames of a recorded episode through the policy");
  args.option("episode", "0", "with --dataset: which episode");
  args.flag("no-explorer", "leave out the explorer's data (explore/: every chunk's frames and maps, for vlascope explore)");
  if (!args.parse(argc, argv)) return 0;
  const fs::path out(args.get("out"));
  fs::create_directories(out);
  std::unique_ptr<Policy> policy = load_policy(args, args.get("checkpoint"));
  const AttentionSettings settings = read_settings(args, policy->config());
  const StudyOptions& options = settings.study;

  if (!args.get("dataset").empty()) {
    // Recorded episode: the policy sees every recorded frame where it would compute a chunk.
    const DatasetReader reader(args.get("dataset"));
    const int e = args.get_int("episode");
    require(e >= 0 && e < reader.num_episodes(), "--episode " + std::to_string(e) + ": the dataset has " +
                                                     std::to_string(reader.num_episodes()) + " episodes");
    AttentionRecorder recorder(*policy, options.capture);
    VideoWriter video((out / "attention.mp4").string(), 3.0);
    const int every = policy->n_action_steps();
    const int n = reader.num_frames(e);
    policy->reset(reader.info(e).seed);
    ProgressBar bar("attention", n / every + 1, "chunks");
    for (int i = 0; i < n; i += every) {
      const Frame f = reader.frame(e, i);
      policy->predict_chunk(frame_input(f, args.get("task")));
      Observation obs;
      obs.images = f.images;
      const CapturedChunk& c = recorder.chunks().back();
      char title[128];
      std::snprintf(title, sizeof title, "episode %d frame %d (%s)", e, i, phase_name(f.phase));
      video.write(overlay_strip(&c, obs, policy->config(), title, settings.figures));
      if (c.index % std::max(1, args.get_int("every")) == 0)
        write_chunk_stills(out, c, obs, policy->config(), title, settings.figures);
      bar.advance();
    }
    bar.finish();
    video.close();
    std::printf("wrote %s\n", out.c_str());
    return 0;
  }

  std::unique_ptr<Robot> robot = make_robot(args);
  const std::vector<EpisodeStudy> studies =
      run_studies(*robot, *policy, static_cast<uint64_t>(args.get_int64("seed")), args.get_int("episodes"), settings,
                  out, args.get_int("every"), "", args.get_flag("no-explorer") ? fs::path() : out / "explore");
  const std::vector<std::string> cameras = policy->cameras();
  write_chunk_csv(out / "attention_metrics.csv", studies, cameras);
  const nlohmann::json summary = metric_summary(studies, cameras, policy->config());
  const nlohmann::json causal = causal_summary(studies);
  std::ofstream(out / "attention_summary.json") << nlohmann::json{{"metrics", summary}, {"causal", causal}}.dump(2);
  if (!summary.empty()) {
    print_summary(summary, "");
    for (const std::string& cam : cameras)
      for (const char* stream : {"vlm", "expert"})
        plot_by_layer(
            {{"cube", summary}}, cam, stream, "cube_mass",
            stream == std::string("vlm") ? policy->config().num_vlm_layers : policy->config().num_expert_layers,
            (out / (std::string("cube_mass_") + stream + "_" + cam + ".png")).string());
  } else {
    std::printf("no segmentation on this robot: figures only (metrics need a mask: --mask camera=mask.png)\n");
  }
  if (!causal.is_null())
    std::printf(
        "causal check: blanking the %d most-attended cells moves the chunk by %.3f vs %.3f for random cells "
        "(paired difference %.3f, 95%% CI %.3f…%.3f)\n",
        options.causal_cells, causal["top_mean_abs_daction"].get<double>(),
        causal["random_mean_abs_daction"].get<double>(), causal["paired_difference_mean"].get<double>(),
        causal["paired_difference_ci95"][0].get<double>(), causal["paired_difference_ci95"][1].get<double>());
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

int run_compare_attention(int argc, char** argv) {
  ArgParser args(
      "vlascope compare-attention",
      "Run two checkpoints (e.g. frozen-VLM and unfrozen-VLM models) on the same seeded episodes and report,\n"
      "side by side, where each looks: mass on cube/gripper vs background, entropy, pointing game per\n"
      "layer and phase, and the causal effect of their most-attended patches; with plots. Each metric and the\n"
      "causal effect are tested A vs B over episodes (Welch's t, Mann-Whitney U, Holm-adjusted) in\n"
      "compare_attention_tests.json; causal_effect.png shows the causal check side by side.");
  args.required("a", "first checkpoint");
  args.required("b", "second checkpoint");
  args.option("a-name", "frozen", "label of the first");
  args.option("b-name", "unfrozen", "label of the second");
  args.required("out", "output directory");
  add_robot_options(args);
  study_options(args);
  args.option("episodes", "5", "episodes per model (same seeds)");
  args.option("seed", "100000", "first seed");
  if (!args.parse(argc, argv)) return 0;
  const fs::path out(args.get("out"));
  fs::create_directories(out);
  std::unique_ptr<Robot> robot = make_robot(args);
  const uint64_t seed = static_cast<uint64_t>(args.get_int64("seed"));
  std::vector<std::pair<std::string, nlohmann::json>> summaries;
  nlohmann::json report;
  std::vector<std::string> cameras;
  std::unique_ptr<SmolVLAConfig> config;
  std::vector<std::pair<std::string, std::vector<EpisodeStudy>>> models;
  for (const auto& [key, name] :
       {std::pair<std::string, std::string>{"a", args.get("a-name")}, {"b", args.get("b-name")}}) {
    std::unique_ptr<Policy> policy = load_policy(args, args.get(key));
    const AttentionSettings settings = read_settings(args, policy->config());
    const std::vector<EpisodeStudy> studies =
        run_studies(*robot, *policy, seed, args.get_int("episodes"), settings, out / ("figures_" + name), 5, name);
    cameras = policy->cameras();
    config = std::make_unique<SmolVLAConfig>(policy->config());
    write_chunk_csv(out / ("attention_metrics_" + name + ".csv"), studies, cameras);
    const nlohmann::json summary = metric_summary(studies, cameras, policy->config());
    int successes = 0;
    for (const EpisodeStudy& s : studies) successes += s.rollout.success;
    report[name] = {{"checkpoint", args.get(key)},
                    {"metrics", summary},
                    {"causal", causal_summary(studies)},
                    {"successes", successes},
                    {"episodes", studies.size()}};
    summaries.push_back({name, summary});
    models.push_back({name, studies});
    print_summary(summary, name.c_str());
  }
  const std::string& a = models[0].first;
  const std::string& b = models[1].first;
  // In a file of its own: compare_attention.json holds one entry per model, and readers (report) iterate it so.
  nlohmann::json tests = {{"unit", "episode (the mean over its chunks)"},
                          {"a", a},
                          {"b", b},
                          {"metrics", compare_metrics(models[0].second, models[1].second, cameras, *config)},
                          {"causal_effect", two_sample_test(episode_causal_effects(models[0].second),
                                                            episode_causal_effects(models[1].second))}};
  std::ofstream(out / "compare_attention.json") << report.dump(2);
  std::ofstream(out / "compare_attention_tests.json") << tests.dump(2);
  for (const std::string& cam : cameras)
    for (const char* metric : {"cube_mass", "gripper_mass", "background_mass", "entropy"}) {
      plot_by_layer(summaries, cam, "vlm", metric, config->num_vlm_layers,
                    (out / (std::string("vlm_") + metric + "_" + cam + ".png")).string());
      plot_by_layer(summaries, cam, "expert", metric, config->num_expert_layers,
                    (out / (std::string("expert_") + metric + "_" + cam + ".png")).string());
    }
  plot_causal(models, (out / "causal_effect.png").string());
  for (const auto& [name, r] : report.items()) {
    const auto& c = r["causal"];
    if (!c.is_null())
      std::printf("%-10s causal: top cells move the chunk by %.3f vs random %.3f (ratio %.2f, p %.3g)\n", name.c_str(),
                  c["top_mean_abs_daction"].get<double>(), c["random_mean_abs_daction"].get<double>(),
                  c["top_over_random"].get<double>(), c["paired_p"].get<double>());
  }
  print_tests(tests["metrics"], a, b);
  if (!tests["causal_effect"].is_null()) {
    const auto& t = tests["causal_effect"];
    std::printf(
        "causal effect (top − random), %s %.3f vs %s %.3f: Welch p %.3g, Mann-Whitney p %.3g (%d vs %d "
        "episodes)\n",
        a.c_str(), t["mean_a"].get<double>(), b.c_str(), t["mean_b"].get<double>(),
        t["welch_p"].is_number() ? t["welch_p"].get<double>() : 1.0, t["mann_whitney_p"].get<double>(),
        t["n_a"].get<int>(), t["n_b"].get<int>());
  }
  std::printf("wrote %s and compare_attention_tests.json\n", (out / "compare_attention.json").c_str());
  return 0;
}

}  // namespace vlascope
