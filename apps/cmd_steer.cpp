// vlascope steer-experiment: does switching concept neurons on steer the arm? On identical seeds: baseline, the
// "high" and "low" sets, a random control set of the same size and α, the "fast" and "slow" sets, and prompt-only
// baselines; per condition the lift segment's height and speed, episode length and success; differences from the
// baseline with 95% CIs, Welch and Mann–Whitney p and Hedges' g; an α sweep for the strongest sets; plots. Also
// closed-loop conditions (α from a PID on the measured lift or speed, --target/--closed-loop), per-layer MLP
// ablations (--ablate-mlp), zero / mean / resample ablations of heads, attention outputs or any hook point
// (--ablate-heads, --ablate-attn, --ablate), activation patching from another prompt at every policy call (--patch,
// --patch-layers) or from a demonstration (--patch-episodes), and a sparse autoencoder spliced in or its features
// clamped (--sae, --sae-conditions). Every rollout is kept as it ends (--resume, --shard K/N and `vlascope merge`).
// Runs on any robot (--robot sim or so100).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/commands.h"
#include "apps/policy_options.h"
#include "apps/robot_factory.h"
#include "apps/sharding.h"
#include "apps/steer_report.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/file_io.h"
#include "common/plot.h"
#include "dataset/dataset.h"
#include "interp/capture.h"
#include "interp/neurons.h"
#include "interp/patching.h"
#include "interp/rollout_io.h"
#include "interp/sae.h"
#include "interp/steer_experiment.h"
#include "policy/policy.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

int successes(const SteerRun& r) {
  int s = 0;
  for (const SteerMetrics& m : r.metrics) s += m.success;
  return s;
}

// EE height around the lift start, per condition: mean and 95% band over the lifted rollouts.
void plot_heights(const std::vector<const SteerRun*>& runs, double control_hz, const std::string& title,
                  const std::string& path) {
  LinePlot plot{title, "time from lift start (s)", "end-effector height (m)"};
  for (size_t r = 0; r < runs.size(); ++r) {
    const LiftAlignedHeight h = lift_aligned_height(*runs[r], control_hz);
    if (h.time.size() >= 2)
      plot.add(runs[r]->condition.name + " (n=" + std::to_string(h.lifted) + ")", h.time, h.mean, h.lo, h.hi).colour =
          palette(static_cast<int>(r));
  }
  plot.save(path);
}

void bar_plot(const std::vector<SteerRun>& runs, const MetricDef& m, const std::string& path) {
  BarChart chart{std::string(m.name) + " per condition (mean, 95% CI; lifted rollouts)", m.unit};
  BarChart::Group g{m.name, {}, {}};
  for (const SteerRun& r : runs) {
    const std::vector<double> v = metric_values(r, m);
    chart.categories.push_back(r.condition.name);
    if (v.size() >= 2) {
      const Summary s = summarize(v);
      g.values.push_back(s.mean);
      g.errors.push_back(s.ci_hi - s.mean);
    } else {
      g.values.push_back(v.empty() ? 0 : v[0]);
      g.errors.push_back(0);
    }
  }
  chart.groups.push_back(g);
  chart.save(path, 900, 420);
}

// "--high rise_direction@-8": a set and, after '@', the α of that condition (default: --alpha).
struct SetChoice {
  std::string set;
  double alpha = 0;
};
SetChoice parse_set_choice(const std::string& text, double default_alpha, const char* flag) {
  const size_t at = text.find('@');
  if (at == std::string::npos) return {text, default_alpha};
  SetChoice c{text.substr(0, at), 0};
  char* end = nullptr;
  const std::string number = text.substr(at + 1);
  c.alpha = std::strtod(number.c_str(), &end);
  require(!number.empty() && end && *end == '\0' && std::isfinite(c.alpha),
          std::string("--") + flag + ": '" + text + "' must be SET or SET@ALPHA");
  return c;
}


// A condition as run.json records it: what the report needs (name, interventions, prompt) and where it belongs —
// "main" (the contrasts; its rollouts: --rollouts), "added" (--add-conditions, compared with the baseline) or
// "sweep" (the α sweep of one set; --sweep-rollouts).
struct PlannedCondition {
  SteerCondition condition;
  std::string kind = "main";
  int rollouts = 0;
  std::string sweep_label;  // sweep: the set's curve
  double sweep_alpha = 0;
};

nlohmann::json condition_to_json(const PlannedCondition& p) {
  nlohmann::json j = {{"name", p.condition.name}, {"kind", p.kind}, {"rollouts", p.rollouts},
                      {"task", p.condition.task}, {"interventions", nlohmann::json::array()}};
  for (const Intervention& iv : p.condition.interventions)
    j["interventions"].push_back({{"set", iv.set}, {"op", intervention_op_name(iv.op)}, {"alpha", iv.alpha}});
  if (p.kind == "sweep") j["sweep"] = {{"label", p.sweep_label}, {"alpha", p.sweep_alpha}};
  if (const std::optional<PatchCondition>& patch = p.condition.patch)
    j["patch"] = {{"mode", patch->mode},
                  {"source_task", patch->source_task},
                  {"specs", patch->specs},
                  {"dataset", patch->dataset},
                  {"frames", patch->frames}};
  if (p.condition.patch && !p.condition.patch->source_variant.empty())  // only then: older run.json files resume
    j["patch"]["source_variant"] = p.condition.patch->source_variant;
  if (const std::optional<SaeCondition>& sae = p.condition.sae)
    j["sae"] = {{"path", sae->path},
                {"setting", sae->setting},
                {"digest", file_digest((fs::path(sae->path) / "sae.safetensors").string())}};
  if (const std::optional<ClosedLoop>& loop = p.condition.closed_loop)
    j["closed_loop"] = {{"concept", concept_name(loop->target.concept)}, {"target", loop->target.value},
                        {"kp", loop->controller.kp}, {"ki", loop->controller.ki}, {"kd", loop->controller.kd},
                        {"alpha_min", loop->controller.alpha_min}, {"alpha_max", loop->controller.alpha_max}};
  return j;
}

std::vector<PlannedCondition> conditions_from_json(const nlohmann::json& run, const std::string& source) {
  std::vector<PlannedCondition> planned;
  try {
    for (const nlohmann::json& j : run.at("conditions")) {
      PlannedCondition p;
      p.condition.name = j.at("name").get<std::string>();
      p.condition.task = j.at("task").get<std::string>();
      for (const nlohmann::json& iv : j.at("interventions")) {
        Intervention i;
        i.set = iv.at("set").get<std::string>();
        i.op = parse_intervention_op(iv.at("op").get<std::string>());
        i.alpha = iv.at("alpha").get<double>();
        p.condition.interventions.push_back(i);
      }
      p.kind = j.at("kind").get<std::string>();
      p.rollouts = j.at("rollouts").get<int>();
      if (p.kind == "sweep") {
        p.sweep_label = j.at("sweep").at("label").get<std::string>();
        p.sweep_alpha = j.at("sweep").at("alpha").get<double>();
      }
      if (j.contains("patch")) {
        const nlohmann::json& c = j.at("patch");
        PatchCondition pc;
        pc.mode = c.at("mode").get<std::string>();
        pc.source_task = c.at("source_task").get<std::string>();
        pc.specs = c.at("specs").get<std::vector<std::string>>();
        pc.dataset = c.at("dataset").get<std::string>();
        pc.frames = c.at("frames").get<int>();
        pc.source_variant = c.value("source_variant", std::string());
        p.condition.patch = pc;
      }
      if (j.contains("sae"))
        p.condition.sae = SaeCondition{j.at("sae").at("path").get<std::string>(),
                                       j.at("sae").at("setting").get<std::string>()};
      if (j.contains("closed_loop")) {
        const nlohmann::json& c = j.at("closed_loop");
        ClosedLoop loop;
        loop.target = parse_concept_target(
            c.at("concept").get<std::string>() + ":" + format_number(c.at("target").get<double>()), source);
        loop.target.value = c.at("target").get<double>();  // exactly, not as printed
        loop.controller = {c.at("kp").get<double>(), c.at("ki").get<double>(), c.at("kd").get<double>(),
                           c.at("alpha_min").get<double>(), c.at("alpha_max").get<double>()};
        p.condition.closed_loop = loop;
      }
      planned.push_back(p);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": conditions: " + e.what());
  }
  return planned;
}

