// vlascope report: one index.html over a results folder written by the main job (scripts/main.sh): the figures of
// every section and the numbers of their JSON reports, so a reader opens one page.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/commands.h"
#include "common/cli.h"
#include "common/error.h"
#include "interp/explorer.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else o += c;
  }
  return o;
}

Json read_json(const fs::path& p) {
  if (!fs::exists(p)) return nullptr;
  std::ifstream in(p);
  try {
    return Json::parse(in);
  } catch (const Json::exception&) {
    return nullptr;
  }
}

std::string fmt(const Json& j, int precision = 3) {
  if (j.is_null()) return "–";
  if (j.is_number_float()) {
    char b[32];
    std::snprintf(b, sizeof b, "%.*f", precision, j.get<double>());
    return b;
  }
  if (j.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + fmt(j[i], precision);
    return s + "]";
  }
  return esc(j.dump());
}

// The two cells of a steering comparison (difference with its 95 % CI, Welch p); a null comparison (too few
// lifted rollouts on one side) shows `if_null` and a dash.
std::string comparison_cells(const Json& c, const char* if_null) {
  if (c.is_null()) return std::string("<td>") + if_null + "</td><td>–</td>";
  return "<td>" + fmt(c["difference"], 2) + " " + fmt(c["ci95"], 2) + "</td><td>" + fmt(c["welch_p"], 4) + "</td>";
}

// Every PNG of a folder (sorted), as <img> tags; `only` keeps names containing it.
std::string images(const fs::path& root, const fs::path& dir, const std::string& only = "", int limit = 40) {
  if (!fs::is_directory(dir)) return "";
  std::vector<fs::path> pngs;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".png" && e.path().filename().string().find(only) != std::string::npos)
      pngs.push_back(e.path());
  std::sort(pngs.begin(), pngs.end());
  std::string html;
  int n = 0;
  for (const fs::path& p : pngs) {
    if (n++ >= limit) break;
    const std::string rel = fs::relative(p, root).string();
    html += "<figure><a href=\"" + rel + "\"><img src=\"" + rel + "\"></a><figcaption>" + esc(p.filename().string()) +
            "</figcaption></figure>\n";
  }
  return html;
}

std::string videos(const fs::path& root, const fs::path& dir) {
  if (!fs::is_directory(dir)) return "";
  std::string html;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".mp4") {
      const std::string rel = fs::relative(e.path(), root).string();
      html += "<p>video: <a href=\"" + rel + "\">" + esc(rel) + "</a></p>\n";
    }
  return html;
}

}  // namespace

