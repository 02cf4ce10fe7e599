// From captured attention (interp/capture.h) to what a researcher looks at: one query's attention over each
// camera's token grid and over the words, for a chosen aggregation (one head or a fusion, one layer or a range,
// attention rollout for the VLM, one denoising step or their mean), and the numbers scored against a segmentation
// (attention mass on the cube, the gripper, the arm and the background; entropy; pointing game).
//
//   MapRequest r;  r.stream = HookStream::kExpert; r.layers = {5}; r.query = QueryChoice::kActions;
//   AttentionView v = attention_view(chunk, r);       // v.cameras[0].map is the scene camera's 8×8 grid
#pragma once

#include <string>
#include <vector>

#include "interp/attention_metrics.h"
#include "interp/capture.h"

namespace vlascope {

enum class QueryChoice { kLastWord, kState, kActions };
const char* query_choice_name(QueryChoice query);
QueryChoice parse_query_choice(const std::string& name);  // "last-word" | "state" | "actions"

struct MapRequest {
  HookStream stream = HookStream::kVlm;
  std::vector<int> layers;  // empty = every captured layer of the stream; several = mean of their rows
  int head = -1;            // one head, or −1 = fuse the captured heads
  HeadFusion fusion = HeadFusion::kMean;
  bool rollout = false;     // VLM: attention rollout through `layers` (needs every row captured)
  QueryChoice query = QueryChoice::kLastWord;  // VLM: last word or state; expert: the mean over action rows
  int step = -1;            // expert: one denoising step, or −1 = the mean over the captured steps
  std::string label() const;  // "vlm L3 mean last-word", "expert L5 H2 actions step 9", …
};

struct AttentionView {
  std::vector<CameraAttention> cameras;  // per camera, in layout order
  TokenWeights words;                    // the query's attention on the words (not renormalised)
  std::vector<float> row;                // the aggregated row over the prefix keys
  std::string label;
};

// Throws Error naming the layer when something the request needs was not captured.
AttentionView attention_view(const CapturedChunk& chunk, const MapRequest& request);

// The per-head maps of one layer for one camera (for the layers × heads thumbnail grid), same query rules.
std::vector<GridMap> head_maps(const CapturedChunk& chunk, HookStream stream, int layer, QueryChoice query,
                               int camera, int step = -1);

// Scores of one camera's map against the simulator's segmentation classes (sim/segmentation.h ids:
// 0 background, 1 table, 2 cube, 3 gripper, 4 arm).
struct AttentionScores {
  MaskMass cube, gripper, arm, background;  // background = background + table
  double entropy = 0;                       // normalised, 0 … 1
  double hoyer = 0;
  Pointing pointing;                        // argmax on the cube
  double camera_ratio = 0, image_ratio = 0;
};
AttentionScores score_attention(const CameraAttention& attention, const LabelImage& segmentation,
                                const PadGeometry& geometry);

}  // namespace vlascope
