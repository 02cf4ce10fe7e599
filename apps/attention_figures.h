// Attention figures and the simulator's segmentation, shared by `vlascope attention`, `compare-attention` and the
// live view of `rollout --live`.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/image.h"
#include "hardware/robot.h"
#include "interp/attention_study.h"
#include "interp/attention_views.h"
#include "interp/heatmap.h"

namespace vlascope {

// The segmentation of every camera of the robot if it is the simulator, else an empty source.
SegmentationSource simulator_segmentation(Robot& robot);

// The VLM request (every captured layer, mean over heads, last word) and the expert's last cross-attention layer
// (the reference study's two figures).
MapRequest vlm_overview_request();
MapRequest expert_overview_request(const CapturedChunk& chunk, const SmolVLAConfig& config);

// One chunk: for every camera, [VLM overlay | grid | word bars] and [expert overlay | grid], one row per camera.
Image chunk_figure(const CapturedChunk& chunk, const Observation& observation, const SmolVLAConfig& config,
                   const std::string& title);
// The layers × heads thumbnails of one stream for one camera, as overlays on the frame.
Image layers_heads_figure(const CapturedChunk& chunk, const Observation& observation, const SmolVLAConfig& config,
                          HookStream stream, int camera);
// Compact: each camera frame with the current overlay (VLM on top, expert below), for videos and the live view.
Image overlay_strip(const CapturedChunk* chunk, const Observation& observation, const SmolVLAConfig& config,
                    const std::string& caption);

}  // namespace vlascope
