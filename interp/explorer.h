// The explorer (issue 17): one self-contained web page over an output folder — no server, open the file or serve the
// folder. An episode is scrubbed chunk by chunk with the camera frames the policy saw and the attention overlay of a
// chosen stream, layer, head and query, the actions executed from that chunk and the end-effector height; the neuron
// sets (with their top tokens) and the SAE features `sae features` ranked (with their top tokens and top-frame
// figures) are searchable by token or concept, each with the steering conditions that switched it on (run.json's
// interventions); the steering and activation-patching studies' tables and plots follow.
//
//   vlascope attention … --out OUT/attention    // writes OUT/attention/explore/episode_<k>.js and its frames
//   vlascope explore OUT                        // writes OUT/explorer.html (+ explorer_index.js)
//
// Data is loaded lazily: explorer_index.js lists what was found; an episode's maps (episode_<k>.js, a script that
// hands its data to the page) load when it is chosen — scripts, because browsers refuse fetch() on file:// pages.
// The page's code lives in interp/explorer/ (page.html, app.js, style.css), built into the program.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/image.h"
#include "hardware/robot.h"

namespace vlascope {

struct CapturedChunk;
struct LiftSegment;
struct RolloutResult;

// Collects one episode's chunks (the frames and the captured maps: the VLM's last-word and state rows, the expert's
// mean over actions and steps, every layer and head) and writes them for the explorer:
// <dir>/episode_<k>.js and <dir>/episode_<k>/chunk_<c>_<camera>.png.
class ExplorerEpisode {
 public:
  ExplorerEpisode(std::string dir, int episode, uint64_t seed, std::string task, int input_width, int input_height);
  ~ExplorerEpisode();
  ExplorerEpisode(const ExplorerEpisode&) = delete;
  ExplorerEpisode& operator=(const ExplorerEpisode&) = delete;
  // Called for every chunk (ChunkFigures of interp/attention_study.h). Writes the frames at once.
  void add_chunk(const CapturedChunk& chunk, const Observation& observation, double time);
  // Writes episode_<k>.js with the trajectory (end-effector height, executed actions) and success.
  void finish(const RolloutResult& rollout, const LiftSegment& lift);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ExplorerSummary {
  std::string page;  // the explorer.html written
  int episodes = 0, neuron_sets = 0, neurons = 0, sae_features = 0, steering_studies = 0, patching_studies = 0;
};
// Scans `root` for explorer episodes (explore/episode_*.js), neuron_sets.json, SAE features.json, steer_report.json
// and patch_report.json (paths relative to root in the page), and writes root/explorer.html and root/explorer_index.js.
ExplorerSummary write_explorer(const std::string& root);

}  // namespace vlascope
