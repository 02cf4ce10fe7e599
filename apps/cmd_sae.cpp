// vlascope sae capture|train|eval|features|steer: TopK sparse autoencoders on the policy's activations (interp/sae.h).
// The closed-loop check and clamp steering run through `vlascope eval --sae DIR [--sae-mode …]`, and adding a
// feature's decoder direction through `steer-experiment` with the sets `sae steer` writes.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/commands.h"
#include "apps/policy_options.h"
#include "apps/robot_factory.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/file_io.h"
#include "common/image_io.h"
#include "common/plot.h"
#include "dataset/dataset.h"
#include "interp/activation_store.h"
#include "interp/neuron_set.h"
#include "interp/patching.h"
#include "interp/sae.h"
#include "policy/config.h"
#include "policy/policy.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

nlohmann::json evaluation_json(const SaeEvaluation& e) {
  nlohmann::json kinds = nlohmann::json::object();
  for (const auto& [kind, part] : e.by_kind)
    kinds[row_kind_name(kind)] = {{"rows", part.rows}, {"variance_explained", part.variance_explained}};
  return {{"rows", e.rows},           {"variance_explained", e.variance_explained}, {"mean_l0", e.mean_l0},
          {"dead", e.dead},           {"dense", e.dense},                           {"by_kind", kinds}};
}

std::string by_kind_text(const SaeEvaluation& e) {
  std::string text;
  for (const auto& [kind, part] : e.by_kind) {
    char item[96];
    std::snprintf(item, sizeof item, "%s%s %.4f (%lld rows)", text.empty() ? "" : ", ", row_kind_name(kind),
                  part.variance_explained, static_cast<long long>(part.rows));
    text += item;
  }
  return text;
}

CaptureOptions frame_options(const ArgParser& args, const std::string& spec) {
  CaptureOptions o;
  o.spec = spec;
  o.episodes = args.get_int("episodes");
  o.stride = args.get_int("stride");
  o.prompt = args.get("prompt");
  o.seed = static_cast<uint64_t>(args.get_int64("seed"));
  o.checkpoint = args.get("checkpoint");
  require(o.episodes >= 0 && o.stride >= 1, "--episodes must be ≥ 0 and --stride ≥ 1");
  return o;
}

void add_frame_options(ArgParser& args, const char* stride) {
  args.option("episodes", "0", "the dataset's first episodes (0: all)");
  args.option("stride", stride, "every n-th frame of each episode");
  args.option("prompt", "", "the instruction every frame runs with (default: each episode's own)");
  args.option("seed", "0", "the k-th frame run gets the noise (seed, k); with --rollouts, the first episode's seed");
}

int capture(int argc, char** argv) {
  ArgParser args("vlascope sae capture",
                 "Runs recorded frames (--dataset) or fresh closed-loop rollouts (--rollouts, sim or the real arm)\n"
                 "through the policy and streams one hook point's rows to an activation store on disk\n"
                 "(activations.f32, rows.i32, store.json): what `sae train` reads.");
  add_policy_options(args);
  args.required("hook", "hook point and rows, as a patch spec: e.g. vlm.layers.2.resid.post@images+last_word+state,\n"
                        "expert.layers.4.mlp.post, expert.layers.4.resid.post@steps:0,9");
  args.required("out", "the activation store's folder");
  args.option("dataset", "", "recorded episodes (vlascope collect) whose frames are run");
  add_frame_options(args, "3");
  args.option("rollouts", "0", "instead of a dataset: this many fresh rollouts, one at a time (every policy call's rows)");
  args.option("prompts", "pick up the cube and lift it",
              "with --rollouts: the instructions, episode k running the (k mod n)-th; NAME=PROMPT labels its rows\n"
              "with the variant NAME (e.g. high=… lift it high;low=… lift it low), ';'-separated");
  args.option("max-seconds", "15", "with --rollouts: episode length limit");
  add_robot_options(args);
  if (!args.parse(argc, argv)) return 0;
  std::unique_ptr<Policy> policy = load_policy(args);
  StoreInfo info;
  if (args.get_int("rollouts") > 0) {
    require(args.get("dataset").empty(), "--dataset and --rollouts: one source of frames, please");
    RolloutCaptureOptions o;
    o.spec = args.get("hook");
    o.episodes = args.get_int("rollouts");
    o.first_seed = static_cast<uint64_t>(args.get_int64("seed"));
    o.checkpoint = args.get("checkpoint");
    o.rollout.max_seconds = args.get_double("max-seconds");
    for (const std::string& item : split_nonempty(args.get("prompts"), ';')) {
      const size_t eq = item.find('=');
      if (eq == std::string::npos) o.prompts.push_back({"", item});
      else o.prompts.push_back({item.substr(0, eq), item.substr(eq + 1)});
    }
    std::unique_ptr<Robot> robot = make_robot(args);
    info = capture_rollout_activations(*policy, *robot, o, args.get("out"));
  } else {
    require(!args.get("dataset").empty(), "sae capture: give --dataset (recorded frames) or --rollouts N");
    const DatasetReader dataset(args.get("dataset"));
    info = capture_activations(*policy, dataset, frame_options(args, args.get("hook")), args.get("out"));
  }
  const ActivationStore store(args.get("out"));
  std::printf("captured %lld rows of %lld values from %d %s at %s\nwrote %s (%.1f MB)\n",
              static_cast<long long>(store.count()), static_cast<long long>(store.width()), info.frames,
              args.get_int("rollouts") > 0 ? "policy calls" : "frames", info.hook.c_str(), args.get("out").c_str(),
              static_cast<double>(store.count() * store.width()) * 4 / 1e6);
  return 0;
}

