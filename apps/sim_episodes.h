// Glue between the simulator and the dataset format, shared by `vlascope collect`, `render` and `replay`:
// recording an expert episode as dataset frames (LeRobot units, hardware/units.h), and storing with each episode the
// simulator settings that rebuild the same simulation from its seed.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "dataset/dataset.h"
#include "sim/expert.h"
#include "sim/simulator.h"

namespace vlascope {

Phase to_phase(ExpertPhase phase);

// One dataset frame from an observation and the action sent after it. Images are moved out of `observation`;
// segmentation (one per observed camera, at the image size) is rendered when asked.
Frame make_frame(Simulator& sim, Observation&& observation, const JointVector& action, Phase phase,
                 bool with_segmentation);

// The simulator settings that determine an episode's physics (control rate, substeps, randomisation), as
// EpisodeInfo::scalars entries "sim.*", and back. sim_options_from() starts from `base` (cameras, image size).
void store_sim_settings(const Simulator& sim, std::map<std::string, double>& scalars);
SimOptions sim_options_from(const EpisodeInfo& info, SimOptions base);

struct RecordedEpisode {
  EpisodeInfo info;
  std::vector<Frame> frames;
  ExpertEpisode result;
};
// Runs the expert for `seed` in `sim` and records every frame.
RecordedEpisode record_expert_episode(Simulator& sim, const ExpertParams& params, uint64_t seed,
                                      bool with_segmentation);

// "128" → 128×128, "160x120" → 160×120. Throws Error naming the option.
void parse_image_size(const std::string& text, const std::string& option, int* width, int* height);

}  // namespace vlascope
