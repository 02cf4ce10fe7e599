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
};

// The caption of frame `index` of an episode. `trajectory` is DatasetReader::trajectory(episode) (numbers
// only). The cube colour comes from info.scalars "cube_r", "cube_g", "cube_b" (0–1) when present.
std::string caption_frame(const EpisodeInfo& info, const std::vector<Frame>& trajectory, int index,
                          const CaptionThresholds& thresholds = {});

// The colour word for an RGB colour (0–1): red, orange, yellow, green, cyan, blue, purple, pink, white, gray, black.
std::string colour_name(double r, double g, double b);

// Every word the captions, the task instruction and the prompt baselines can contain, plus "." — the word
// list of the small model's word-level tokenizer (special tokens are added by the tokenizer writer).
const std::vector<std::string>& caption_vocabulary();

}  // namespace vlascope