// Rollout k of condition c, numbered across the whole experiment in run.json's order: the unit a shard owns.
struct JobIndex {
  std::vector<SteerJob> jobs;  // job j
  explicit JobIndex(const std::vector<PlannedCondition>& planned) {
    for (size_t c = 0; c < planned.size(); ++c)
      for (int k = 0; k < planned[c].rollouts; ++k) jobs.push_back({static_cast<int>(c), k});
  }
};

fs::path job_file(const fs::path& out, const SteerJob& job) {
  return out / "rollouts" /
         ("condition_" + std::to_string(job.condition) + "_rollout_" + std::to_string(job.index) + ".json");
}

// steer_report.json, steer_conditions.csv, the plots and the printed summary, from run.json and every condition's
// rollouts (in run.json's order) — the same whether they ran here or come from the shards `merge` combines.
void write_steer_report(const fs::path& out, const nlohmann::json& run, const std::vector<PlannedCondition>& planned,
                        const std::vector<SteerRun>& all_runs) {
  const double control_hz = run.at("control_hz").get<double>();
  const int n = run.at("rollouts_per_condition").get<int>();
  const bool neurons = !run.at("sets").get<std::string>().empty();
  std::vector<SteerRun> runs;  // the main and added conditions
  std::vector<const SteerRun*> sweep_runs;
  std::vector<std::string> added;
  for (size_t c = 0; c < planned.size(); ++c) {
    if (planned[c].kind == "sweep") {
      sweep_runs.push_back(&all_runs[c]);
      continue;
    }
    runs.push_back(all_runs[c]);
    if (planned[c].kind == "added" || planned[c].kind == "closed-loop" || planned[c].kind == "ablation" ||
        planned[c].kind == "patch" || planned[c].kind == "sae")
      added.push_back(planned[c].condition.name);
  }
  // The concept's target (--target): every condition's mean |concept − target|, static and closed-loop alike.
  const std::string target_text = run.value("target", std::string());
  const std::optional<ConceptTarget> target =
      target_text.empty() ? std::nullopt : std::optional(parse_concept_target(target_text, "run.json: target"));
  auto concept_errors = [&](const SteerRun& r) {  // cm (lift) or cm/s (speed)
    std::vector<double> e;
    for (size_t k = 0; k < r.rollouts.size(); ++k) e.push_back(100 * concept_error(r.rollouts[k], r.lifts[k], *target));
    return e;
  };
  auto run_named = [&](const std::string& name) -> const SteerRun* {
    for (const SteerRun& r : runs)
      if (r.condition.name == name) return &r;
    return nullptr;
  };
  const SteerRun& baseline = *run_named("baseline");

  // Per condition and vs baseline.
  nlohmann::json report;
  report["checkpoint"] = run.at("checkpoint");
  report["robot"] = run.at("robot");
  report["batch"] = run.at("batch");
  report["alpha"] = run.at("alpha");
  report["op"] = run.at("op");
  report["rollouts_per_condition"] = n;
  report["first_seed"] = run.at("first_seed");
  report["shard"] = run.at("shard");
  report["target"] = target_text;
  std::ofstream csv(out / "steer_conditions.csv");
  csv << "condition,rollouts,successes,lifted";
  for (const MetricDef& m : metric_defs())
    csv << "," << m.name << "_mean_" << m.unit << "," << m.name << "_ci_lo," << m.name << "_ci_hi";
  csv << "\n";
  for (const SteerRun& r : runs) {
    nlohmann::json c;
    int lifted = 0;
    for (const SteerMetrics& m : r.metrics) lifted += m.lifted;
    c["rollouts"] = r.metrics.size();
    for (const Intervention& iv : r.condition.interventions)
      c["interventions"].push_back({{"set", iv.set}, {"op", intervention_op_name(iv.op)}, {"alpha", iv.alpha}});
    if (!r.condition.task.empty()) c["task"] = r.condition.task;
    if (r.condition.sae) c["sae"] = {{"path", r.condition.sae->path}, {"setting", r.condition.sae->setting}};
    c["successes"] = successes(r);
    c["lifted"] = lifted;
    c["success_fisher_p_vs_baseline"] =
        fisher_exact_p(successes(r), n - successes(r), successes(baseline), n - successes(baseline));
    if (target) {
      const std::vector<double> e = concept_errors(r);
      const Summary s = summarize(e);
      c["concept_error"] = {{"mean", s.mean}, {"ci95", {s.ci_lo, s.ci_hi}}, {"n", s.n},
                            {"unit", target->concept == Concept::kLift ? "cm" : "cm/s"}};
    }
    if (r.condition.closed_loop) {
      // The α the controller set, over the calls where it acted.
      std::vector<double> alphas;
      for (const RolloutResult& rollout : r.rollouts)
        for (const RolloutStep& step : rollout.steps)
          if (step.model_ran && step.steer_alpha != 0) alphas.push_back(step.steer_alpha);
      c["alpha_while_acting"] = alphas.empty() ? nlohmann::json(nullptr)
                                               : nlohmann::json{{"mean", mean(alphas)},
                                                                {"max", *std::max_element(alphas.begin(), alphas.end())},
                                                                {"calls", alphas.size()}};
    }
    csv << r.condition.name << "," << r.metrics.size() << "," << successes(r) << "," << lifted;
    for (const MetricDef& m : metric_defs()) {
      const std::vector<double> v = metric_values(r, m);
      if (v.size() >= 2) {
        const Summary s = summarize(v);
        c[m.name] = {{"mean", s.mean}, {"ci95", {s.ci_lo, s.ci_hi}}, {"n", s.n}, {"unit", m.unit}};
        csv << "," << s.mean << "," << s.ci_lo << "," << s.ci_hi;
      } else {
        csv << ",,,";
      }
      if (&r != &baseline)
        c["vs_baseline"][m.name] = comparison_json(compare_runs(r, baseline, m.name, m.get, m.needs_lift), m.scale);
    }
    report["conditions"][r.condition.name] = c;
  }
  // The headline contrasts.
  const MetricDef& height = metric_defs()[0];
  const MetricDef& disp = metric_defs()[3];
  const MetricDef& lift_speed = metric_def("speed");
  // Height contrast of two conditions, when both ran, as dst[key].
  auto height_pair = [&](const std::string& a, const std::string& b, nlohmann::json& dst, const std::string& key) {
    if (!run_named(a) || !run_named(b)) return;
    dst[key] = comparison_json(compare_runs(*run_named(a), *run_named(b), height.name, height.get, true), 100);
  };
  height_pair("high", "low", report, "high_vs_low_mean_height_cm");
  height_pair("random", "baseline", report, "random_vs_baseline_mean_height_cm");
  height_pair("prompt-high", "prompt-low", report, "prompt_high_vs_low_mean_height_cm");
  // Speed contrasts (fast vs slow steering, and the prompts' own) as dst[prefix + "step_displacement_mm"], …, and the
  // further conditions' heights against the baseline.
  auto speed_pair = [&](const std::string& a, const std::string& b, nlohmann::json& dst, const std::string& prefix) {
    if (!run_named(a) || !run_named(b)) return;
    const SteerComparison c = compare_runs(*run_named(a), *run_named(b), disp.name, disp.get, true);
    dst[prefix + "step_displacement_mm"] = comparison_json(c, 1000);
    if (c.valid && c.summary_b.mean > 0) dst[prefix + "speed_ratio"] = c.summary_a.mean / c.summary_b.mean;
    // The lift's own speed (path length over duration of the lift segment), with its interval.
    const SteerComparison l = compare_runs(*run_named(a), *run_named(b), lift_speed.name, lift_speed.get, true);
    dst[prefix + "lift_speed_cm_s"] = comparison_json(l, 100);
    if (l.valid && l.summary_b.mean > 0) dst[prefix + "lift_speed_ratio"] = l.summary_a.mean / l.summary_b.mean;
  };
  speed_pair("fast", "slow", report, "fast_over_slow_");
  speed_pair("prompt-fast", "prompt-slow", report, "prompt_fast_over_slow_");
  // --pairs: any two conditions compared both ways (e.g. word-up:word-down, word-fast:word-slow).
  for (const std::string& pair : run.value("pairs", std::vector<std::string>{})) {
    const auto [a, b] = split_pair(pair, "--pairs", "A:B");
    nlohmann::json& j = report["pairs"][pair];
    j = {{"a", a}, {"b", b}};
    height_pair(a, b, j, "mean_height_cm");
    speed_pair(a, b, j, "");
  }
  for (const SteerRun& r : runs)
    if (r.condition.name.rfind("prompt-", 0) != 0 && &r != &baseline && r.condition.name != "random")
      report["vs_baseline_mean_height_cm"][r.condition.name] =
          comparison_json(compare_runs(r, baseline, height.name, height.get, true), 100);

  // Ablations: per zeroed layer, successes (Fisher p vs the baseline) and the lift's change, as a table and a chart.
  {
    BarChart chart{"successes with one component ablated (baseline " + std::to_string(successes(baseline)) +
                       "/" + std::to_string(n) + ")",
                   "successes"};
    BarChart::Group g{"successes", {}, {}};
    for (size_t c = 0; c < planned.size(); ++c) {
      if (planned[c].kind != "ablation") continue;
      const SteerRun& r = all_runs[c];
      const std::string& name = r.condition.name;
      report["ablations"][name] = {
          {"successes", successes(r)},
          {"rollouts", r.rollouts.size()},
          {"success_fisher_p_vs_baseline",
           fisher_exact_p(successes(r), n - successes(r), successes(baseline), n - successes(baseline))},
          {"mean_height_vs_baseline_cm", comparison_json(compare_runs(r, baseline, height.name, height.get, true), 100)}};
      if (r.condition.patch) {
        report["ablations"][name]["mode"] = r.condition.patch->mode;
        report["ablations"][name]["specs"] = r.condition.patch->specs;
      }
      chart.categories.push_back(name);
      g.values.push_back(successes(r));
      g.errors.push_back(0);
    }
    if (!chart.categories.empty()) {
      chart.groups.push_back(g);
      chart.save((out / "ablation_successes.png").string(), std::max(900, 60 * static_cast<int>(chart.categories.size())),
                 420);
    }
  }
  // Patching: per patched condition, the lift's change against the baseline and the share of the source prompt's
  // change it reproduces, (h_patched − h_baseline) / (h_source − h_baseline), beside its norm-matched random control.
  {
    BarChart chart{"mean lift height change vs baseline, cm (patched from the source prompt or demonstration; 95% CI)",
                   "cm"};
    BarChart::Group patched{"patch", {}, {}}, control{"random patch (same norm)", {}, {}};
    for (size_t c = 0; c < planned.size(); ++c) {
      if (planned[c].kind != "patch") continue;
      const std::string& mode = planned[c].condition.patch->mode;
      if (mode != "patch" && mode != "episode") continue;
      const SteerRun& r = all_runs[c];
      const PatchCondition& pc = *r.condition.patch;
      const SteerRun* source = nullptr;  // the prompt's own condition (between prompts)
      for (const SteerRun& s : runs)
        if (mode == "patch" && s.condition.task == pc.source_task && !s.condition.patch &&
            s.condition.interventions.empty())
          source = &s;
      const std::string control_mode = mode == "patch" ? "random" : "episode-random";
      const SteerRun* random = nullptr;
      for (size_t k = 0; k < planned.size(); ++k)
        if (planned[k].kind == "patch" && planned[k].condition.patch->mode == control_mode &&
            planned[k].condition.patch->specs == pc.specs &&
            planned[k].condition.patch->source_variant == pc.source_variant)
          random = &all_runs[k];
      nlohmann::json j = {{"specs", pc.specs}, {"successes", successes(r)}, {"rollouts", r.rollouts.size()}};
      if (mode == "patch") j["source_task"] = pc.source_task;
      if (mode == "episode") j["source_demonstrations"] = {{"dataset", pc.dataset}, {"variant", pc.source_variant}};
      const SteerComparison vs = compare_runs(r, baseline, height.name, height.get, true);
      j["mean_height_vs_baseline_cm"] = comparison_json(vs, 100);
      if (source) {
        const SteerComparison whole = compare_runs(*source, baseline, height.name, height.get, true);
        j["source_condition"] = source->condition.name;
        if (vs.valid && whole.valid && whole.welch.difference != 0)
          j["share_of_source_change"] = vs.welch.difference / whole.welch.difference;
      }
      chart.categories.push_back(r.condition.name);
      patched.values.push_back(vs.valid ? 100 * vs.welch.difference : 0);
      patched.errors.push_back(vs.valid ? 50 * (vs.welch.ci_hi - vs.welch.ci_lo) : 0);
      if (random) {
        const SteerComparison rv = compare_runs(*random, baseline, height.name, height.get, true);
        j["random_control"] = {{"condition", random->condition.name}, {"successes", successes(*random)},
                               {"mean_height_vs_baseline_cm", comparison_json(rv, 100)}};
        control.values.push_back(rv.valid ? 100 * rv.welch.difference : 0);
        control.errors.push_back(rv.valid ? 50 * (rv.welch.ci_hi - rv.welch.ci_lo) : 0);
      }
      report["patching"][r.condition.name] = j;
    }
    if (!chart.categories.empty()) {
      chart.groups.push_back(patched);
      if (control.values.size() == patched.values.size()) chart.groups.push_back(control);
      chart.save((out / "patch_heights.png").string(), std::max(900, 80 * static_cast<int>(chart.categories.size())),
                 420);
    }
  }
  // α sweep: one curve per swept set, in run.json's order.
  if (!sweep_runs.empty()) {
    // The plots' font has no Greek letters.
    LinePlot plot{"alpha sweep: lift-segment mean height", "alpha", "mean EE height (cm)"};
    std::vector<std::string> labels;
    for (const PlannedCondition& p : planned)
      if (p.kind == "sweep" && std::find(labels.begin(), labels.end(), p.sweep_label) == labels.end())
        labels.push_back(p.sweep_label);
    for (const std::string& label : labels) {
      std::vector<double> x, y, lo, hi, all_x, all_y;
      for (size_t c = 0; c < planned.size(); ++c) {
        if (planned[c].kind != "sweep" || planned[c].sweep_label != label) continue;
        const double a = planned[c].sweep_alpha;
        std::vector<double> v;
        for (const SteerMetrics& m : all_runs[c].metrics)
          if (m.lifted) v.push_back(m.mean_height * 100), all_x.push_back(a), all_y.push_back(m.mean_height * 100);
        if (v.size() >= 2) {
          const Summary s = summarize(v);
          x.push_back(a), y.push_back(s.mean), lo.push_back(s.ci_lo), hi.push_back(s.ci_hi);
        }
        report["alpha_sweep"][label][format_number(a)] = {
            {"successes", successes(all_runs[c])}, {"mean_height_cm", v.empty() ? 0.0 : mean(v)}, {"lifted", v.size()}};
        if (target) report["alpha_sweep"][label][format_number(a)]["concept_error"] = mean(concept_errors(all_runs[c]));
      }
      if (all_x.size() >= 3) {
        const LinearFit fit = linear_fit(all_x, all_y);
        report["alpha_sweep"][label]["slope_cm_per_alpha"] = {
            {"slope", fit.slope}, {"ci95", {fit.slope_ci_lo, fit.slope_ci_hi}}, {"p", fit.p}};
      }
      if (x.size() >= 2) plot.add(label, x, y, lo, hi);
    }
    std::vector<double> by;
    for (const SteerMetrics& m : baseline.metrics)
      if (m.lifted) by.push_back(m.mean_height * 100);
    if (!by.empty()) plot.hlines.push_back({mean(by), "baseline"});
    plot.save((out / "alpha_sweep.png").string());
  }
  std::ofstream(out / "steer_report.json") << report.dump(2) << "\n";

  // Plots.
  std::vector<const SteerRun*> all;
  for (const SteerRun& r : runs) all.push_back(&r);
  plot_heights(all, control_hz, "End-effector height around the lift, per condition (mean, 95% band)",
               (out / "height_over_time.png").string());
  if (neurons)
    plot_heights({run_named("high"), run_named("low"), &baseline}, control_hz,
                 "High vs Low end-effector height over " + std::to_string(n) + " rollouts",
                 (out / "high_vs_low_height.png").string());
  if (run_named("prompt-high") && run_named("prompt-low"))
    plot_heights({run_named("prompt-high"), run_named("prompt-low"), &baseline}, control_hz,
                 "Prompted high vs low end-effector height over " + std::to_string(n) + " rollouts",
                 (out / "prompt_high_vs_low_height.png").string());
  for (const MetricDef& m : metric_defs()) bar_plot(runs, m, (out / ("bars_" + std::string(m.name) + ".png")).string());
  // Closed loop: the α every episode got at each policy call (blue: success, red: failure).
  for (const SteerRun& r : runs) {
    if (!r.condition.closed_loop) continue;
    LinePlot trace{"alpha set by the controller, " + r.condition.name + " (blue: success, red: failure)", "time (s)",
                   "alpha"};
    for (const RolloutResult& rollout : r.rollouts) {
      std::vector<double> t, a;
      for (const RolloutStep& step : rollout.steps)
        if (step.model_ran) t.push_back(step.time), a.push_back(step.steer_alpha);
      if (t.size() >= 2)
        trace.add("", t, a).colour = rollout.success ? Rgb{40, 120, 200} : Rgb{220, 80, 60};
    }
    trace.save((out / ("alpha_trace_" + r.condition.name + ".png")).string());
  }

  // Terminal summary.
  std::printf("%-12s %5s %8s %14s %14s %16s %10s\n", "condition", "succ", "lifted", "mean h (cm)", "max h (cm)",
              "disp (mm/step)", "length s");
  for (const SteerRun& r : runs) {
    const auto& c = report["conditions"][r.condition.name];
    auto val = [&](const char* k) { return c.contains(k) ? c[k]["mean"].get<double>() : NAN; };
    std::printf("%-12s %2d/%-2d %8d %14.2f %14.2f %16.2f %10.2f\n", r.condition.name.c_str(), successes(r), n,
                c["lifted"].get<int>(), val("mean_height"), val("max_height"), val("step_displacement"), val("length"));
  }
  auto line = [&](const char* what, const nlohmann::json& j, const char* unit) {
    if (j.is_null()) {
      std::printf("%s: not enough lifted rollouts\n", what);
      return;
    }
    std::printf("%s: %+.2f %s (95%% CI %+.2f…%+.2f), Welch p %.3g, Mann–Whitney p %.3g, g %.2f\n", what,
                j["difference"].get<double>(), unit, j["ci95"][0].get<double>(), j["ci95"][1].get<double>(),
                j["welch_p"].get<double>(), j["mann_whitney_p"].get<double>(), j["hedges_g"].get<double>());
  };
  if (neurons) {
    line("high − low mean lift height", report["high_vs_low_mean_height_cm"], "cm");
    line("random − baseline mean lift height", report["random_vs_baseline_mean_height_cm"], "cm");
  }
  if (report.contains("fast_over_slow_step_displacement_mm")) {
    line("fast − slow step displacement", report["fast_over_slow_step_displacement_mm"], "mm/step");
    if (report.contains("fast_over_slow_speed_ratio"))
      std::printf("fast / slow speed ratio %.2f\n", report["fast_over_slow_speed_ratio"].get<double>());
    if (report.contains("fast_over_slow_lift_speed_ratio"))
      std::printf("fast / slow lift speed ratio %.2f\n", report["fast_over_slow_lift_speed_ratio"].get<double>());
  }
  if (report.contains("prompt_high_vs_low_mean_height_cm"))
    line("prompt high − prompt low mean lift height", report["prompt_high_vs_low_mean_height_cm"], "cm");
  if (report.contains("prompt_fast_over_slow_speed_ratio"))
    std::printf("prompt fast / prompt slow speed ratio %.2f\n", report["prompt_fast_over_slow_speed_ratio"].get<double>());
  if (report.contains("prompt_fast_over_slow_lift_speed_ratio"))
    std::printf("prompt fast / prompt slow lift speed ratio %.2f\n",
                report["prompt_fast_over_slow_lift_speed_ratio"].get<double>());
  for (const std::string& name : added)
    line((name + " − baseline mean lift height").c_str(), report["vs_baseline_mean_height_cm"][name], "cm");
  if (report.contains("pairs"))
    for (const auto& [pair, j] : report["pairs"].items()) {
      const std::string a = j.at("a").get<std::string>(), b = j.at("b").get<std::string>();
      line((a + " − " + b + " mean lift height").c_str(), j.value("mean_height_cm", nlohmann::json()), "cm");
      if (j.contains("lift_speed_ratio"))
        std::printf("%s / %s lift speed ratio %.2f\n", a.c_str(), b.c_str(), j["lift_speed_ratio"].get<double>());
    }
  if (target) {
    std::printf("concept error, mean |%s − %g| (%s; 95%% CI), successes:\n", concept_name(target->concept),
                target->value, target->concept == Concept::kLift ? "cm" : "cm/s");
    for (const SteerRun& r : runs) {
      const nlohmann::json& e = report["conditions"][r.condition.name]["concept_error"];
      std::printf("  %-14s %6.2f (%.2f…%.2f)  %2d/%d%s\n", r.condition.name.c_str(), e["mean"].get<double>(),
                  e["ci95"][0].get<double>(), e["ci95"][1].get<double>(), successes(r), n,
                  r.condition.closed_loop ? "  closed loop" : "");
    }
  }
  std::printf("wrote %s\n", (out / "steer_report.json").c_str());
}

