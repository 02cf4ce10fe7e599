#include "interp/explorer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>

#include "common/error.h"
#include "common/file_io.h"
#include "common/image_io.h"
#include "common/json_io.h"
#include "interp/attention_metrics.h"
#include "interp/capture.h"
#include "interp/lift_segment.h"
#include "interp/rollout.h"

namespace vlascope {

namespace fs = std::filesystem;

// The page's files (interp/explorer/), built in by CMake (explorer_assets.cpp).
extern const char* const kExplorerPage;
extern const char* const kExplorerApp;
extern const char* const kExplorerStyle;

namespace {

// Four significant digits: attention weights and heights, kept small in the page's data.
double short_number(double x) {
  if (x == 0 || !std::isfinite(x)) return 0;
  const double scale = std::pow(10.0, 3 - static_cast<int>(std::floor(std::log10(std::abs(x)))));
  return std::round(x * scale) / scale;
}

nlohmann::json short_row(const float* p, int n) {
  nlohmann::json row = nlohmann::json::array();
  for (int i = 0; i < n; ++i) row.push_back(short_number(p[i]));
  return row;
}

// A JSON value as a script that hands it to the page: browsers run <script src> from file://, not fetch().
std::string as_script(const char* function, const std::string& key, const nlohmann::json& value) {
  return std::string(function) + "(" + nlohmann::json(key).dump() + ", " + value.dump() + ");\n";
}

}  // namespace

struct ExplorerEpisode::Impl {
  std::string dir;
  int episode = 0;
  uint64_t seed = 0;
  std::string task;
  int input_width = 0, input_height = 0;
  nlohmann::json keys;       // the prefix's token table (the first chunk's)
  nlohmann::json chunks = nlohmann::json::array();
  nlohmann::json cameras = nlohmann::json::array();
  int grid_rows = 0, grid_cols = 0, vlm_layers = 0, expert_layers = 0, vlm_heads = 0, expert_heads = 0;
  nlohmann::json frame_sizes = nlohmann::json::object();  // camera → [width, height]
};

ExplorerEpisode::ExplorerEpisode(std::string dir, int episode, uint64_t seed, std::string task, int input_width,
                                 int input_height)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.dir = std::move(dir);
  m.episode = episode;
  m.seed = seed;
  m.task = std::move(task);
  m.input_width = input_width;
  m.input_height = input_height;
  std::error_code ec;
  fs::create_directories(fs::path(m.dir) / ("episode_" + std::to_string(episode)), ec);
  require(!ec, m.dir + ": cannot create the explorer's folder (" + ec.message() + ")");
}

ExplorerEpisode::~ExplorerEpisode() = default;