int train(int argc, char** argv) {
  ArgParser args("vlascope sae train",
                 "Trains a TopK sparse autoencoder (Gao et al. 2024) on an activation store: Adam on minibatches\n"
                 "drawn from the mapped store, AuxK loss on dead features, unit-norm decoder rows. Every --holdout-th\n"
                 "episode is held out and scored: fraction of variance explained, dead and dense features. Writes\n"
                 "sae.safetensors, sae.json, train_report.json and training_curve.png.");
  args.required("store", "activation store (vlascope sae capture)");
  args.required("out", "the SAE's folder");
  args.option("features", "0", "dictionary size (0: 8 × the width)");
  args.option("k", "32", "active features per row");
  args.option("steps", "4000", "Adam steps");
  args.option("batch", "1024", "rows per step");
  args.option("lr", "0.001", "learning rate (linear decay to 0 over the last fifth)");
  args.option("aux-k", "0", "dead features in the AuxK loss (0: width / 2)");
  args.option("aux-coef", "0.03125", "weight of the AuxK loss");
  args.option("dead-after", "200000", "a feature not active on this many training rows counts as dead");
  args.option("holdout", "10", "every n-th episode is held out (≤ 1: none)");
  args.flag("natural-mix", "draw minibatch rows as they come (default: each kind of row — image, word, state,\n"
                           "action — equally often and no padding rows, so the few word and state rows are kept as\n"
                           "well as the images)");
  args.option("seed", "0", "initialisation and minibatch order");
  args.option("threads", "0", "intra-op threads (0 = all cores)");
  if (!args.parse(argc, argv)) return 0;
  const ActivationStore store(args.get("store"));
  SaeTrainOptions o;
  o.features = args.get_int64("features");
  o.k = args.get_int("k");
  o.steps = args.get_int64("steps");
  o.batch = args.get_int("batch");
  o.lr = args.get_double("lr");
  o.aux_k = args.get_int("aux-k");
  o.aux_coef = args.get_double("aux-coef");
  o.dead_after = args.get_int64("dead-after");
  o.holdout = args.get_int("holdout");
  o.seed = static_cast<uint64_t>(args.get_int64("seed"));
  o.threads = args.get_int("threads");
  o.balance_kinds = !args.get_flag("natural-mix");
  SaeTrainReport report;
  const Sae sae = Sae::train(store, o, &report);
  const fs::path out(args.get("out"));
  sae.save(out.string());
  const RowSplit split = split_by_episode(store, o.holdout);
  const SaeEvaluation eval = evaluate_sae(sae, store, split.heldout.empty() ? split.train : split.heldout);
  nlohmann::json curve = nlohmann::json::array();
  LinePlot plot{"SAE training: " + sae.config().hook, "step", "fraction of variance unexplained (minibatch)"};
  std::vector<double> xs, ys;
  for (const auto& [step, fvu] : report.curve) {
    curve.push_back({step, fvu});
    xs.push_back(static_cast<double>(step));
    ys.push_back(fvu);
  }
  plot.add("train minibatch", xs, ys);
  plot.hlines.push_back({1 - eval.variance_explained, "held out"});
  plot.save((out / "training_curve.png").string());
  const nlohmann::json j = {{"hook", sae.config().hook},
                            {"width", sae.config().width},
                            {"features", sae.config().features},
                            {"k", sae.config().k},
                            {"seconds", report.seconds},
                            {"samples_per_second", report.samples_per_second},
                            {"train_rows", report.train_rows},
                            {"heldout_rows", report.heldout_rows},
                            {"dead_fraction_in_training", report.dead_fraction},
                            {"heldout", evaluation_json(eval)},
                            {"curve", curve}};
  write_file_atomically((out / "train_report.json").string(), j.dump(2) + "\n");
  std::printf("trained %lld → %lld features, k %d: %lld steps × %d rows in %.1f s (%.0f samples/s)\n"
              "held out (%lld rows%s): variance explained %.4f, mean L0 %.1f, dead %d, dense (> 10%% of rows) %d\n"
              "  by kind of row: %s\nwrote %s\n",
              static_cast<long long>(sae.config().width), static_cast<long long>(sae.config().features),
              sae.config().k, static_cast<long long>(o.steps), o.batch, report.seconds, report.samples_per_second,
              static_cast<long long>(eval.rows), split.heldout.empty() ? ", none held out: the training rows" : "",
              eval.variance_explained, eval.mean_l0, eval.dead, eval.dense, by_kind_text(eval).c_str(), out.c_str());
  return 0;
}

