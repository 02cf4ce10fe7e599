// Captions for the VLM pre-training stage of vlascope's own small model (issue 4).
//
// The small model's vocabulary must mean something, because the interpretability work reads FFN value
// vectors through the language head. So before it learns actions, its VLM learns to describe rendered
// frames: where the cube is and its colour, whether the gripper is high or low, open or closed, whether it
// holds the cube, which way and how fast the arm moves, and what the robot is doing. The captions are
// generated from the simulator state recorded with every frame of a dataset (dataset/dataset.h), so they
// are true by construction.
//
//   "the red cube is slightly left and close . the cube is ahead of the gripper . the gripper is low and open .
//    the cube is on the table . the arm moves down slowly . the robot reaches for the cube ."
//
// Each sentence has several wordings with the same meaning (issue 14): "high" is also "up high", "raised",
// "elevated", "at the top"; "slowly" is also "gently", "gradually", "carefully"; the cube is also a block, box or
// brick. A paraphrase seed picks one wording per slot (seed 0: always the first, the canonical caption above), so a
// concept in the logit lens is a cluster of tokens, as in a real VLM, not one word.
//
// The same tables make the instructions of the VLA pre-training stage: the neutral task in several wordings, and
// paraphrases that name a variant ("pick up the cube and lift it high", "raise the block up high", "gently grab
// the box and lift it", …), mixed per sample by training_instruction().
//
// Where the cube is gets seven side words and four distance words, and where it is relative to the gripper one
// more sentence: that is what the action expert later has to read from the image tokens, so the VLM learns to
// put it there.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataset/dataset.h"

namespace vlascope {

struct CaptionThresholds {
  double low_height = 0.06;      // m of the jaw tips above the table: below is "low"
  double high_height = 0.14;     // above is "high"; between is "in the middle"
  double open_gripper = 40;      // LeRobot gripper units (0 closed … 100 open): above is "open"
  double lifted = 0.015;         // m the cube has risen above its resting height to count as held up
  double still_speed = 0.015;    // m/s of the end effector: below is "still"
  double fast_speed = 0.10;      // m/s: above is "fast"; between still and fast is "slowly"
  int motion_window = 2;         // frames on each side used to estimate the end-effector velocity
  double pan_axis_y = -0.0452;   // m: the shoulder-pan axis in the world (scenes/so100.xml), x = 0
  double over_cube = 0.02;       // m horizontally between jaw centre and cube: closer is "over the cube"
  // Where the cube is: 7 side words in steps of side_step around the pan axis (centre ± half a step is "in the
  // centre"), 4 distance words in steps of distance_step around middle_distance. The defaults span the
  // simulator's workspace (Randomization: azimuth ±0.35 rad, radius 0.18–0.24 m).
  double side_step = 0.1;          // rad
  double middle_distance = 0.21;   // m from the pan axis: the boundary between "close" and "distant"
  double distance_step = 0.015;    // m
  // How high a held cube is (its rise above its resting height): above cube_high "high", below cube_low "low".
  // The expert's high lift raises it ~20 cm, low ~8 cm, fast and slow ~14 cm.
  double cube_high = 0.16;  // m
  double cube_low = 0.10;   // m
};

// The caption of frame `index` of an episode. `trajectory` is DatasetReader::trajectory(episode) (numbers
// only). The cube colour comes from info.scalars "cube_r", "cube_g", "cube_b" (0–1) when present.
// `paraphrase` 0 gives the canonical wording, any other value a reproducible random one.
std::string caption_frame(const EpisodeInfo& info, const std::vector<Frame>& trajectory, int index,
                          const CaptionThresholds& thresholds = {}, uint64_t paraphrase = 0);

// The neutral task ("pick up the cube and lift it" for paraphrase 0; "grab the block and lift it", … otherwise).
// None of its wordings names a height or a speed.
std::string neutral_instruction(uint64_t paraphrase = 0);
// A task that names the variant (high, low, fast, slow; anything else is an Error): paraphrase 0 is
// "pick up the cube and lift it <first adverb>" ("… high", "… low", "… fast", "… slowly").
std::string variant_instruction(const std::string& variant, uint64_t paraphrase = 0);

// The instruction mix of the VLA pre-training stage: a sample of a labelled episode gets a paraphrase naming its
// variant with probability named_fraction, else the neutral task (a random wording of it when paraphrase_neutral,
// else the episode's own instruction). Unlabelled episodes always get the neutral task.
struct InstructionMix {
  double named_fraction = 0;
  bool paraphrase_neutral = true;
};
// The instruction for one training sample; `draw` (e.g. a hash of the step and the sample's place in the batch)
// makes the choice and the wording, so a resumed run sees the same instructions.
std::string training_instruction(const EpisodeInfo& info, const InstructionMix& mix, uint64_t draw);

// The words of a concept (high, low, fast, slow) in the vocabulary: the concept's token cluster, for the
// neuron search's defaults and for tests. "up" is not among high's words: every "pick up" would carry it.
const std::vector<std::string>& concept_words(const std::string& concept);

// The colour word for an RGB colour (0–1): red, orange, yellow, green, cyan, blue, purple, pink, white, gray, black.
std::string colour_name(double r, double g, double b);

// Every word the captions and instructions can contain, plus "." — the word list of the small model's word-level
// tokenizer (special tokens are added by the tokenizer writer). Made from the phrase tables, so it cannot miss one.
const std::vector<std::string>& caption_vocabulary();

}  // namespace vlascope