int run_report(int argc, char** argv) {
  ArgParser args("vlascope report",
                 "Write index.html over a results folder of the main job: attention, compare-attention, neurons,\n"
                 "steer and eval sections, with their figures and numbers.");
  args.positional("dir", "results folder");
  args.option("title", "vlascope: where SmolVLA looks and whether its neurons steer the arm", "page title");
  if (!args.parse(argc, argv)) return 0;
  const fs::path root(args.get("dir"));
  require(fs::is_directory(root), "report: " + root.string() + " is not a directory");
  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><title>" << esc(args.get("title")) << "</title><style>"
    << "body{font-family:sans-serif;max-width:1500px;margin:auto;padding:1em;background:#fafafa}"
    << "figure{display:inline-block;margin:6px;vertical-align:top}img{max-width:700px;border:1px solid #ccc}"
    << "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
    << "th{background:#eee}pre{background:#eee;padding:8px;overflow:auto}</style></head><body>\n";
  h << "<h1>" << esc(args.get("title")) << "</h1>\n";
  // The interactive page over the same folder (interp/explorer.h).
  // A results file it cannot read costs the explorer, not the index page.
  ExplorerSummary explorer;
  try {
    explorer = write_explorer(root.string());
  } catch (const Error& e) {
    std::fprintf(stderr, "report: no explorer page: %s\n", e.what());
  }
  if (!explorer.page.empty())
    h << "<p><a href=\"explorer.html\">Explorer</a>: scrub episodes with their attention, search the neurons and "
         "features, the steering results (" << explorer.episodes << " episodes, " << explorer.neurons << " neurons, "
      << explorer.sae_features << " SAE features, " << explorer.steering_studies << " steering studies).</p>\n";

  // Evaluation.
  for (const char* name : {"eval_unfrozen", "eval_frozen"}) {
    const Json e = read_json(root / name / "eval.json");
    if (e.is_null()) continue;
    h << "<h2>Closed-loop evaluation: " << esc(name) << "</h2><p>" << esc(e.value("checkpoint", "")) << ": success "
      << e.value("successes", 0) << "/" << e.value("episodes", 0) << " (95% CI " << fmt(e["success_ci95"], 2)
      << "), cube lift " << fmt(e["cube_lift_m"]["mean"]) << " m, " << fmt(e["ms_per_chunk"]["mean"], 1)
      << " ms per chunk</p>\n"
      << images(root, root / name) << videos(root, root / name);
  }

  // Attention.
  const Json att = read_json(root / "attention" / "attention_summary.json");
  if (!att.is_null() || fs::is_directory(root / "attention")) {
    h << "<h2>Attention of the unfrozen model</h2>\n";
    if (!att.is_null() && !att["causal"].is_null())
      h << "<p>Causal check: blanking the most-attended cells moves the action chunk by "
        << fmt(att["causal"]["top_mean_abs_daction"]) << " vs " << fmt(att["causal"]["random_mean_abs_daction"])
        << " for random cells (paired difference " << fmt(att["causal"]["paired_difference_mean"]) << ", 95% CI "
        << fmt(att["causal"]["paired_difference_ci95"]) << ", p " << fmt(att["causal"]["paired_p"], 4) << ").</p>\n";
    h << images(root, root / "attention", "chunk_00") << images(root, root / "attention", "cube_mass")
      << videos(root, root / "attention");
  }
  const Json cmp = read_json(root / "compare_attention" / "compare_attention.json");
  if (!cmp.is_null()) {
    h << "<h2>Frozen vs unfrozen VLM: where each looks</h2><table><tr><th>model</th><th>success</th>"
      << "<th>camera</th><th>stream</th><th>layer</th><th>cube mass</th><th>chance</th><th>gripper</th>"
      << "<th>background</th><th>entropy</th></tr>\n";
    for (const auto& [name, r] : cmp.items()) {
      for (const auto& [cam, streams] : r["metrics"].items())
        for (const auto& [stream, layers] : streams.items())
          for (const auto& [layer, phases] : layers.items()) {
            const Json& a = phases["all"];
            h << "<tr><td>" << esc(name) << "</td><td>" << r.value("successes", 0) << "/" << r.value("episodes", 0)
              << "</td><td>" << esc(cam) << "</td><td>" << esc(stream) << "</td><td>" << esc(layer) << "</td><td>"
              << fmt(a["cube_mass"]) << "</td><td>" << fmt(a["cube_chance"]) << "</td><td>" << fmt(a["gripper_mass"])
              << "</td><td>" << fmt(a["background_mass"]) << "</td><td>" << fmt(a["entropy"]) << "</td></tr>\n";
          }
    }
    h << "</table>\n";
    for (const auto& [name, r] : cmp.items())
      if (!r["causal"].is_null())
        h << "<p>" << esc(name) << " causal: top " << fmt(r["causal"]["top_mean_abs_daction"]) << " vs random "
          << fmt(r["causal"]["random_mean_abs_daction"]) << " (ratio " << fmt(r["causal"]["top_over_random"], 2)
          << ", p " << fmt(r["causal"]["paired_p"], 4) << ")</p>\n";
    h << images(root, root / "compare_attention", "mass") << images(root, root / "compare_attention", "entropy");
  }

  // Neurons.
  const Json sets = read_json(root / "neurons" / "neuron_sets.json");
  if (!sets.is_null()) {
    h << "<h2>Concept neurons</h2><table><tr><th>set</th><th>neurons</th><th>how</th></tr>\n";
    for (const Json& s : sets["sets"]) {
      std::string list;
      for (const Json& n : s["neurons"])
        list += n.value("stream", "") + " L" + std::to_string(n.value("layer", 0)) + "/" +
                std::to_string(n.value("index", 0)) + " ";
      h << "<tr><td>" << esc(s.value("name", "")) << "</td><td style=\"text-align:left\">" << esc(list)
        << "</td><td style=\"text-align:left\">" << esc(s.value("description", "")) << "</td></tr>\n";
    }
    h << "</table>\n";
    const Json ov = read_json(root / "neurons" / "overlaps.json");
    if (!ov.is_null()) h << "<p>Lexical vs contrastive sets:</p><pre>" << esc(ov.dump(2)) << "</pre>\n";
    h << "<p>Tables: <a href=\"neurons/top_tokens.csv\">top tokens of every value vector</a>, concept and contrast "
         "CSVs in <a href=\"neurons/\">neurons/</a>.</p>\n";
  }

  // Steering.
  const Json st = read_json(root / "steer" / "steer_report.json");
  if (!st.is_null()) {
    h << "<h2>Steering (α = " << fmt(st["alpha"], 1) << ", op " << esc(st.value("op", "")) << ", "
      << st.value("rollouts_per_condition", 0) << " rollouts per condition)</h2><table><tr><th>condition</th>"
      << "<th>success</th><th>lifted</th><th>mean height (cm)</th><th>max height (cm)</th><th>displacement "
      << "(mm/step)</th><th>length (s)</th><th>Δ mean height vs baseline (cm)</th><th>p</th>";
    // With --target: every condition's distance from it, the measure static and closed-loop steering share.
    const std::string target = st.value("target", "");
    if (!target.empty()) h << "<th>mean |concept − target| (" << esc(target) << ")</th>";
    h << "</tr>\n";
    for (const auto& [name, c] : st["conditions"].items()) {
      auto m = [&](const char* k) { return c.contains(k) ? fmt(c[k]["mean"], 2) : std::string("–"); };
      const Json vs = c.contains("vs_baseline") ? c["vs_baseline"]["mean_height"] : Json();
      h << "<tr><td>" << esc(name) << "</td><td>" << c.value("successes", 0) << "/" << c.value("rollouts", 0)
        << "</td><td>" << c.value("lifted", 0) << "</td><td>" << m("mean_height") << "</td><td>" << m("max_height")
        << "</td><td>" << m("step_displacement") << "</td><td>" << m("length") << "</td>"
        << comparison_cells(vs, "–");
      if (!target.empty())
        h << "<td>" << (c.contains("concept_error") ? fmt(c["concept_error"]["mean"], 2) : std::string("–"))
          << (c.contains("alpha_while_acting") ? " (closed loop)" : "") << "</td>";
      h << "</tr>\n";
    }
    h << "</table>\n";
    // The study's claims and its controls, each with its interval.
    std::string claims;
    for (const auto& [key, label] : {std::pair<const char*, const char*>{"high_vs_low_mean_height_cm", "high − low"},
                                     {"random_vs_baseline_mean_height_cm", "random − baseline (control)"}})
      if (st.contains(key))
        claims += std::string("<tr><td>") + label + "</td>" + comparison_cells(st[key], "too few lifts") + "</tr>\n";
    std::string ratios;
    for (const auto& [key, label] :
         {std::pair<const char*, const char*>{"fast_over_slow_speed_ratio", "fast / slow step speed"},
          {"fast_over_slow_lift_speed_ratio", "fast / slow lift speed"}})
      if (st.contains(key)) ratios += std::string("<p>") + label + " ratio " + fmt(st[key], 2) + "</p>\n";
    if (st.contains("pairs"))  // --pairs: further contrasts the study asked for
      for (const auto& [pair, j] : st["pairs"].items()) {
        if (!j.is_object()) continue;
        const std::string a = j.value("a", pair), b = j.value("b", std::string());
        claims += "<tr><td>" + esc(b.empty() ? a : a + " − " + b) + "</td>" +
                  comparison_cells(j.value("mean_height_cm", Json()), "too few lifts") + "</tr>\n";
        if (j.contains("lift_speed_ratio"))
          ratios += "<p>" + esc(b.empty() ? a : a + " / " + b) + " lift speed ratio " + fmt(j["lift_speed_ratio"], 2) +
                    "</p>\n";
      }
    if (!claims.empty())
      h << "<table><tr><th>comparison</th><th>difference (cm, 95% CI)</th><th>p</th></tr>\n" << claims << "</table>\n";
    h << ratios;
    h << images(root, root / "steer");
  }

  // Prompt following: every steering study's prompt conditions (steer/, and prompt-only studies of other models).
  std::vector<fs::path> studies;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && fs::exists(entry.path() / "steer_report.json")) studies.push_back(entry.path());
  std::sort(studies.begin(), studies.end());
  std::vector<Json> study_reports;  // read once: the prompt-following rows and the intervention sections use them
  for (const fs::path& dir : studies) study_reports.push_back(read_json(dir / "steer_report.json"));
  bool header = false;
  for (size_t k = 0; k < studies.size(); ++k) {
    const fs::path& dir = studies[k];
    const Json& r = study_reports[k];
    if (r.is_null() || !r.contains("prompt_high_vs_low_mean_height_cm")) continue;
    if (!header) {
      h << "<h2>Prompt following</h2><p>The same seeds run with prompts that name a height or a speed.</p><table><tr>"
        << "<th>study</th><th>prompt high − low mean height (cm, 95% CI)</th><th>p</th>"
        << "<th>prompt fast / slow step speed</th><th>lift speed</th><th>success per prompt</th></tr>\n";
      header = true;
    }
    const Json& d = r["prompt_high_vs_low_mean_height_cm"];
    std::string success;
    for (const auto& [name, c] : r["conditions"].items())
      if (name == "baseline" || name.rfind("prompt-", 0) == 0)
        success += name + " " + std::to_string(c.value("successes", 0)) + "/" + std::to_string(c.value("rollouts", 0)) +
                   "  ";
    h << "<tr><td>" << esc(dir.filename().string()) << "</td>" << comparison_cells(d, "too few lifts") << "<td>"
      << (r.contains("prompt_fast_over_slow_speed_ratio") ? fmt(r["prompt_fast_over_slow_speed_ratio"], 2) : "–")
      << "</td><td>"
      << (r.contains("prompt_fast_over_slow_lift_speed_ratio") ? fmt(r["prompt_fast_over_slow_lift_speed_ratio"], 2)
                                                                 : "–")
      << "</td><td style=\"text-align:left\">" << esc(success) << "</td></tr>\n";
  }
  if (header) h << "</table>\n";

  // Interventions: open-loop patching studies (patch_report.json), and the closed-loop patching and ablation
  // conditions of every steering study.
  std::vector<fs::path> patch_studies;
  for (const auto& entry : fs::directory_iterator(root))
    if (entry.is_directory() && fs::exists(entry.path() / "patch_report.json")) patch_studies.push_back(entry.path());
  std::sort(patch_studies.begin(), patch_studies.end());
  for (const fs::path& dir : patch_studies) {
    const Json r = read_json(dir / "patch_report.json");
    if (r.is_null()) continue;
    const std::string what =
        r.value("between", "") == "episodes"
            ? esc(r.value("source_variant", "")) + " demonstrations written into " + esc(r.value("target_variant", "")) +
                  " ones (the same task phase, prompt '" + esc(r.value("target_prompt", "")) + "')"
            : "'" + esc(r.value("source_prompt", "")) + "' written into '" + esc(r.value("target_prompt", "")) + "'";
    h << "<h2>Activation patching: " << esc(dir.filename().string()) << "</h2><p>" << what << " on "
      << r.value("frames", 0) << " recorded frames; share of the source − target chunk difference each patch moves (95% bootstrap CI), "
         "beside a random patch of the same norm per row.</p><table><tr><th>patch</th><th>moved</th>"
         "<th>random control</th><th>remaining</th></tr>\n";
    for (const Json& e : r.value("effects", Json::array()))
      h << "<tr><td style=\"text-align:left\">" << esc(e.value("spec", "")) << "</td><td>" << fmt(e["moved"], 3) << " "
        << fmt(e["moved_ci"], 3) << "</td><td>" << fmt(e["random_moved"], 3) << " " << fmt(e["random_ci"], 3)
        << "</td><td>" << fmt(e["remaining"], 3) << "</td></tr>\n";
    h << "</table>\n" << images(root, dir);
  }
  for (size_t k = 0; k < studies.size(); ++k) {
    const fs::path& dir = studies[k];
    const Json& r = study_reports[k];
    if (r.is_null()) continue;
    if (r.contains("patching")) {
      h << "<h2>Closed-loop patching: " << esc(dir.filename().string()) << "</h2><table><tr><th>condition</th>"
        << "<th>success</th><th>Δ mean height vs baseline (cm, 95% CI)</th><th>p</th><th>share of the source "
        << "prompt's change</th><th>random control: success</th><th>Δ (cm)</th><th>p</th></tr>\n";
      for (const auto& [name, c] : r["patching"].items()) {
        h << "<tr><td>" << esc(name) << "</td><td>" << c.value("successes", 0) << "/" << c.value("rollouts", 0)
          << "</td>" << comparison_cells(c["mean_height_vs_baseline_cm"], "too few lifts") << "<td>"
          << (c.contains("share_of_source_change") ? fmt(c["share_of_source_change"], 2) : "–") << "</td>";
        if (c.contains("random_control"))
          h << "<td>" << c["random_control"].value("successes", 0) << "</td>"
            << comparison_cells(c["random_control"]["mean_height_vs_baseline_cm"], "too few lifts");
        else
          h << "<td>–</td><td>–</td><td>–</td>";
        h << "</tr>\n";
      }
      h << "</table>\n";
    }
    if (r.contains("ablations")) {
      h << "<h2>Ablations: " << esc(dir.filename().string()) << "</h2><table><tr><th>condition</th><th>ablation</th>"
        << "<th>success</th><th>Fisher p vs baseline</th><th>Δ mean height vs baseline (cm, 95% CI)</th><th>p</th>"
        << "</tr>\n";
      for (const auto& [name, c] : r["ablations"].items()) {
        std::string what = "zero MLP output";
        if (c.contains("mode")) {
          what = c.value("mode", "") + ":";
          for (const Json& s : c.value("specs", Json::array())) what += " " + (s.is_string() ? s.get<std::string>() : s.dump());
        }
        h << "<tr><td>" << esc(name) << "</td><td style=\"text-align:left\">" << esc(what) << "</td><td>"
          << c.value("successes", 0) << "/" << c.value("rollouts", 0) << "</td><td>"
          << fmt(c["success_fisher_p_vs_baseline"], 4) << "</td>"
          << comparison_cells(c["mean_height_vs_baseline_cm"], "too few lifts") << "</tr>\n";
      }
      h << "</table>\n";
    }
  }
  h << "</body></html>\n";
  std::ofstream(root / "index.html") << h.str();
  std::printf("wrote %s%s%s\n", (root / "index.html").c_str(), explorer.page.empty() ? "" : " and ",
              explorer.page.c_str());
  return 0;
}

int run_explore(int argc, char** argv) {
  ArgParser args("vlascope explore",
                 "Write explorer.html over an output folder: a self-contained page (open the file, no server) to scrub\n"
                 "episodes chunk by chunk with their camera frames and attention overlays (choose stream, layer, head,\n"
                 "query), actions and end-effector height; to search the neuron sets and SAE features by token or\n"
                 "concept, each with its top tokens, top frames and steering results; and to read the steering studies.\n"
                 "Episode data comes from `vlascope attention` (its explore/ folder); `vlascope report` writes the page too.");
  args.positional("dir", "output folder (e.g. the main job's)");
  if (!args.parse(argc, argv)) return 0;
  const ExplorerSummary s = write_explorer(args.get("dir"));
  std::printf("wrote %s: %d episodes, %d neuron sets (%d neurons), %d SAE features, %d steering and %d patching studies\n",
              s.page.c_str(), s.episodes, s.neuron_sets, s.neurons, s.sae_features, s.steering_studies,
              s.patching_studies);
  return 0;
}

}  // namespace vlascope