int eval(int argc, char** argv) {
  ArgParser args("vlascope sae eval",
                 "Scores an SAE: on the store's held-out episodes, the fraction of variance explained, L0, dead and\n"
                 "dense features; with --checkpoint and --dataset, open loop on recorded frames, how far the chunk moves\n"
                 "with the SAE spliced in against writing the data mean instead (both vs the untouched chunk, same\n"
                 "noise). Closed loop: `vlascope eval --sae DIR` beside a plain `vlascope eval` on the same seeds.\n"
                 "Writes sae_eval.json into --out.");
  args.required("sae", "the SAE's folder");
  args.required("store", "activation store (its held-out episodes are scored)");
  args.required("out", "output folder");
  args.option("checkpoint", "", "with --dataset: the open-loop splice check on this checkpoint");
  add_policy_run_options(args);
  args.option("dataset", "", "recorded episodes for the open-loop splice check");
  add_frame_options(args, "10");
  if (!args.parse(argc, argv)) return 0;
  const Sae sae = Sae::load(args.get("sae"));
  const ActivationStore store(args.get("store"));
  const RowSplit split = split_by_episode(store, sae.config().holdout);
  const SaeEvaluation e = evaluate_sae(sae, store, split.heldout.empty() ? split.train : split.heldout);
  nlohmann::json j = {{"sae", args.get("sae")},
                      {"hook", sae.config().hook},
                      {"heldout", evaluation_json(e)}};
  std::printf("held out (%lld rows): variance explained %.4f, mean L0 %.1f, dead %d, dense %d of %lld\n"
              "  by kind of row: %s\n",
              static_cast<long long>(e.rows), e.variance_explained, e.mean_l0, e.dead, e.dense,
              static_cast<long long>(sae.config().features), by_kind_text(e).c_str());
  if (!args.get("dataset").empty()) {
    require(!args.get("checkpoint").empty(), "--dataset needs --checkpoint");
    std::unique_ptr<Policy> policy = load_policy(args);
    const DatasetReader dataset(args.get("dataset"));
    const SpliceError s = splice_action_error(*policy, sae, dataset, frame_options(args, sae.config().hook));
    j["open_loop"] = {{"frames", s.frames},
                      {"mean_abs_change_spliced", s.spliced},
                      {"mean_abs_change_mean_ablated", s.mean_ablated},
                      {"ratio", s.ratio()}};
    std::printf("open loop (%d frames): the chunk moves %.3f with the SAE spliced in, %.3f with the mean written "
                "(ratio %.3f; LeRobot units)\n",
                s.frames, s.spliced, s.mean_ablated, s.ratio());
  }
  fs::create_directories(args.get("out"));
  write_file_atomically((fs::path(args.get("out")) / "sae_eval.json").string(), j.dump(2) + "\n");
  std::printf("wrote %s\n", (fs::path(args.get("out")) / "sae_eval.json").c_str());
  return 0;
}

