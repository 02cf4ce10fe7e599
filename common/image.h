// Image: plain 8-bit pixels, row-major, top row first, channels interleaved (RGB when 3).
#pragma once

#include <cstdint>
#include <vector>

namespace vlascope {

struct Image {
  int width = 0;
  int height = 0;
  int channels = 3;
  std::vector<uint8_t> pixels;  // width * height * channels

  Image() = default;
  Image(int w, int h, int c = 3, uint8_t fill = 0)
      : width(w), height(h), channels(c), pixels(static_cast<size_t>(w) * h * c, fill) {}

  bool empty() const { return pixels.empty(); }
  uint8_t* at(int x, int y) { return &pixels[(static_cast<size_t>(y) * width + x) * channels]; }
  const uint8_t* at(int x, int y) const { return &pixels[(static_cast<size_t>(y) * width + x) * channels]; }
};

}  // namespace vlascope
