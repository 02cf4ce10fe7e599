// Attention over whole episodes: a rollout with attention capture, every chunk's maps scored against the
// segmentation (where the robot can give one), labelled with the task phase, and a causal check — blank the
// most-attended patches vs as many random ones and measure how much the action chunk moves under identical
// noise. `vlascope attention` and `vlascope compare-attention` are built on this; both run on any Robot.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "interp/attention_views.h"
#include "interp/capture.h"
#include "interp/lift_segment.h"
#include "interp/rollout.h"

namespace vlascope {

// The per-camera class-id images of the current robot state, each at the size of the observation's frame of that
// camera (simulator segmentation, or a mask the user gives on the real arm: interp/label_mask.h); cameras without
// one are left out, and their metrics skipped.
using SegmentationSource = std::function<std::map<std::string, LabelImage>(const Observation& observation)>;
// Called for every chunk, with its captured maps and the frames the model saw.
using ChunkFigures = std::function<void(const CapturedChunk& chunk, const Observation& observation, double time)>;

struct StudyOptions {
  RolloutOptions rollout;
  AttentionCaptureSpec capture;  // default: every layer and head, VLM rows all, expert mean over actions and steps
  // How every captured layer is scored: its head / fusion, the VLM query (the VLM is not scored when the query is
  // the action tokens, which its prefix pass lacks) and the expert's denoising step; stream and layers are set per
  // layer, rollout is ignored (scores are per layer).
  MapRequest layer_scores;
  int causal_cells = 0;   // blank this many cells per camera (0 = no causal check)
  MapRequest causal_map;  // which attention picks the cells to blank
  int causal_every = 1;   // check every n-th chunk
  StudyOptions();
};

struct LayerScores {
  HookStream stream = HookStream::kVlm;
  int layer = 0;
  int camera = 0;
  AttentionScores scores;
};

struct ChunkStudy {
  int chunk = 0;
  double time = 0;
  std::string phase;                           // reach, grasp, lift, hold (from the lift segment), or "" if unknown
  std::vector<LayerScores> layers;             // every captured layer × camera, as StudyOptions::layer_scores asks
  double causal_top = -1, causal_random = -1;  // mean |Δaction| (LeRobot units) when blanking top / random cells
};

struct EpisodeStudy {
  RolloutResult rollout;
  LiftSegment lift;
  std::vector<ChunkStudy> chunks;
};

EpisodeStudy study_episode(Robot& robot, Policy& policy, uint64_t seed, const StudyOptions& options,
                           const SegmentationSource& segmentation = {}, const ChunkFigures& figures = {});

// The phase of time t given an episode's lift segment: reach (before the grasp begins), grasp (the last 0.5 s
// before the lift), lift, hold (after the lift ends); "" when the episode never lifted and t is after the grasp.
std::string phase_at(const LiftSegment& lift, double t);

// Blanks the given cells (row-major, over the model input's padded square) of a camera frame to mid grey.
Image blank_cells(const Image& frame, const std::vector<int>& cells, int rows, int cols, const PadGeometry& geometry);

// Mean over episodes and chunks of one score, per (stream, layer, phase); phase "all" pools every chunk.
struct ScoreTable {
  // key: stream name + "|" + layer + "|" + phase → values
  std::map<std::string, std::vector<double>> values;
  void add(const std::vector<EpisodeStudy>& episodes, int camera,
           const std::function<double(const AttentionScores&)>& score);
  static std::string key(HookStream stream, int layer, const std::string& phase);
};

}  // namespace vlascope
