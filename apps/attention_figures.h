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

// The two maps every figure shows. The defaults are the reference study's two figures: the VLM's last word over
// every captured layer, mean over heads; the expert's action tokens in its last captured cross-attention layer,
// mean over heads and denoising steps.
struct FigureMaps {
  MapRequest vlm;     // stream kVlm
  MapRequest expert;  // stream kExpert; layers empty = the last captured cross-attention layer
  // The VLM's prefix pass has no action tokens: with the action tokens as the query only the expert is drawn.
  bool draw_vlm() const { return vlm.query != QueryChoice::kActions; }
  FigureMaps();
};
// `maps.expert` with its layers resolved against what the chunk holds; layers stay empty when it holds no expert
// cross-attention layer (and the figures leave the expert out).
MapRequest expert_request(const FigureMaps& maps, const CapturedChunk& chunk, const SmolVLAConfig& config);

// One chunk: for every camera, [VLM overlay | grid | word bars] and [expert overlay | grid], one row per camera.
Image chunk_figure(const CapturedChunk& chunk, const Observation& observation, const SmolVLAConfig& config,
                   const std::string& title, const FigureMaps& maps = {});
// The layers × heads thumbnails of one stream for one camera, as overlays on the frame: the layers `maps` asks for
// in that stream (all captured when empty), with its query and denoising step.
Image layers_heads_figure(const CapturedChunk& chunk, const Observation& observation, const SmolVLAConfig& config,
                          HookStream stream, int camera, const FigureMaps& maps = {});
// Compact: each camera frame with the current overlay (VLM on top, expert below), for videos and the live view.
Image overlay_strip(const CapturedChunk* chunk, const Observation& observation, const SmolVLAConfig& config,
                    const std::string& caption, const FigureMaps& maps = {});

}  // namespace vlascope
