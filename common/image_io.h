// Reading and writing images (PNG) and videos (MP4, through OpenCV's FFmpeg backend), plus the few
// image operations that figures need: resizing, stacking, captions, colour maps and heatmap overlays.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/image.h"

namespace vlascope {

void write_png(const std::string& path, const Image& image);  // throws Error naming the path
Image read_png(const std::string& path);                       // RGB; throws Error naming the path

// An MP4 writer. Frames must all have the size of the first one; write() throws Error otherwise.
class VideoWriter {
 public:
  VideoWriter(const std::string& path, double fps);
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;
  void write(const Image& frame);
  void close();
  int frames() const { return frames_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
  double fps_;
  int frames_ = 0;
};

Image resize(const Image& image, int width, int height, bool nearest = false);
Image hstack(const std::vector<Image>& images, int gap = 0);  // heights padded to the tallest, black background
Image vstack(const std::vector<Image>& images, int gap = 0);
Image grayscale_to_rgb(const Image& gray);
// Writes text with a dark outline so it reads on any background. scale 0.4 ≈ 10 px tall.
void put_text(Image& image, const std::string& text, int x, int y, double scale = 0.4,
              const uint8_t rgb[3] = nullptr);
// Adds a caption strip above the image.
Image with_caption(const Image& image, const std::string& caption);

// Maps values (row-major, width*height) to an RGB image with a perceptual colour map (viridis-like
// "turbo" when jet=true). Values are scaled from [lo, hi]; pass lo == hi to use the data's min and max.
Image colormap(const std::vector<float>& values, int width, int height, float lo = 0, float hi = 0, bool jet = true);
// Alpha-blends `heat` (same size as base after resizing) over base.
Image overlay(const Image& base, const Image& heat, double alpha = 0.45);

}  // namespace vlascope