nlohmann::json feature_json(const SaeFeature& s, const ActivationStore& store) {
  nlohmann::json top = nlohmann::json::array();
  for (const auto& [value, row] : s.top_rows) {
    const ActivationRow& m = store.meta(row);
    top.push_back({{"activation", value},
                   {"episode", m.episode},
                   {"frame", m.frame},
                   {"position", m.position},
                   {"step", m.step},
                   {"kind", row_kind_name(m.kind)},
                   {"phase", phase_name(static_cast<Phase>(m.phase))}});
  }
  return {{"feature", s.feature},     {"frequency", s.frequency},   {"mean_active", s.mean_active},
          {"max_activation", s.max_activation}, {"phase_mean", s.phase_mean}, {"lift_d", s.lift_d},
          {"high_low_g", s.high_low_g}, {"high_low_p", s.high_low_p}, {"fast_slow_g", s.fast_slow_g},
          {"fast_slow_p", s.fast_slow_p}, {"top_tokens", s.top_tokens}, {"top_rows", top}};
}

int features(int argc, char** argv) {
  ArgParser args("vlascope sae features",
                 "Labels an SAE's features on its activation store: frequency, top-activating frames (with the patch\n"
                 "the feature fires on), mean per task phase, lift phase vs the rest (paired over episodes), high vs\n"
                 "low and fast vs slow demonstrations (Hedges' g, Welch p over episodes), and for VLM features the\n"
                 "logit lens of the decoder direction. Writes features.json, features.csv, and lift_features.png /\n"
                 "high_low_features.png (the top features' frames).");
  args.required("sae", "the SAE's folder");
  args.required("store", "activation store");
  add_policy_options(args);  // the checkpoint the store was captured on (for the logit lens and image geometry)
  args.required("out", "output folder");
  args.option("dataset", "", "the store's dataset, for the frames (default: the one store.json names; none for a store\n"
                          "captured from rollouts)");
  args.option("top", "10", "features listed per question");
  args.option("min-frequency", "0.001", "features rarer than this are left out of the rankings");
  if (!args.parse(argc, argv)) return 0;
  const Sae sae = Sae::load(args.get("sae"));
  const ActivationStore store(args.get("store"));
  // A store captured from rollouts has no recorded frames to show: its rows' frames are steps of episodes not kept.
  const bool from_rollouts = store.info().dataset.rfind("rollouts:", 0) == 0;
  require(!from_rollouts || args.get("dataset").empty(),
          "--dataset: the store " + args.get("store") + " comes from rollouts; its frames are not a dataset's");
  std::unique_ptr<Policy> policy = load_policy(args);
  std::vector<SaeFeature> stats = feature_statistics(sae, store);
  label_with_tokens(stats, sae, *policy);
  const fs::path out(args.get("out"));
  fs::create_directories(out);

  nlohmann::json all = nlohmann::json::array();
  std::ostringstream csv;
  csv << "feature,frequency,mean_active,max_activation,lift_d,high_low_g,high_low_p,fast_slow_g,fast_slow_p,top_tokens\n";
  for (const SaeFeature& s : stats) {
    all.push_back(feature_json(s, store));
    std::string tokens;
    for (const std::string& t : s.top_tokens) tokens += (tokens.empty() ? "" : " ") + t;
    csv << s.feature << "," << s.frequency << "," << s.mean_active << "," << s.max_activation << "," << s.lift_d << ","
        << s.high_low_g << "," << s.high_low_p << "," << s.fast_slow_g << "," << s.fast_slow_p << ",\"" << tokens
        << "\"\n";
  }
  // Rankings: the features most tied to the lift phase, to high vs low and to fast vs slow demonstrations.
  const double min_frequency = args.get_double("min-frequency");
  const int top = args.get_int("top");
  auto ranked = [&](auto key) {
    std::vector<const SaeFeature*> r;
    for (const SaeFeature& s : stats)
      if (s.frequency >= min_frequency) r.push_back(&s);
    std::sort(r.begin(), r.end(), [&](const SaeFeature* a, const SaeFeature* b) { return key(*a) > key(*b); });
    if (static_cast<int>(r.size()) > top) r.resize(static_cast<size_t>(top));
    return r;
  };
  nlohmann::json rankings;
  struct Question {
    const char* name;
    const char* title;
    std::function<double(const SaeFeature&)> key;
  };
  const std::vector<Question> questions = {
      {"lift", "lift phase vs the rest (d_z over episodes)", [](const SaeFeature& s) { return s.lift_d; }},
      {"high_low", "high vs low demonstrations, lift phase (|g|)",
       [](const SaeFeature& s) { return std::abs(s.high_low_g); }},
      {"fast_slow", "fast vs slow demonstrations (|g|)", [](const SaeFeature& s) { return std::abs(s.fast_slow_g); }}};
  auto first_tokens = [](const SaeFeature& s) {  // the decoder direction's first five tokens, as printed
    std::string tokens;
    for (size_t t = 0; t < std::min<size_t>(5, s.top_tokens.size()); ++t) tokens += s.top_tokens[t] + " ";
    return tokens;
  };
  std::vector<std::vector<const SaeFeature*>> chosen;
  for (const Question& q : questions) {
    std::printf("\nfeatures most tied to %s:\n  %-7s %9s %8s %8s %9s %8s %9s  %s\n", q.title, "feature", "frequency",
                "lift d", "hi-lo g", "hi-lo p", "fa-sl g", "max act", "top tokens");
    chosen.push_back(ranked(q.key));
    nlohmann::json list = nlohmann::json::array();
    for (const SaeFeature* s : chosen.back()) {
      const std::string tokens = first_tokens(*s);
      std::printf("  %-7d %9.4f %8.2f %8.2f %9.2g %8.2f %9.2f  %s\n", s->feature, s->frequency, s->lift_d,
                  s->high_low_g, s->high_low_p, s->fast_slow_g, s->max_activation, tokens.c_str());
      list.push_back(s->feature);
    }
    rankings[q.name] = list;
  }
  const nlohmann::json j = {{"sae", args.get("sae")},
                            {"store", args.get("store")},
                            {"hook", sae.config().hook},
                            {"variants", store.info().variants},
                            {"rankings", rankings},
                            {"features", all}};
  write_file_atomically((out / "features.json").string(), j.dump(1) + "\n");
  write_file_atomically((out / "features.csv").string(), csv.str());
  std::printf("\nwrote %s/features.json and features.csv\n", out.c_str());

  // The top frames of the first five features of each ranking.
  if (from_rollouts) {
    std::printf("no frame figures: the store comes from rollouts (%s), whose frames were not kept\n",
                store.info().dataset.c_str());
    return 0;
  }
  const DatasetReader dataset(args.get("dataset").empty() ? store.info().dataset : args.get("dataset"));
  const auto [input_w, input_h] = policy->config().input_image_size();
  for (size_t q = 0; q < questions.size(); ++q) {
    std::vector<Image> rows;
    for (const SaeFeature* s : chosen[q]) {
      if (rows.size() >= 5 || s->top_rows.empty()) continue;
      const std::string tokens = first_tokens(*s);
      char label[96];
      std::snprintf(label, sizeof label, "feature %d  lift d %.2f  high-low g %.2f  %s", s->feature, s->lift_d,
                    s->high_low_g, tokens.c_str());
      rows.push_back(with_caption(feature_frames_figure(*s, store, dataset, input_w, input_h), label));
    }
    if (!rows.empty()) write_png((out / (std::string(questions[q].name) + "_features.png")).string(), vstack(rows, 8));
  }
  std::printf("wrote the *_features.png figures (each feature's top frames)\n");
  return 0;
}