void ExplorerEpisode::add_chunk(const CapturedChunk& chunk, const Observation& observation, double time) {
  Impl& m = *impl_;
  const PrefixLayout& layout = chunk.layout;
  const int lp = layout.prefix_len;
  if (m.keys.is_null()) {
    m.keys = nlohmann::json::array();
    for (int k = 0; k < lp; ++k) {
      const LayoutToken& t = layout.tokens[0][static_cast<size_t>(k)];
      if (t.kind == TokenKind::kImage)
        m.keys.push_back({{"kind", "image"}, {"camera", t.camera}, {"row", t.row}, {"col", t.col}});
      else if (t.kind == TokenKind::kLanguage)
        m.keys.push_back({{"kind", "word"}, {"piece", t.piece}, {"padding", t.padding}});
      else
        m.keys.push_back({{"kind", "state"}});
    }
    m.cameras = layout.camera_names;
    m.grid_rows = layout.grid_rows;
    m.grid_cols = layout.grid_cols;
  }
  // The rows kept: the VLM's last word and state token, the expert's mean over its action rows; keys cut to the
  // prefix (a joint expert layer's action keys are not drawn).
  const int last_word = last_language_token(layout), state = state_token(layout);
  nlohmann::json vlm = nlohmann::json::array(), expert = nlohmann::json::array();
  for (const CapturedAttention& a : chunk.maps) {
    const bool is_vlm = a.point.stream == HookStream::kVlm;
    nlohmann::json& stream = is_vlm ? vlm : expert;
    const size_t layer = static_cast<size_t>(a.point.layer);
    while (stream.size() <= layer) stream.push_back(nullptr);
    nlohmann::json heads = nlohmann::json::array();
    for (int h = 0; h < a.pattern.heads; ++h) {
      nlohmann::json queries = nlohmann::json::array();
      if (is_vlm) {
        for (int want : {last_word, state}) {
          const auto it = std::find(a.query_positions.begin(), a.query_positions.end(), want);
          queries.push_back(it == a.query_positions.end()
                                ? nlohmann::json(nullptr)
                                : short_row(a.pattern.row(h, static_cast<int>(it - a.query_positions.begin())),
                                            std::min(lp, a.pattern.keys)));
        }
      } else {
        queries.push_back(short_row(a.pattern.row(h, 0), std::min(lp, a.pattern.keys)));
      }
      heads.push_back(queries);
    }
    (is_vlm ? m.vlm_heads : m.expert_heads) = a.pattern.heads;
    stream[layer] = heads;
  }
  m.vlm_layers = std::max(m.vlm_layers, static_cast<int>(vlm.size()));
  m.expert_layers = std::max(m.expert_layers, static_cast<int>(expert.size()));
  nlohmann::json images = nlohmann::json::object();
  for (const auto& [camera, image] : observation.images) {
    const std::string name = "episode_" + std::to_string(m.episode) + "/chunk_" + std::to_string(chunk.index) + "_" +
                             camera + ".png";
    write_png((fs::path(m.dir) / name).string(), image);
    images[camera] = "explore/" + name;
    m.frame_sizes[camera] = {image.width, image.height};
  }
  m.chunks.push_back({{"index", chunk.index}, {"time", short_number(time)}, {"images", images}, {"vlm", vlm},
                      {"expert", expert}});
}

void ExplorerEpisode::finish(const RolloutResult& rollout, const LiftSegment& lift) {
  Impl& m = *impl_;
  nlohmann::json t = nlohmann::json::array(), z = nlohmann::json::array(), actions = nlohmann::json::array();
  for (const RolloutStep& s : rollout.steps) {
    t.push_back(short_number(s.time));
    z.push_back(short_number(s.end_effector.position[2]));
    nlohmann::json a = nlohmann::json::array();
    for (float v : s.action) a.push_back(short_number(v));
    actions.push_back(a);
  }
  const nlohmann::json data = {
      {"episode", m.episode},
      {"seed", m.seed},
      {"task", m.task},
      {"success", rollout.success},
      {"lift", lift_status_name(lift.status)},
      {"cameras", m.cameras},
      {"grid", {m.grid_rows, m.grid_cols}},
      {"input", {m.input_width, m.input_height}},
      {"frames", m.frame_sizes},
      {"layers", {{"vlm", m.vlm_layers}, {"expert", m.expert_layers}}},
      {"heads", {{"vlm", m.vlm_heads}, {"expert", m.expert_heads}}},
      {"queries", {{"vlm", {"last word", "state"}}, {"expert", {"actions (mean)"}}}},
      {"keys", m.keys},
      {"trajectory", {{"time", t}, {"ee_z", z}, {"actions", actions}}},
      {"chunks", m.chunks}};
  const std::string key = "explore/episode_" + std::to_string(m.episode) + ".js";
  write_file_atomically((fs::path(m.dir) / ("episode_" + std::to_string(m.episode) + ".js")).string(),
                        as_script("vlascopeEpisode", key, data));
}

// ---- the page ------------------------------------------------------------------------------------------------------

