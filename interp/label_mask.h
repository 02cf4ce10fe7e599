// Hand-painted segmentation masks, so the attention metrics run where no simulator renders a segmentation (the
// real arm), or replace the simulator's when given.
//
// Encoding: a PNG (RGB) painted over a camera frame or on a blank canvas; every pixel takes the class of the
// nearest of these colours, so anti-aliased brush edges need no cleaning:
//   black (0,0,0) or white (255,255,255)  background (the canvas colour of either kind of paint program)
//   red   (255,0,0)                       cube
//   green (0,255,0)                       gripper
//   blue  (0,0,255)                       arm
// A file where more than 5% of the pixels lie far (Euclidean RGB distance > 100) from every one of these colours
// is rejected: it is a photo or a colourised segmentation, not a mask. Class ids are the simulator's
// (0 background, 2 cube, 3 gripper, 4 arm), the ones score_attention scores.
//
// Size: a mask may be painted at any resolution of the camera's frame. A mask of another size than the frame is
// resized by nearest neighbour (classes never blend) when the aspect ratios agree within 1%; otherwise it cannot
// line up with the frame and is an Error naming the file and both sizes.
#pragma once

#include <map>
#include <string>

#include "interp/attention_metrics.h"
#include "interp/attention_study.h"

namespace vlascope {

// Throws Error naming the path when the file is missing, unreadable or not a mask.
LabelImage read_label_mask(const std::string& path);
// `mask` at width × height, as the encoding above says; `what` (the file) is named in errors.
LabelImage fit_label_mask(const LabelImage& mask, int width, int height, const std::string& what);

// "camera=path[,camera=path…]" → one fixed mask per camera, read (and checked) now. The source gives every masked
// camera's mask fitted to the observation's frame; a camera the observation lacks is an Error naming it.
SegmentationSource mask_segmentation(const std::string& spec);

}  // namespace vlascope