// One job's rollout read back from its file: a missing file is an Error naming it and the condition, a file of
// another seed an Error naming both seeds.
RolloutResult read_job_file(const fs::path& file, const SteerJob& job, const std::vector<PlannedCondition>& planned,
                            uint64_t seed0) {
  require(fs::exists(file), "rollout " + std::to_string(job.index) + " of condition '" +
                                planned[static_cast<size_t>(job.condition)].condition.name + "' is missing: " +
                                file.string() + " (that shard did not finish; run it again with --resume)");
  RolloutResult r = read_rollout_file(file.string());
  require(r.seed == seed0 + static_cast<uint64_t>(job.index),
          file.string() + " holds seed " + std::to_string(r.seed) + ", expected " +
              std::to_string(seed0 + static_cast<uint64_t>(job.index)));
  return r;
}

// Every condition's rollouts in run.json's order, job j's from rollout_of(j, job).
std::vector<SteerRun> collect_steer_runs(const std::vector<PlannedCondition>& planned,
                                         const std::function<RolloutResult(int64_t j, const SteerJob&)>& rollout_of) {
  const JobIndex index(planned);
  std::vector<std::vector<RolloutResult>> rollouts(planned.size());
  for (size_t j = 0; j < index.jobs.size(); ++j)
    rollouts[static_cast<size_t>(index.jobs[j].condition)].push_back(rollout_of(static_cast<int64_t>(j), index.jobs[j]));
  std::vector<SteerRun> runs;
  for (size_t c = 0; c < planned.size(); ++c)
    runs.push_back(make_steer_run(planned[c].condition, std::move(rollouts[c])));
  return runs;
}