namespace {

// A number of a results file, or nothing where it is missing or null (a study that could not compute it; nlohmann
// also writes NaN as null).
std::optional<double> number_of(const nlohmann::json& j, const char* key) {
  if (j.is_object() && j.contains(key) && j[key].is_number()) return j[key].get<double>();
  return std::nullopt;
}

// Runs `body` on one results file; a field of the wrong type there becomes an Error naming the file.
template <class Body>
void per_file(const fs::path& file, Body body) {
  try {
    body();
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.string() + ": " + e.what());
  }
}

std::string relative_to_root(const fs::path& path, const fs::path& root) { return fs::relative(path, root).generic_string(); }

// A study's plots: the PNGs in its folder, relative to root, sorted.
nlohmann::json plots_of(const fs::path& study, const fs::path& root) {
  std::vector<std::string> plots;
  for (const auto& entry : fs::directory_iterator(study))
    if (entry.path().extension() == ".png") plots.push_back(relative_to_root(entry.path(), root));
  std::sort(plots.begin(), plots.end());
  return plots;
}

// The results files under root, found in one walk of the tree (an output folder holds thousands of rollout files
// and frames, which are not descended into): the explorer's episode scripts (explore/episode_<k>.js), and every other
// file by name. Sorted.
struct ResultFiles {
  std::vector<fs::path> episodes;
  std::map<std::string, std::vector<fs::path>> by_name;
  const std::vector<fs::path>& named(const std::string& name) const {
    static const std::vector<fs::path> none;
    const auto it = by_name.find(name);
    return it == by_name.end() ? none : it->second;
  }
};
ResultFiles find_result_files(const fs::path& root) {
  static const std::regex episode_file("episode_[0-9]{1,9}\\.js");
  ResultFiles out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& path = it->path();
    const bool frames = path.parent_path().filename() == "explore";  // explore/episode_<k>/: one episode's PNGs
    if (it->is_directory() && (path.filename() == "rollouts" || frames)) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    if (frames && std::regex_match(path.filename().string(), episode_file)) out.episodes.push_back(path);
    else out.by_name[path.filename().string()].push_back(path);
  }
  std::sort(out.episodes.begin(), out.episodes.end());
  for (auto& [name, paths] : out.by_name) std::sort(paths.begin(), paths.end());
  return out;
}

}  // namespace

