// Segmentation classes: what a pixel of a segmentation image shows. The ids are stored in datasets
// (Frame::segmentation, one byte per pixel), so they never change meaning; new classes get new numbers.
//
// Classes come from the scene's names (sim/simulator.cpp): the bodies Fixed_Jaw and Moving_Jaw are the gripper,
// the rest of the subtree under Base is the arm, the body "cube" is the cube, the body "table" is the table,
// and everything else (floor, sky, walls) is background.
#pragma once

#include <array>
#include <cstdint>

#include "common/image.h"

namespace vlascope {

enum SegmentClass : uint8_t {
  kSegBackground = 0,
  kSegTable = 1,
  kSegCube = 2,
  kSegGripper = 3,  // both jaws with their pads
  kSegArm = 4,      // links and servos from the base to the wrist
};
inline constexpr int kNumSegmentClasses = 5;
inline constexpr std::array<const char*, kNumSegmentClasses> kSegmentClassNames = {"background", "table", "cube",
                                                                                   "gripper", "arm"};

// A colour per class, for figures (the background stays black).
inline constexpr std::array<std::array<uint8_t, 3>, kNumSegmentClasses> kSegmentColours = {
    {{0, 0, 0}, {140, 110, 80}, {230, 60, 40}, {70, 160, 230}, {200, 200, 200}}};

// A 1-channel class-id image as RGB, with kSegmentColours (unknown ids in magenta).
inline Image colorize_segmentation(const Image& classes) {
  Image out(classes.width, classes.height, 3);
  for (size_t i = 0; i < static_cast<size_t>(classes.width) * classes.height; ++i) {
    uint8_t c = classes.pixels[i * classes.channels];
    const uint8_t magenta[3] = {255, 0, 255};
    const uint8_t* rgb = c < kNumSegmentClasses ? kSegmentColours[c].data() : magenta;
    for (int k = 0; k < 3; ++k) out.pixels[i * 3 + k] = rgb[k];
  }
  return out;
}

}  // namespace vlascope