// "NAME=REST" of --add-conditions and --closed-loop: the name, new among the planned conditions, and the rest.
std::pair<std::string, std::string> split_named_condition(const std::string& item, const std::string& flag,
                                                          const std::string& form,
                                                          const std::vector<PlannedCondition>& planned) {
  const size_t eq = item.find('=');
  require(eq != std::string::npos && eq > 0 && eq + 1 < item.size(),
          "--" + flag + ": '" + item + "' must be " + form);
  const std::string name = item.substr(0, eq);
  for (const PlannedCondition& p : planned)
    require(p.condition.name != name, "--" + flag + ": '" + name + "' names a condition twice");
  return {name, item.substr(eq + 1)};
}

}  // namespace

int run_steer_experiment(int argc, char** argv) {
  ArgParser args(
      "vlascope steer-experiment",
      "Switch concept neurons on (Häon et al.: mlp.post := α at every position and pass) and measure the\n"
      "arm on identical seeds: baseline, high, low, a random set like high, fast, slow, and prompt-only\n"
      "baselines; lift height and speed, episode length, success; CIs, tests, effect sizes, α sweep, plots;\n"
      "closed-loop steering (--target, --closed-loop), per-layer MLP ablations (--ablate-mlp), activation\n"
      "patching from another prompt or a demonstration at every policy call (--patch, --patch-layers,\n"
      "--patch-episodes, --patch-random), zero, mean or resample ablations of heads, attention outputs or any\n"
      "hook point (--ablate-heads, --ablate-attn, --ablate), and a sparse autoencoder spliced in or its features\n"
      "clamped (--sae, --sae-conditions).\n"
      "Every finished rollout is kept in <out>/rollouts/ at once, so --resume loses none, and --shard K/N runs\n"
      "a share of the rollouts (all conditions and the sweep) that `vlascope merge` combines into one report.");
  add_policy_options(args);
  add_episode_options(args);
  args.option("sets", "",
              "neuron_sets.json (vlascope neurons); empty: no neuron conditions, only the baseline and the prompts\n"
              "(a prompt-following study)");
  args.required("out", "output directory");
  add_robot_options(args);
  add_batch_options(args);
  add_workers_option(args);
  args.option("high", "high", "set used as 'high'; SET@ALPHA gives this condition its own α (e.g. rise_direction@8)");
  args.option("low", "low", "set used as 'low' (SET@ALPHA as for --high, e.g. rise_direction@-8)");
  args.option("fast", "fast", "set used as 'fast' (empty: skip; SET@ALPHA)");
  args.option("slow", "slow", "set used as 'slow' (empty: skip; SET@ALPHA)");
  args.option("alpha", "4", "α of the sets (Häon et al. use 4 on OpenVLA, 10 on π0-FAST)");
  args.option("op", "set",
              "set (x := α), add (x += α) or scale (x *= α); a weighted set (a direction: rise_direction, …)\n"
              "uses α × each channel's weight, so use add with it");
  args.option("rollouts", "10", "rollouts per condition");
  args.option("seed", "200000", "first seed (every condition uses the same seeds)");
  args.option("prompt-high", "pick up the cube and lift it high", "prompt-only baseline for high (empty: skip)");
  args.option("prompt-low", "pick up the cube and lift it low", "prompt-only baseline for low (empty: skip)");
  args.option("prompt-fast", "pick up the cube and lift it fast", "prompt-only baseline for fast (empty: skip)");
  args.option("prompt-slow", "pick up the cube and lift it slowly", "prompt-only baseline for slow (empty: skip)");
  args.option("add-conditions", "",
              "further conditions NAME=SET@ALPHA,… steered with op add whatever --op says, e.g. the prompt\n"
              "directions of vlascope neurons: caa-high=prompt_rise@1,caa-low=prompt_rise@-1");
  args.option("pairs", "",
              "further contrasts A:B,… of two conditions of the run (e.g. word-up:word-down,word-fast:word-slow):\n"
              "A − B mean lift height and A / B speed, with intervals and tests, like high:low and fast:slow");
  args.option("target", "",
              "the concept to hold and its value, lift:METRES (end-effector rise above the grasp) or speed:M_PER_S:\n"
              "the closed-loop conditions' target, and every condition's concept error (mean |concept − target|)");
  args.option("closed-loop", "",
              "closed-loop conditions NAME=SET,… (needs --target): op add on SET with α set at every policy call by\n"
              "a PID controller on the relative error (target − concept) / target, e.g. cl-high=prompt_rise_tokens");
  args.option("kp", "4", "closed loop: proportional gain (CTRL-STEER: 4)");
  args.option("ki", "0.5", "closed loop: integral gain, per second (0.5)");
  args.option("kd", "1", "closed loop: derivative gain, seconds (1)");
  args.option("alpha-clip", "0,20", "closed loop: α's range MIN,MAX (0,20)");
  args.option("ablate-mlp", "",
              "vlm, expert or vlm,expert: a condition per layer of those streams with the layer's whole MLP output\n"
              "zeroed (mlp.post := 0), named zero-vlm0, zero-expert3, …: which layers the policy depends on");
  args.option("patch", "",
              "closed-loop patching conditions NAME=SPEC|SPEC…;… (specs as `vlascope patch` reads them): at every\n"
              "policy call the observation first runs under --patch-source with the specs' activations recorded, then\n"
              "the episode's call gets them written in, e.g. hi-vlm1=vlm.layers.1.resid.post@images+last_word+state");
  args.option("patch-layers", "",
              "vlm, expert or vlm,expert: a patching condition per layer (patch-vlm0, patch-expert3, …) at resid.post,\n"
              "VLM rows --patch-vlm-rows");
  args.option("patch-vlm-rows", "images+last_word+state", "rows patched in the VLM layers of --patch-layers");
  args.option("patch-source", "",
              "the prompt patched from (empty: --prompt-high); a prompt condition with it gives the share moved");
  args.option("patch-episodes", "",
              "patching between episodes, NAME=VARIANT:SPEC|SPEC…;…: at every policy call the specs' activations of a\n"
              "VARIANT demonstration of --patch-dataset at the episode's own time (rollout k reads the k-th, cycling)\n"
              "written in, under the experiment's instruction, e.g. hi-state=high:vlm.embed@state");
  args.option("patch-dataset", "", "recorded demonstrations --patch-episodes reads");
  args.flag("patch-random", "add a norm-matched random patch (random-NAME) beside every patching condition");
  args.option("sae", "", "a sparse autoencoder (vlascope sae train) for --sae-conditions");
  args.option("sae-conditions", "",
              "conditions NAME=SETTING;… with the --sae spliced in at its hook point for the whole episode: reconstruct\n"
              "(the policy on what the SAE keeps), mean (its training rows' mean: the reference) or clamp:F=V,F=V\n"
              "(features F held at V along their decoder directions, the SAE's error kept), each on some of the\n"
              "SAE's kinds of row with @ROWS, e.g. sae-splice=reconstruct;f12-on=clamp:12=8@state; compared with the\n"
              "baseline like --add-conditions");
  args.option("ablate", "",
              "ablation conditions NAME=MODE:SPEC|SPEC…;… with MODE zero, mean or resample (mean and resample take\n"
              "their values from --ablate-dataset), e.g. no-h1=zero:expert.layers.2.attn.heads@head:1");
  args.option("ablate-heads", "",
              "vlm, expert or vlm,expert: a condition per attention head of every layer of those streams (its output\n"
              "before o_proj ablated as --ablate-mode says), named MODE-vlm2h1, …");
  args.option("ablate-attn", "",
              "vlm, expert or vlm,expert: a condition per layer with its whole attention output (attn.out) ablated");
  args.option("ablate-mode", "zero", "zero, mean or resample: the ablation of --ablate-heads and --ablate-attn");
  args.option("ablate-dataset", "", "recorded demonstrations the mean and resample ablations take values from");
  args.option("ablate-frames", "64", "frames of --ablate-dataset averaged by a mean ablation (or drawn from)");
  args.option("sweep", "1,2,4,8", "α values of the dose–response sweep (empty: skip)");
  args.option("sweep-rollouts", "5", "rollouts per α in the sweep");
  args.option("shard", "0/1",
              "K/N: run only the rollouts j with j mod N = K (rollouts numbered over all conditions and the sweep),\n"
              "for `vlascope merge`");
  args.flag("resume", "keep the rollouts already in <out>/rollouts/ (same experiment, checked) and run the rest");
  if (!args.parse(argc, argv)) return 0;
  const fs::path out(args.get("out"));
  fs::create_directories(out);
  const Shard shard = parse_shard(args.get("shard"));
  std::unique_ptr<Policy> policy = load_policy(args);
  const BatchOptions batch = batch_options(args);
  const std::shared_ptr<Robot> robot = make_robot(args);
  const RobotFactory robots = lane_robots(args, robot);
  const bool neurons = !args.get("sets").empty();
  std::vector<NeuronSet> sets = neurons ? read_neuron_sets(args.get("sets")) : std::vector<NeuronSet>{};
  const ModelShape shape = model_shape(policy->config());
  const InterventionOp op = parse_intervention_op(args.get("op"));
  const double alpha = args.get_double("alpha");
  const int n = args.get_int("rollouts"), sweep_n = args.get_int("sweep-rollouts");
  require(n >= 1, "--rollouts must be at least 1");
  require(sweep_n >= 0, "--sweep-rollouts must be ≥ 0, got " + args.get("sweep-rollouts"));
  require(args.get_int64("seed") >= 0, "--seed must be ≥ 0, got " + args.get("seed"));
  auto steer = [&](const std::string& set, double a) {
    Intervention iv;
    iv.set = set;
    iv.op = op;
    iv.alpha = a;
    return std::vector<Intervention>{iv};
  };
  auto main_condition = [&](const SteerCondition& c) { return PlannedCondition{c, "main", n, "", 0}; };
  const SetChoice high_choice = parse_set_choice(args.get("high"), alpha, "high");
  const SetChoice low_choice = parse_set_choice(args.get("low"), alpha, "low");
  std::vector<PlannedCondition> planned = {main_condition({"baseline", {}, ""})};
  if (neurons) {
    // The random control: as many neurons as "high", in the same layers, with the same weights and α.
    const NeuronSet& high = find_neuron_set(sets, high_choice.set);
    sets.push_back(random_like(high, shape, 12345, "random"));
    planned.push_back(main_condition({"high", steer(high_choice.set, high_choice.alpha), ""}));
    planned.push_back(main_condition({"low", steer(low_choice.set, low_choice.alpha), ""}));
    planned.push_back(main_condition({"random", steer("random", high_choice.alpha), ""}));
  }
  for (const char* name : {"fast", "slow"})
    if (neurons && !args.get(name).empty()) {
      const SetChoice c = parse_set_choice(args.get(name), alpha, name);
      planned.push_back(main_condition({name, steer(c.set, c.alpha), ""}));
    }
  for (const char* name : {"prompt-high", "prompt-low", "prompt-fast", "prompt-slow"})
    if (!args.get(name).empty()) planned.push_back(main_condition({name, {}, args.get(name)}));
  for (const std::string& item : args.get_list("add-conditions")) {
    const auto [name, choice] = split_named_condition(item, "add-conditions", "NAME=SET@ALPHA", planned);
    const SetChoice c = parse_set_choice(choice, alpha, "add-conditions");
    find_neuron_set(sets, c.set);  // an Error naming the set when the file lacks it
    std::vector<Intervention> iv = steer(c.set, c.alpha);
    iv[0].op = InterventionOp::kAdd;
    planned.push_back({{name, iv, ""}, "added", n, "", 0});
  }
  // Ablations, one mechanism for all of them (the patcher: interp/patching.h): a condition per layer's MLP output
  // (--ablate-mlp), attention output (--ablate-attn) or head (--ablate-heads), and any spec (--ablate).
  auto ablation = [&](const std::string& option, const std::string& mode, std::vector<std::string> specs) {
    require(is_ablation_mode(mode), "--" + option + ": unknown mode '" + mode + "' (zero, mean, resample)");
    require(!specs.empty(), "--" + option + ": no spec");
    require(mode == "zero" || !args.get("ablate-dataset").empty(),
            "--" + option + ": " + mode + " ablation needs --ablate-dataset (the frames its values come from)");
    require(args.get_int("ablate-frames") >= 1,
            "--ablate-frames must be at least 1 (got " + args.get("ablate-frames") + ")");
    PatchCondition pc;
    pc.mode = mode;
    pc.specs = std::move(specs);
    if (mode != "zero") pc.dataset = args.get("ablate-dataset"), pc.frames = args.get_int("ablate-frames");
    std::vector<PatchSpec> parsed;
    for (const std::string& s : pc.specs) parsed.push_back(parse_patch_spec(s));
    check_patch_between(*policy, parsed, args.get("task"), args.get("task"));  // an Error naming the spec now
    return pc;
  };
  auto add_ablation = [&](const std::string& option, const std::string& name, const PatchCondition& pc) {
    for (const PlannedCondition& p : planned)
      require(p.condition.name != name, "--" + option + ": '" + name + "' names a condition twice");
    SteerCondition condition{name, {}, ""};
    condition.patch = pc;
    planned.push_back({condition, "ablation", n, "", 0});
  };
  // One spec per layer of a stream named by an option (an Error naming the option otherwise).
  auto stream_layers = [&](const std::string& option, const std::string& stream, HookSite site) {
    require(stream == "vlm" || stream == "expert", "--" + option + ": '" + stream + "' is not a stream (vlm, expert)");
    return layer_patch_specs(*policy, {stream}, site);
  };
  for (const std::string& stream : args.get_list("ablate-mlp"))
    for (const PatchSpec& s : stream_layers("ablate-mlp", stream, HookSite::kMlpPost))
      add_ablation("ablate-mlp", "zero-" + stream + std::to_string(s.point.layer), ablation("ablate-mlp", "zero", {s.text}));
  if (!args.get("closed-loop").empty()) {
    require(!args.get("target").empty(), "--closed-loop needs --target (the concept and the value to hold it at)");
    ClosedLoop loop;
    loop.target = parse_concept_target(args.get("target"), "--target");
    const std::vector<double> clip = args.get_doubles("alpha-clip");
    require(clip.size() == 2 && clip[0] <= clip[1], "--alpha-clip: expected MIN,MAX with MIN ≤ MAX, got '" +
                                                        args.get("alpha-clip") + "'");
    loop.controller = {args.get_double("kp"), args.get_double("ki"), args.get_double("kd"), clip[0], clip[1]};
    for (const std::string& item : args.get_list("closed-loop")) {
      const auto [name, set] = split_named_condition(item, "closed-loop", "NAME=SET", planned);
      find_neuron_set(sets, set);  // an Error naming the set when the file lacks it
      std::vector<Intervention> iv = steer(set, 1.0);  // the controller's α multiplies this
      iv[0].op = InterventionOp::kAdd;
      SteerCondition condition{name, iv, ""};
      condition.closed_loop = loop;
      planned.push_back({condition, "closed-loop", n, "", 0});
    }
  } else if (!args.get("target").empty()) {
    parse_concept_target(args.get("target"), "--target");  // an Error now rather than after the rollouts
  }
  // A patching condition whose specs are checked now (an Error naming the spec: a layer the model lacks, rows the two
  // prompts cannot match), not mid-experiment; with --patch-random also its norm-matched control, random-NAME.
  auto add_patched = [&](const std::string& option, const std::string& name, PatchCondition pc,
                         const std::string& target_task, const std::string& random_mode) {
    require(!pc.specs.empty(), "--" + option + ": '" + name + "' has no spec");
    std::vector<PatchSpec> parsed;
    for (const std::string& text : pc.specs) parsed.push_back(parse_patch_spec(text));
    check_patch_between(*policy, parsed, pc.source_task.empty() ? target_task : pc.source_task, target_task);
    for (bool random : {false, true}) {
      if (random && !args.get_flag("patch-random")) continue;
      SteerCondition condition{random ? "random-" + name : name, {}, ""};
      for (const PlannedCondition& p : planned)
        require(p.condition.name != condition.name, "--" + option + ": '" + condition.name + "' names a condition twice");
      if (random) pc.mode = random_mode;
      condition.patch = pc;
      planned.push_back({condition, "patch", n, "", 0});
    }
  };
  {
    const std::string source = args.get("patch-source").empty() ? args.get("prompt-high") : args.get("patch-source");
    std::vector<std::pair<std::string, std::vector<std::string>>> patches;  // name → specs
    for (const std::string& stream : args.get_list("patch-layers"))
      for (const PatchSpec& s : layer_patch_specs(*policy, {stream}, HookSite::kResidPost, args.get("patch-vlm-rows")))
        patches.push_back({"patch-" + stream + std::to_string(s.point.layer), {s.text}});
    for (const std::string& item : split_nonempty(args.get("patch"), ';')) {
      const auto [name, rest] = split_named_condition(item, "patch", "NAME=SPEC|SPEC…", planned);
      patches.push_back({name, split_nonempty(rest, '|')});
    }
    if (!patches.empty())
      require(!source.empty(), "--patch/--patch-layers: no prompt to patch from (--patch-source, --prompt-high)");
    for (const auto& [name, specs] : patches) {
      PatchCondition pc;
      pc.mode = "patch";
      pc.source_task = source;
      pc.specs = specs;
      add_patched("patch", name, pc, args.get("task"), "random");
    }
  }
  if (!args.get("patch-episodes").empty()) {
    require(!args.get("patch-dataset").empty(), "--patch-episodes needs --patch-dataset (the demonstrations)");
    const DatasetReader dataset(args.get("patch-dataset"));
    for (const std::string& item : split_nonempty(args.get("patch-episodes"), ';')) {
      const auto [name, rest] = split_named_condition(item, "patch-episodes", "NAME=VARIANT:SPEC|SPEC…", planned);
      const auto [variant, specs] = split_pair(rest, "--patch-episodes", "NAME=VARIANT:SPEC|SPEC…");
      require(!successful_variant_episodes(dataset, variant, 1).empty(),
              "--patch-episodes: '" + name + "': " + args.get("patch-dataset") + " has no successful '" + variant +
                  "' episode");
      PatchCondition pc;
      pc.mode = "episode";
      pc.specs = split_nonempty(specs, '|');
      pc.dataset = args.get("patch-dataset");
      pc.source_variant = variant;
      add_patched("patch-episodes", name, pc, args.get("task"), "episode-random");
    }
  } else {
    require(args.get("patch-dataset").empty(), "--patch-dataset is only read by --patch-episodes (none given)");
  }
  if (!args.get("sae-conditions").empty()) {
    require(!args.get("sae").empty(), "--sae-conditions needs --sae (the autoencoder's folder)");
    // The SAE loaded and spliced once now: an Error naming the folder, hook or feature before anything runs.
    const Sae sae = Sae::load(args.get("sae"));
    SaeSplice check(*policy, sae);
    for (const std::string& item : split_nonempty(args.get("sae-conditions"), ';')) {
      const auto [name, setting] = split_named_condition(item, "sae-conditions", "NAME=SETTING", planned);
      apply_splice_setting(check, parse_splice_setting(setting, "--sae-conditions '" + name + "'"));
      SteerCondition condition{name, {}, ""};
      condition.sae = SaeCondition{args.get("sae"), setting};
      planned.push_back({condition, "sae", n, "", 0});
    }
  } else {
    require(args.get("sae").empty(), "--sae is only read by --sae-conditions (none given)");
  }
  const std::string mode = args.get("ablate-mode");
  for (const std::string& stream : args.get_list("ablate-heads"))
    for (const PatchSpec& s : stream_layers("ablate-heads", stream, HookSite::kAttnHeads))
      for (int h = 0; h < policy->config().text.heads; ++h)
        add_ablation("ablate-heads", mode + "-" + stream + std::to_string(s.point.layer) + "h" + std::to_string(h),
                     ablation("ablate-mode", mode, {s.text + "@head:" + std::to_string(h)}));
  for (const std::string& stream : args.get_list("ablate-attn"))
    for (const PatchSpec& s : stream_layers("ablate-attn", stream, HookSite::kAttnOut))
      add_ablation("ablate-attn", mode + "-" + stream + std::to_string(s.point.layer) + "-attn",
                   ablation("ablate-mode", mode, {s.text}));
  for (const std::string& item : split_nonempty(args.get("ablate"), ';')) {
    const auto [name, rest] = split_named_condition(item, "ablate", "NAME=MODE:SPEC|SPEC…", planned);
    const size_t colon = rest.find(':');
    require(colon != std::string::npos, "--ablate: '" + item + "' must be NAME=MODE:SPEC|SPEC…");
    add_ablation("ablate", name, ablation("ablate", rest.substr(0, colon), split_nonempty(rest.substr(colon + 1), '|')));
  }
  // The α sweep on the high and low sets; a condition with a negative α (a direction steered away) sweeps negative
  // values, and one direction steered both ways gives two curves of one set, so the curves are named by condition.
  const std::vector<double> sweep =
      args.get("sweep").empty() || !neurons ? std::vector<double>{} : args.get_doubles("sweep");
  if (!sweep.empty()) require(sweep_n >= 1, "--sweep-rollouts must be at least 1");
  for (const auto& [condition, choice] : {std::pair{"high", high_choice}, std::pair{"low", low_choice}}) {
    const double sign = choice.alpha < 0 ? -1 : 1;
    const std::string label = choice.set == condition ? choice.set : std::string(condition) + ": " + choice.set;
    for (double a : sweep)
      planned.push_back({{label + " α=" + format_number(sign * a), steer(choice.set, sign * a), ""},
                         "sweep", sweep_n, label, sign * a});
  }

  // --pairs, checked against the planned conditions before anything runs.
  std::vector<std::string> pairs;
  for (const std::string& pair : args.get_list("pairs")) {
    const auto [a, b] = split_pair(pair, "--pairs", "A:B");
    for (const std::string& name : {a, b}) {
      bool found = false;
      for (const PlannedCondition& p : planned) found = found || (p.kind != "sweep" && p.condition.name == name);
      require(found, "--pairs: '" + name + "' (in " + pair + ") is not a condition of this run");
    }
    pairs.push_back(pair);
  }

  // The experiment's description: what a resumed run and the shards of one sweep must agree on.
  nlohmann::json options;
  for (const char* key : {"task", "max-seconds", "after-success", "precision", "camera-map", "tokenizer", "action-steps",
                          "op", "alpha", "scene", "sim-size", "sim-quality"})
    options[key] = args.get(key);
  nlohmann::json run = {{"command", "steer-experiment"},
                        {"checkpoint", args.get("checkpoint")},
                        {"weights", file_digest((fs::path(args.get("checkpoint")) / "model.safetensors").string())},
                        {"sets", neurons ? file_digest(args.get("sets")) : std::string()},
                        {"robot", robot->name()},
                        {"control_hz", robot->control_hz()},
                        {"first_seed", static_cast<uint64_t>(args.get_int64("seed"))},
                        {"rollouts_per_condition", n},
                        {"batch", batch.lanes},
                        {"alpha", alpha},
                        {"op", intervention_op_name(op)},
                        {"target", args.get("target")},
                        {"options", options},
                        {"conditions", nlohmann::json::array()},
                        {"pairs", pairs},
                        {"shard", shard.text()}};
  for (const PlannedCondition& p : planned) run["conditions"].push_back(condition_to_json(p));
  const uint64_t seed = run.at("first_seed").get<uint64_t>();

  const JobIndex index(planned);
  const int64_t total = static_cast<int64_t>(index.jobs.size());
  if (run_in_workers(args, "steer-experiment", total)) return 0;
  const std::vector<int> kept =
      start_or_resume(out, run, shard, args.get_flag("resume"), total,
                      [&](int j) { return job_file(out, index.jobs[static_cast<size_t>(j)]); });
  std::vector<bool> finished(static_cast<size_t>(total), false);
  for (int j : kept) finished[static_cast<size_t>(j)] = true;
  if (args.get_flag("resume")) std::printf("resume: %zu finished rollouts kept from %s\n", kept.size(), (out / "rollouts").c_str());
  std::vector<SteerJob> todo;
  for (int64_t j = 0; j < total; ++j)
    if (shard.owns(j) && !finished[static_cast<size_t>(j)]) todo.push_back(index.jobs[static_cast<size_t>(j)]);
  std::vector<SteerCondition> conditions;
  for (const PlannedCondition& p : planned) conditions.push_back(p.condition);
  const RolloutOptions ro = rollout_options(args);
  const auto wall0 = std::chrono::steady_clock::now();
  std::map<std::pair<int, int>, RolloutResult> ran;  // (condition, rollout) → what ran here, kept for the report
  run_steer_jobs(robots, *policy, sets, conditions, todo, seed, ro, batch,
                 [&](const SteerJob& job, const RolloutResult& r) {
                   write_rollout_file(job_file(out, job).string(), r);
                   if (shard.count == 1) ran.emplace(std::pair{job.condition, job.index}, r);
                 });
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  std::printf("%zu rollouts in %.1f s of wall time: %.1f rollouts/min (--batch %d)\n", todo.size(), wall,
              60.0 * static_cast<double>(todo.size()) / std::max(1e-9, wall), batch.lanes);
  if (shard.count > 1) {
    std::printf("shard %s: %lld of %lld rollouts in %s; combine the shards with `vlascope merge`\n",
                shard.text().c_str(), static_cast<long long>((total - shard.index + shard.count - 1) / shard.count),
                static_cast<long long>(total), (out / "rollouts").c_str());
    return 0;
  }
  // The report from what ran here, and from the files only for the rollouts a --resume kept.
  write_steer_report(out, run, planned, collect_steer_runs(planned, [&](int64_t, const SteerJob& job) {
                       const auto it = ran.find({job.condition, job.index});
                       return it != ran.end() ? std::move(it->second) : read_job_file(job_file(out, job), job, planned, seed);
                     }));
  return 0;
}

void merge_steer_shards(const ShardedRun& shards, const fs::path& out) {
  const std::string source = shards.dirs.begin()->second + "/run.json";
  const std::vector<PlannedCondition> planned = conditions_from_json(shards.run, source);
  const uint64_t seed0 = shards.run.at("first_seed").get<uint64_t>();
  const std::vector<SteerRun> runs = collect_steer_runs(planned, [&](int64_t j, const SteerJob& job) {
    return read_job_file(job_file(shards.dir_of(j), job), job, planned, seed0);
  });
  fs::create_directories(out);
  nlohmann::json run = shards.run;
  run["shard"] = "merged from " + std::to_string(shards.count);
  std::ofstream(out / "run.json") << run.dump(2) << "\n";
  write_steer_report(out, run, planned, runs);
}

}  // namespace vlascope