ExplorerSummary write_explorer(const std::string& root_text) {
  const fs::path root(root_text);
  require(fs::is_directory(root), root_text + ": not a folder");
  ExplorerSummary summary;
  const fs::path absolute = fs::absolute(root).lexically_normal();
  nlohmann::json index = {
      {"root", (absolute.has_filename() ? absolute.filename() : absolute.parent_path().filename()).string()}};

  // Episodes: explore/episode_<k>.js files.
  const ResultFiles files = find_result_files(root);
  nlohmann::json episodes = nlohmann::json::array();
  for (const fs::path& script : files.episodes) {
    const std::string study = relative_to_root(script.parent_path().parent_path(), root);
    const std::string stem = script.stem().string();  // episode_<k>
    episodes.push_back({{"study", study.empty() ? "." : study},
                        {"episode", std::stoi(stem.substr(stem.find('_') + 1))},
                        {"script", relative_to_root(script, root)}});
  }
  std::sort(episodes.begin(), episodes.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return std::make_pair(a["study"].get<std::string>(), a["episode"].get<int>()) <
           std::make_pair(b["study"].get<std::string>(), b["episode"].get<int>());
  });
  summary.episodes = static_cast<int>(episodes.size());
  index["episodes"] = episodes;

  // Steering studies: every condition's lift and success, and the study's plots.
  nlohmann::json steering = nlohmann::json::array();
  for (const fs::path& file : files.named("steer_report.json")) per_file(file, [&] {
    const nlohmann::json report = read_json_object(file.string());
    nlohmann::json conditions = nlohmann::json::array();
    const nlohmann::json& vs = report.contains("vs_baseline_mean_height_cm") ? report["vs_baseline_mean_height_cm"]
                                                                              : nlohmann::json::object();
    if (report.contains("conditions") && report["conditions"].is_object())
      for (const auto& [name, c] : report["conditions"].items()) {
        if (!c.is_object()) continue;
        nlohmann::json row = {{"name", name},
                              {"successes", static_cast<int>(number_of(c, "successes").value_or(0))},
                              {"rollouts", static_cast<int>(number_of(c, "rollouts").value_or(0))}};
        if (c.contains("mean_height"))
          if (const auto m = number_of(c["mean_height"], "mean")) row["mean_height_cm"] = short_number(*m);
        if (vs.contains(name)) {
          if (const auto d = number_of(vs[name], "difference")) row["delta_cm"] = short_number(*d);
          if (const auto p = number_of(vs[name], "welch_p")) row["p"] = short_number(*p);
        }
        conditions.push_back(row);
      }
    // The sets each condition switched on (run.json), so a neuron set or feature finds its conditions by set.
    const fs::path run_file = file.parent_path() / "run.json";
    if (fs::exists(run_file)) {
      const nlohmann::json run = read_json_object(run_file.string());
      if (run.contains("conditions") && run["conditions"].is_array())
        for (const nlohmann::json& rc : run["conditions"]) {
          if (!rc.is_object() || !rc.contains("name") || !rc["name"].is_string()) continue;
          nlohmann::json sets = nlohmann::json::array();
          if (rc.contains("interventions") && rc["interventions"].is_array())
            for (const nlohmann::json& iv : rc["interventions"])
              if (iv.is_object() && iv.contains("set") && iv["set"].is_string()) sets.push_back(iv["set"]);
          for (nlohmann::json& row : conditions)
            if (row["name"] == rc["name"]) row["sets"] = sets;
        }
    }
    steering.push_back({{"study", relative_to_root(file.parent_path(), root)},
                        {"conditions", conditions},
                        {"plots", plots_of(file.parent_path(), root)}});
    });
  summary.steering_studies = static_cast<int>(steering.size());
  index["steering"] = steering;

  // Activation patching studies (vlascope patch): each spec's share of the source − target chunk difference it moves,
  // beside the random control, and the study's plots (by layer, by denoising step).
  nlohmann::json patching = nlohmann::json::array();
  for (const fs::path& file : files.named("patch_report.json")) per_file(file, [&] {
    const nlohmann::json report = read_json_object(file.string());
    if (!report.contains("effects") || !report["effects"].is_array()) return;
    nlohmann::json effects = nlohmann::json::array();
    for (const nlohmann::json& e : report["effects"]) {
      if (!e.is_object() || !e.contains("spec") || !e["spec"].is_string()) continue;
      nlohmann::json row = {{"spec", e["spec"]}};
      for (const char* key : {"moved", "random_moved", "remaining"})
        if (const auto v = number_of(e, key)) row[key] = short_number(*v);
      effects.push_back(row);
    }
    patching.push_back({{"study", relative_to_root(file.parent_path(), root)},
                        {"source", report.value("between", std::string()) == "episodes"
                                       ? report.value("source_variant", std::string()) + " demonstrations"
                                       : report.value("source_prompt", std::string())},
                        {"target", report.value("between", std::string()) == "episodes"
                                       ? report.value("target_variant", std::string()) + " demonstrations"
                                       : report.value("target_prompt", std::string())},
                        {"effects", effects},
                        {"plots", plots_of(file.parent_path(), root)}});
  });
  summary.patching_studies = static_cast<int>(patching.size());
  index["patching"] = patching;

  // Neuron sets: sparse sets entry by entry (their notes hold the top tokens); dense directions as one line.
  nlohmann::json neurons = nlohmann::json::array();
  for (const fs::path& file : files.named("neuron_sets.json")) per_file(file, [&] {
    const nlohmann::json sets = read_json_object(file.string());
    if (!sets.contains("sets") || !sets["sets"].is_array()) return;
    for (const nlohmann::json& set : sets["sets"]) {
      if (!set.is_object()) continue;
      ++summary.neuron_sets;
      const std::string name = set.value("name", "");
      const nlohmann::json& list = set.contains("neurons") ? set["neurons"] : nlohmann::json::array();
      // A direction: many channels, or channels of the residual stream (a word or prompt direction has one per
      // residual channel, 192 on the small model), shown as one line rather than channel by channel.
      const bool residual = std::any_of(list.begin(), list.end(), [](const nlohmann::json& n) {
        return n.is_object() && n.value("site", "") == "resid.post";
      });
      if (list.size() > 200 || residual) {
        neurons.push_back({{"kind", "direction"},
                           {"set", name},
                           {"source", relative_to_root(file, root)},
                           {"channels", list.size()},
                           {"note", set.value("description", "")}});
        continue;
      }
      for (const nlohmann::json& n : list) {
        if (!n.is_object()) continue;
        ++summary.neurons;
        neurons.push_back({{"kind", "neuron"},
                           {"set", name},
                           {"source", relative_to_root(file, root)},
                           {"stream", n.value("stream", "")},
                           {"layer", n.value("layer", 0)},
                           {"index", n.value("index", 0)},
                           {"note", n.value("note", "")}});
      }
    }
    });
  index["neurons"] = neurons;

  // SAE features: the ranked ones (lift, high vs low, fast vs slow) with their numbers, tokens and figures.
  nlohmann::json features = nlohmann::json::array();
  for (const fs::path& file : files.named("features.json")) per_file(file, [&] {
    const nlohmann::json f = read_json_object(file.string());
    if (!f.contains("features") || !f.contains("rankings")) return;
    std::map<int, std::vector<std::string>> ranked_in;
    for (const auto& [question, list] : f["rankings"].items())
      for (const nlohmann::json& id : list) ranked_in[id.get<int>()].push_back(question);
    for (const auto& [id, questions] : ranked_in) {
      if (id < 0 || static_cast<size_t>(id) >= f["features"].size() || !f["features"][static_cast<size_t>(id)].is_object())
        continue;
      const nlohmann::json& s = f["features"][static_cast<size_t>(id)];
      nlohmann::json figures = nlohmann::json::array();
      for (const std::string& q : questions)
        if (fs::exists(file.parent_path() / (q + "_features.png")))
          figures.push_back(relative_to_root(file.parent_path() / (q + "_features.png"), root));
      ++summary.sae_features;
      features.push_back({{"kind", "feature"},
                          {"set", "sae " + f.value("hook", std::string())},
                          {"source", relative_to_root(file, root)},
                          {"index", id},
                          {"questions", questions},
                          {"frequency", short_number(number_of(s, "frequency").value_or(0))},
                          {"lift_d", short_number(number_of(s, "lift_d").value_or(0))},
                          {"high_low_g", short_number(number_of(s, "high_low_g").value_or(0))},
                          {"fast_slow_g", short_number(number_of(s, "fast_slow_g").value_or(0))},
                          {"tokens", s.contains("top_tokens") && s["top_tokens"].is_array() ? s["top_tokens"]
                                                                                            : nlohmann::json::array()},
                          {"figures", figures}});
    }
    });
  index["features"] = features;

  write_file_atomically((root / "explorer_index.js").string(), as_script("vlascopeIndex", "index", index));
  std::string page = kExplorerPage;
  const auto put = [&](const std::string& marker, const std::string& text) {
    const size_t at = page.find(marker);
    require(at != std::string::npos, "explorer page template: no " + marker);
    page.replace(at, marker.size(), text);
  };
  put("/*STYLE*/", kExplorerStyle);
  put("/*APP*/", kExplorerApp);
  summary.page = (root / "explorer.html").string();
  write_file_atomically(summary.page, page);
  return summary;
}

}  // namespace vlascope
