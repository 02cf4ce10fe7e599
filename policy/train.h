// Training vlascope's own SmolVLA models (issue 4), in two stages:
//
//   1. pretrain_vlm: the VLM learns to describe rendered frames. Captions come from the simulator state recorded
//      with every frame (policy/captions.h), so the small model's vocabulary means something when the
//      interpretability tools read FFN value vectors through its language head. Next-token cross-entropy with
//      the images as a bidirectional prefix.
//   2. train_vla: flow matching on the demonstrations with LeRobot's recipe: Beta(1.5, 1) time, AdamW
//      (0.9, 0.95, wd 1e-10), warm-up + cosine decay (scaled down when the run is shorter than the decay), grad
//      clipping at 10, mean/std normalisation from the dataset, padded action steps masked out of the loss.
//      Frozen vision encoder; frozen VLM (the expert and projections learn) or unfrozen VLM.
//
// Both write LeRobot checkpoint directories (policy/checkpoint.h) plus, under <out>/training/, the loss log
// (loss.csv), its plot (loss.png) and the state a run resumes from (--resume).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/captions.h"

namespace vlascope {

// LeRobot's cosine decay with linear warm-up: the learning-rate multiplier at `step` of a run of `total_steps`.
// When total_steps < decay_steps, warm-up and decay are scaled by total_steps / decay_steps (as LeRobot does).
double lr_multiplier(int step, int total_steps, int warmup_steps, int decay_steps, double peak_lr, double floor_lr);

struct TrainCommon {
  std::vector<std::string> datasets;  // episode dataset directories (dataset/README.md), read as one
  std::string out;        // checkpoint directory to write
  int steps = 1000;
  int batch_size = 16;
  uint64_t seed = 0;
  int threads = 0;        // intra-op threads; 0 = all cores
  int save_every = 250;   // steps between checkpoints (the last step always saves)
  int eval_every = 100;   // steps between held-out evaluations
  double max_minutes = 0;  // wall-clock budget; 0 = none (the run stops early, saves and says so)
  bool resume = false;    // continue <out>/training/ from its last checkpoint
  double holdout = 0.05;  // fraction of episodes held out for evaluation (at least one)
  bool quiet = false;     // no progress bar
  // Exponential moving average of the trained weights (Diffusion Policy's, 0 = off): the checkpoint written to <out>
  // holds the average, and the held-out loss is the average's. A flow-matching policy's closed loop reads every
  // chunk from a fresh sample, so weights that wander step to step make chunks that disagree.
  double ema = 0;
  // Random shifts of every training image by up to this many pixels in x and y (edges repeated), drawn per sample and
  // camera (Diffusion Policy's random crop; 0 = off, as LeRobot trains). The held-out batch is never shifted.
  int augment_shift = 0;
};

struct TrainResult {
  int steps_done = 0;
  double seconds = 0;
  double samples_per_second = 0;
  double first_loss = 0, final_loss = 0;  // training loss (mean of the first / last 20 steps)
  double eval_loss = 0;                   // last held-out loss
  std::vector<double> eval_metric;        // stage-specific: caption token accuracy; nothing for the VLA
  bool stopped_by_budget = false;
};

struct PretrainOptions : TrainCommon {
  std::string preset = "small";  // sizes of a fresh model (vocabulary from the caption words)
  std::string init;              // continue from this checkpoint instead of a fresh model
  double lr = 3e-4;
  int warmup_steps = 100;
  // The share of captions in a random wording (synonyms); the rest in the canonical wording, whose one word per
  // place and state keeps the picture of where the cube is sharp. 0 = canonical only.
  double paraphrase_fraction = 1.0;
  bool tie_embeddings = false;  // a fresh model's lm_head is its input embedding (TextConfig::tie_word_embeddings)
};
// Stage 1. Writes a complete checkpoint (the action expert still random) with tokenizer.json.
TrainResult pretrain_vlm(const PretrainOptions& options);

struct VlaOptions : TrainCommon {
  std::string init;                // checkpoint to start from (the pre-trained VLM); required
  bool train_expert_only = false;  // frozen VLM
  bool freeze_vision_encoder = true;
  bool train_state_proj = true;
  double lr = 0;                   // 0 = the config's optimizer_lr
  int warmup_steps = -1;           // −1 = the config's (then scaled as LeRobot does)
  std::string instruction;         // "" = each episode's own instruction (or the mix below)
  // The VLA pre-training stage's instruction mix (policy/captions.h): with named_fraction > 0 (and no
  // `instruction`), each sample names its episode's variant with that probability, else a neutral wording.
  InstructionMix mix;
};
// Stage 2.
TrainResult train_vla(const VlaOptions& options);

}  // namespace vlascope