int steer(int argc, char** argv) {
  ArgParser args("vlascope sae steer",
                 "Writes each chosen feature's decoder direction as a neuron set (channels of its hook point, each\n"
                 "weighted by the direction in the activation's units), so `steer-experiment --sets FILE\n"
                 "--add-conditions NAME=sae_<f>@<α>` adds α units of the feature along it with everything the\n"
                 "steering study reports (α in the feature's own activation units: see max_activation in\n"
                 "features.json). Clamping a feature instead: `vlascope eval --sae DIR --sae-mode clamp:F=V`.");
  args.required("sae", "the SAE's folder");
  args.required("features", "feature numbers, comma-separated");
  args.required("out", "neuron_sets.json to write");
  args.option("checkpoint", "", "recorded as the sets' model");
  args.option("prefix", "sae_", "set names are <prefix><feature> (tell two SAEs' sets apart)");
  args.option("rows", "", "VLM SAEs: the kinds of row the sets act on, '+'-joined (default: the SAE's own rows); a\n"
                          "feature that fires on the state row alone is steered there, e.g. --rows state");
  if (!args.parse(argc, argv)) return 0;
  const Sae sae = Sae::load(args.get("sae"));
  const PatchSpec spec = parse_patch_spec(sae.config().hook);
  const HookSite site = spec.point.site;
  require(site == HookSite::kMlpPost || site == HookSite::kResidPost,
          "sae steer: neuron sets live at mlp.post or resid.post; this SAE reads " + spec.point.name());
  require(spec.point.layer >= 0 && spec.steps.empty() && spec.camera.empty() && spec.row_begin < 0,
          "sae steer: the SAE's rows (" + sae.config().hook + ") cannot be written as a neuron set's region "
          "(steps, one camera and explicit rows are not; kinds of token are)");
  std::vector<NeuronSet> sets;
  for (const std::string& text : args.get_list("features")) {
    int f = -1;
    try {
      f = std::stoi(text);
    } catch (const std::exception&) {
      throw Error("--features: '" + text + "' is not a feature number");
    }
    NeuronSet set;
    set.name = args.get("prefix") + std::to_string(f);
    set.description = "decoder direction of feature " + std::to_string(f) + " of the SAE " + args.get("sae") + " at " +
                      sae.config().hook + "; α in the feature's activation units";
    set.provenance = {"sae decoder direction", args.get("checkpoint"), ""};
    const std::vector<float> d = sae.decoder_direction(f);
    const Stream stream = spec.point.stream == HookStream::kVlm ? Stream::kVlm : Stream::kExpert;
    std::vector<TokenRegion> regions = spec.point.stream == HookStream::kVlm ? spec.tokens
                                                                            : std::vector<TokenRegion>{TokenRegion::kAll};
    if (!args.get("rows").empty()) {
      require(spec.point.stream == HookStream::kVlm, "--rows: an expert SAE's rows are its action tokens, all of them");
      std::vector<TokenRegion> chosen;
      for (const std::string& name : split_nonempty(args.get("rows"), '+')) {
        const TokenRegion r = parse_token_region(name);
        const bool within = std::find(regions.begin(), regions.end(), r) != regions.end() ||
                            regions == std::vector<TokenRegion>{TokenRegion::kAll};
        require(within, "--rows: the SAE (" + sae.config().hook + ") was not trained on " + name + " rows");
        chosen.push_back(r);
      }
      regions = chosen;
    }
    for (TokenRegion region : regions)
      for (size_t c = 0; c < d.size(); ++c) {
        if (d[c] == 0) continue;
        NeuronRef n;
        n.stream = stream;
        n.layer = spec.point.layer;
        n.index = static_cast<int>(c);
        n.weight = d[c];
        n.tokens = region;
        n.site = site == HookSite::kMlpPost ? ChannelSite::kMlpPost : ChannelSite::kResidPost;
        set.neurons.push_back(n);
      }
    sets.push_back(std::move(set));
  }
  write_neuron_sets(args.get("out"), sets);
  std::printf("wrote %zu sets (%s) to %s\n", sets.size(), args.get("features").c_str(), args.get("out").c_str());
  return 0;
}

}  // namespace

int run_sae(int argc, char** argv) {
  static const char* usage =
      "usage: vlascope sae <verb> [options] — sparse autoencoders on the policy's activations\n"
      "  capture   recorded frames → an activation store on disk\n"
      "  train     a TopK SAE on a store (held-out variance explained, dead and dense features)\n"
      "  eval      held-out reconstruction; open-loop action change with the SAE spliced in\n"
      "  features  frequency, top frames, task phase, high/low and fast/slow, logit lens per feature\n"
      "  steer     features' decoder directions as neuron sets for steer-experiment\n"
      "Closed loop with the SAE spliced in, or a feature clamped: vlascope eval --sae DIR [--sae-mode …]\n";
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string verb = argv[1];
  if (verb == "capture") return capture(argc - 1, argv + 1);
  if (verb == "train") return train(argc - 1, argv + 1);
  if (verb == "eval") return eval(argc - 1, argv + 1);
  if (verb == "features") return features(argc - 1, argv + 1);
  if (verb == "steer") return steer(argc - 1, argv + 1);
  throw Error("vlascope sae: unknown verb '" + verb + "' (capture, train, eval, features, steer)");
}

}  // namespace vlascope
