#include "interp/attention_study.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "common/error.h"
#include "policy/policy.h"

namespace vlascope {

StudyOptions::StudyOptions() {
  capture.mean_over_actions = true;
  capture.mean_over_steps = true;
  capture.max_chunks = 2;
  layer_scores.query = QueryChoice::kLastWord;
  causal_map.stream = HookStream::kVlm;
  causal_map.query = QueryChoice::kLastWord;
}

std::string phase_at(const LiftSegment& lift, double t) {
  if (lift.grasp_index < 0) return "reach";
  const double lift_start = lift.status == LiftStatus::kLifted ? lift.lift_start_time : lift.grasp_time;
  if (t < lift_start - 0.5) return "reach";
  if (t < lift_start) return "grasp";
  if (lift.status != LiftStatus::kLifted) return "";
  if (t <= lift.lift_end_time) return "lift";
  return "hold";
}

Image blank_cells(const Image& frame, const std::vector<int>& cells, int rows, int cols, const PadGeometry& g) {
  Image out = frame;
  for (int cell : cells) {
    const int r = cell / cols, c = cell % cols;
    const double cw = static_cast<double>(g.input_width) / cols, ch = static_cast<double>(g.input_height) / rows;
    const int x0 = std::max(0, static_cast<int>(std::floor(g.frame_x(c * cw))));
    const int x1 = std::min(frame.width, static_cast<int>(std::ceil(g.frame_x((c + 1) * cw))));
    const int y0 = std::max(0, static_cast<int>(std::floor(g.frame_y(r * ch))));
    const int y1 = std::min(frame.height, static_cast<int>(std::ceil(g.frame_y((r + 1) * ch))));
    for (int y = y0; y < y1; ++y)
      for (int x = x0; x < x1; ++x)
        for (int k = 0; k < frame.channels; ++k) out.at(x, y)[k] = 128;
  }
  return out;
}

namespace {

double mean_abs_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  double s = 0;
  int n = 0;
  for (size_t t = 0; t < a.size(); ++t)
    for (size_t j = 0; j < a[t].size(); ++j) s += std::abs(a[t][j] - b[t][j]), ++n;
  return n ? s / n : 0;
}

std::vector<int> captured_layer_list(const CapturedChunk& c, HookStream stream) {
  std::vector<int> out;
  for (const CapturedAttention& a : c.maps)
    if (a.point.stream == stream && std::find(out.begin(), out.end(), a.point.layer) == out.end())
      out.push_back(a.point.layer);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

EpisodeStudy study_episode(Robot& robot, Policy& policy, uint64_t seed, const StudyOptions& options,
                           const SegmentationSource& segmentation, const ChunkFigures& figures) {
  AttentionRecorder recorder(policy, options.capture);
  const SmolVLAConfig& config = policy.config();
  const auto [input_w, input_h] = config.input_image_size();
  EpisodeStudy study;
  int last_chunk = -1;
  auto observer = [&](int, const Observation& obs, const RolloutStep& step) {
    if (!step.model_ran || recorder.chunks().empty() || recorder.chunks().back().index == last_chunk) return true;
    const CapturedChunk& c = recorder.chunks().back();
    last_chunk = c.index;
    ChunkStudy cs;
    cs.chunk = c.index;
    cs.time = step.time;
    const std::map<std::string, LabelImage> seg =
        segmentation ? segmentation(obs) : std::map<std::string, LabelImage>{};
    for (int cam = 0; cam < static_cast<int>(c.layout.camera_names.size()); ++cam) {
      const std::string& name = c.layout.camera_names[cam];
      auto frame = obs.images.find(name);
      auto labels = seg.find(name);
      if (frame == obs.images.end() || labels == seg.end()) continue;
      const PadGeometry g = resize_with_pad_geometry(frame->second.width, frame->second.height, input_w, input_h);
      for (HookStream s : {HookStream::kVlm, HookStream::kExpert}) {
        if (s == HookStream::kVlm && options.layer_scores.query == QueryChoice::kActions) continue;
        for (int layer : captured_layer_list(c, s)) {
          MapRequest r = options.layer_scores;
          r.stream = s;
          r.layers = {layer};
          r.rollout = false;
          if (s == HookStream::kExpert)
            r.query = QueryChoice::kActions;
          else
            r.step = -1;
          const AttentionView v = attention_view(c, r);
          cs.layers.push_back({s, layer, cam, score_attention(v.cameras[cam], labels->second, g)});
        }
      }
    }
    if (options.causal_cells > 0 && c.index % std::max(1, options.causal_every) == 0) {
      const AttentionView v = attention_view(c, options.causal_map);
      PolicyInput base;
      base.images = obs.images;
      base.state.assign(step.state.begin(), step.state.end());
      base.task = options.rollout.task;
      PolicyInput top = base, random = base;
      std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(c.index));
      for (int cam = 0; cam < static_cast<int>(c.layout.camera_names.size()); ++cam) {
        const std::string& name = c.layout.camera_names[cam];
        if (!base.images.count(name)) continue;
        const GridMap& map = v.cameras[cam].map;
        const int n = map.size(), k = std::min(options.causal_cells, n);
        const std::vector<uint8_t> chosen = top_cells(map, (k - 0.5) / n);
        std::vector<int> top_list, all;
        for (int i = 0; i < n; ++i) {
          if (chosen[i]) top_list.push_back(i);
          all.push_back(i);
        }
        std::shuffle(all.begin(), all.end(), rng);
        all.resize(static_cast<size_t>(k));
        const Image& frame = base.images.at(name);
        const PadGeometry g = resize_with_pad_geometry(frame.width, frame.height, input_w, input_h);
        top.images[name] = blank_cells(frame, top_list, map.rows, map.cols, g);
        random.images[name] = blank_cells(frame, all, map.rows, map.cols, g);
      }
      recorder.set_paused(true);
      const uint64_t noise_seed = seed + 1000003ULL * static_cast<uint64_t>(c.index + 1);
      const auto a0 = policy.predict_chunk(base, noise_seed, 0);
      cs.causal_top = mean_abs_diff(a0, policy.predict_chunk(top, noise_seed, 0));
      cs.causal_random = mean_abs_diff(a0, policy.predict_chunk(random, noise_seed, 0));
      recorder.set_paused(false);
    }
    if (figures) figures(c, obs, step.time);
    study.chunks.push_back(std::move(cs));
    return true;
  };
  study.rollout = run_rollout(robot, policy, seed, options.rollout, observer);
  study.lift = find_lift_segment(study.rollout.ee_trajectory());
  for (ChunkStudy& cs : study.chunks) cs.phase = phase_at(study.lift, cs.time);
  return study;
}

std::string ScoreTable::key(HookStream stream, int layer, const std::string& phase) {
  return std::string(stream_name(stream)) + "|" + std::to_string(layer) + "|" + phase;
}

void ScoreTable::add(const std::vector<EpisodeStudy>& episodes, int camera,
                     const std::function<double(const AttentionScores&)>& score) {
  for (const EpisodeStudy& e : episodes)
    for (const ChunkStudy& c : e.chunks)
      for (const LayerScores& l : c.layers) {
        if (l.camera != camera) continue;
        const double v = score(l.scores);
        values[key(l.stream, l.layer, "all")].push_back(v);
        if (!c.phase.empty()) values[key(l.stream, l.layer, c.phase)].push_back(v);
      }
}

}  // namespace vlascope
