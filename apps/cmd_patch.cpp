// vlascope patch: activation patching between two prompts, or two variants' demonstrations, on recorded frames
// (interp/patching.h) — layer by layer through the VLM and the expert, plus any spec given — with the norm-matched
// random patch as the control. Writes patch_report.json, patch_effects.csv and patch_layers.png.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/commands.h"
#include "apps/policy_options.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/file_io.h"
#include "common/plot.h"
#include "dataset/dataset.h"
#include "interp/patching.h"
#include "policy/policy.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

// "vlm 3", "expert 0", or the spec itself when it is not a plain layer of the sweep.
std::string short_name(const PatchSpec& spec) {
  if (spec.point.layer < 0 || !spec.steps.empty()) return spec.text;
  return std::string(stream_name(spec.point.stream)) + " " + std::to_string(spec.point.layer);
}

}  // namespace

int run_patch(int argc, char** argv) {
  ArgParser args("vlascope patch",
                 "Activation patching between two prompts on recorded frames (or between two variants' demonstrations:\n"
                 "--source-variant, --target-variant): each frame runs under the source prompt\n"
                 "(its activations recorded), the target prompt, and the target prompt with one hook point's rows\n"
                 "written from the source, all under the same noise; each patch is scored by the share of the\n"
                 "source − target chunk difference it moves over (with a bootstrap interval over frames), beside a\n"
                 "random patch of the same size per row. Writes patch_report.json, patch_effects.csv and\n"
                 "patch_layers.png.");
  add_policy_options(args);
  args.required("dataset", "recorded demonstrations whose frames are used (successful episodes)");
  args.required("out", "output directory");
  args.option("source-prompt", "pick up the cube and lift it high", "the prompt whose activations are written");
  args.option("target-prompt", "pick up the cube and lift it", "the prompt they are written into");
  args.option("source-variant", "",
              "between episodes instead of prompts: the variant (high, low, fast, slow) whose demonstrations' frames\n"
              "give the activations, each target frame paired with the same task phase at the same fraction of it;\n"
              "both run under --target-prompt (needs --target-variant)");
  args.option("target-variant", "", "between episodes: the variant whose frames receive them (e.g. low)");
  args.option("layers", "vlm,expert", "streams swept layer by layer (empty: none)");
  args.option("site", "resid.post", "the hook site patched in the layer sweep (resid.post, mlp.out, attn.out, …)");
  args.flag("step-sweep", "also patch every expert layer at one denoising step at a time (layers × steps specs; the\n"
                          "share moved by step, one line per layer, in patch_steps.png)");
  args.option("vlm-rows", "images+last_word+state",
              "rows patched in the VLM sweep: all, images, images:<camera>, words, last_word, state, or kinds\n"
              "joined by '+' (words and all need prompts of the same length)");
  args.option("specs", "",
              "more patches, ';'-separated: <hook point>[@<rows>][@steps:<list>][@head:<h>], e.g.\n"
              "vlm.layers.2.resid.post@last_word;expert.layers.5.resid.post@steps:0-4");
  args.option("episodes", "6", "successful episodes whose frames are used");
  args.option("stride", "10", "every n-th frame of those episodes");
  args.option("seed", "0", "noise of frame f is (seed, f), the same in every run of that frame");
  args.option("bootstrap", "1000", "bootstrap resamples of the frames for the intervals");
  args.flag("no-random", "skip the norm-matched random control");
  if (!args.parse(argc, argv)) return 0;

  std::unique_ptr<Policy> policy = load_policy(args);
  const DatasetReader dataset(args.get("dataset"));
  HookPoint site_point;
  try {
    site_point = parse_hook_point("vlm.layers.0." + args.get("site"));
  } catch (const Error&) {
    throw Error("--site: '" + args.get("site") + "' is not a layer's hook site (resid.post, mlp.out, attn.out, …)");
  }
  std::vector<PatchSpec> specs = layer_patch_specs(*policy, args.get_list("layers"), site_point.site,
                                                   args.get("vlm-rows"));
  for (const std::string& text : split_nonempty(args.get("specs"), ';')) specs.push_back(parse_patch_spec(text));
  const size_t swept_from = specs.size();  // the step sweep's specs follow the others
  if (args.get_flag("step-sweep"))
    for (PatchSpec& s : step_patch_specs(*policy, site_point.site)) specs.push_back(std::move(s));
  require(!specs.empty(), "--layers, --specs and --step-sweep: nothing to patch");

  PatchStudyOptions o;
  o.source_task = args.get("source-prompt");
  o.target_task = args.get("target-prompt");
  o.source_variant = args.get("source-variant");
  o.target_variant = args.get("target-variant");
  require(o.source_variant.empty() == o.target_variant.empty(),
          "--source-variant and --target-variant: give both (patching between episodes) or neither (between prompts)");
  const bool between_episodes = !o.source_variant.empty();
  o.episodes = args.get_int("episodes");
  o.frame_stride = args.get_int("stride");
  o.seed = static_cast<uint64_t>(args.get_int64("seed"));
  o.bootstrap = args.get_int("bootstrap");
  o.random_control = !args.get_flag("no-random");
  require(o.episodes > 0 && o.frame_stride > 0, "--episodes and --stride must be positive");
  const PatchStudy study = run_patch_study(*policy, dataset, specs, o);

  const fs::path out(args.get("out"));
  fs::create_directories(out);
  nlohmann::json report = {{"command", "patch"},
                           {"checkpoint", args.get("checkpoint")},
                           {"dataset", args.get("dataset")},
                           {"between", between_episodes ? "episodes" : "prompts"},
                           {"source_prompt", between_episodes ? o.target_task : o.source_task},
                           {"target_prompt", o.target_task},
                           {"source_variant", o.source_variant},
                           {"target_variant", o.target_variant},
                           {"seed", o.seed},
                           {"frames", study.frames},
                           {"mean_source_target_distance", study.mean_distance},
                           {"random_control", o.random_control},
                           {"effects", nlohmann::json::array()}};
  std::string csv = "spec,stream,layer,moved,moved_low,moved_high,random_moved,random_low,random_high,remaining,"
                    "max_abs_to_source\n";
  std::printf("%d frames%s, mean |source − target| chunk distance %.3f\n", study.frames,
              between_episodes ? (" of " + o.target_variant + " episodes, each from a " + o.source_variant + " one").c_str()
                               : "",
              study.mean_distance);
  std::printf("%-44s %22s %22s %9s\n", "patch", "moved (95% CI)", "random (95% CI)", "remaining");
  BarChart chart;
  chart.title = between_episodes
                    ? "patching " + o.source_variant + " demonstrations into " + o.target_variant + " ones (same phase)"
                    : "patching '" + o.source_task + "' into '" + o.target_task + "'";
  chart.ylabel = "share of the chunk difference moved";
  BarChart::Group moved{"patch", {}, {}}, random{"random patch (same norm)", {}, {}};
  const int steps = policy->config().num_steps;
  LinePlot by_step;
  by_step.title = std::string("one expert layer patched at one denoising step (source ") +
                  (between_episodes ? "episode" : "prompt") + " into target)";
  by_step.xlabel = "denoising step (0 = pure noise)";
  by_step.ylabel = "share of the chunk difference moved";
  for (size_t k = 0; k < specs.size(); ++k) {
    const PatchEffect& e = study.effects[k];
    const PatchSpec& s = specs[k];
    if (k >= swept_from) {
      const int step = static_cast<int>(k - swept_from) % steps;
      if (step == 0) {
        Series& line = by_step.add("expert " + std::to_string(s.point.layer), {}, {}, {}, {});
        line.colour = palette(s.point.layer);
      }
      Series& line = by_step.series.back();
      line.x.push_back(step);
      line.y.push_back(e.moved);
      line.band_lo.push_back(e.moved_low);
      line.band_hi.push_back(e.moved_high);
    }
    report["effects"].push_back({{"spec", e.spec},
                                 {"stream", stream_name(s.point.stream)},
                                 {"layer", s.point.layer},
                                 {"moved", e.moved},
                                 {"moved_ci", {e.moved_low, e.moved_high}},
                                 {"random_moved", e.random_moved},
                                 {"random_ci", {e.random_low, e.random_high}},
                                 {"remaining", e.remaining},
                                 {"max_abs_to_source", e.max_abs_to_source}});
    // The spec is quoted: a list of steps has commas.
    std::ostringstream row;
    row << '"' << e.spec << "\"," << stream_name(s.point.stream) << ',' << s.point.layer;
    for (double v : {e.moved, e.moved_low, e.moved_high, e.random_moved, e.random_low, e.random_high, e.remaining,
                     e.max_abs_to_source})
      row << ',' << v;
    csv += row.str() + "\n";
    std::printf("%-44s %6.3f (%6.3f…%6.3f) %6.3f (%6.3f…%6.3f) %9.3f\n", e.spec.c_str(), e.moved, e.moved_low,
                e.moved_high, e.random_moved, e.random_low, e.random_high, e.remaining);
    if (k >= swept_from) continue;  // in patch_steps.png
    chart.categories.push_back(short_name(s));
    moved.values.push_back(e.moved);
    moved.errors.push_back((e.moved_high - e.moved_low) / 2);
    random.values.push_back(e.random_moved);
    random.errors.push_back((e.random_high - e.random_low) / 2);
  }
  chart.groups.push_back(moved);
  if (o.random_control) chart.groups.push_back(random);
  write_file_atomically((out / "patch_report.json").string(), report.dump(2) + "\n");
  write_file_atomically((out / "patch_effects.csv").string(), csv);
  if (!chart.categories.empty())
    chart.save((out / "patch_layers.png").string(), std::max(800, 70 * static_cast<int>(chart.categories.size())), 480);
  if (!by_step.series.empty()) by_step.save((out / "patch_steps.png").string());
  std::printf("wrote %s (patch_report.json, patch_effects.csv%s%s)\n", out.string().c_str(),
              chart.categories.empty() ? "" : ", patch_layers.png", by_step.series.empty() ? "" : ", patch_steps.png");
  return 0;
}

}  // namespace vlascope
