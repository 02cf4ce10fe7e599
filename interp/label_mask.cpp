#include "interp/label_mask.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "common/error.h"
#include "common/image_io.h"

namespace vlascope {
namespace {

struct MaskColour {
  std::array<int, 3> rgb;
  int32_t label;
};
const MaskColour kMaskColours[] = {
    {{0, 0, 0}, 0}, {{255, 255, 255}, 0}, {{255, 0, 0}, 2}, {{0, 255, 0}, 3}, {{0, 0, 255}, 4},
};
constexpr int kFarDistanceSquared = 100 * 100;
constexpr double kMaxFarShare = 0.05;

}  // namespace

LabelImage read_label_mask(const std::string& path) {
  require(std::filesystem::is_regular_file(path), "label mask " + path + ": no such file");
  Image rgb;
  try {
    rgb = read_png(path);
  } catch (const Error& e) {
    throw Error("label mask " + path + ": unreadable (" + e.what() + ")");
  }
  require(rgb.width > 0 && rgb.height > 0 && rgb.channels == 3, "label mask " + path + ": empty image");
  LabelImage out(rgb.width, rgb.height);
  size_t far = 0;
  for (int y = 0; y < rgb.height; ++y)
    for (int x = 0; x < rgb.width; ++x) {
      const uint8_t* p = rgb.at(x, y);
      int best = -1, best_d = 0;
      for (int k = 0; k < static_cast<int>(std::size(kMaskColours)); ++k) {
        int d = 0;
        for (int c = 0; c < 3; ++c) d += (p[c] - kMaskColours[k].rgb[c]) * (p[c] - kMaskColours[k].rgb[c]);
        if (best < 0 || d < best_d) best = k, best_d = d;
      }
      out.at(x, y) = kMaskColours[best].label;
      far += best_d > kFarDistanceSquared;
    }
  const double share = static_cast<double>(far) / (static_cast<double>(rgb.width) * rgb.height);
  if (share > kMaxFarShare) {
    char msg[160];
    std::snprintf(msg, sizeof msg,
                  ": %.0f%% of the pixels are near none of the mask colours (black/white background, red cube, "
                  "green gripper, blue arm); is it a photo?",
                  100 * share);
    throw Error("label mask " + path + msg);
  }
  return out;
}

LabelImage fit_label_mask(const LabelImage& mask, int width, int height, const std::string& what) {
  if (mask.width == width && mask.height == height) return mask;
  const double mask_aspect = static_cast<double>(mask.width) / mask.height;
  const double frame_aspect = static_cast<double>(width) / height;
  require(std::abs(mask_aspect / frame_aspect - 1) <= 0.01,
          "label mask " + what + ": " + std::to_string(mask.width) + "×" + std::to_string(mask.height) +
              " does not have the camera frame's aspect ratio (" + std::to_string(width) + "×" +
              std::to_string(height) + "); paint it over a frame of that camera");
  LabelImage out(width, height);
  for (int y = 0; y < height; ++y) {
    const int sy = std::min(mask.height - 1, static_cast<int>((y + 0.5) * mask.height / height));
    for (int x = 0; x < width; ++x)
      out.at(x, y) = mask.at(std::min(mask.width - 1, static_cast<int>((x + 0.5) * mask.width / width)), sy);
  }
  return out;
}

SegmentationSource mask_segmentation(const std::string& spec) {
  struct Mask {
    std::string path;
    LabelImage labels;
  };
  auto masks = std::make_shared<std::map<std::string, Mask>>();
  size_t start = 0;
  while (start < spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string item = spec.substr(start, comma - start);
    const size_t eq = item.find('=');
    require(eq != std::string::npos && eq > 0 && eq + 1 < item.size(), "--mask: '" + item + "' is not camera=path.png");
    const std::string camera = item.substr(0, eq), path = item.substr(eq + 1);
    require(!masks->count(camera), "--mask: camera " + camera + " has two masks");
    (*masks)[camera] = {path, read_label_mask(path)};
    start = comma + 1;
  }
  require(!masks->empty(), "--mask: no camera=path.png given");
  return [masks](const Observation& observation) {
    std::map<std::string, LabelImage> out;
    for (const auto& [camera, mask] : *masks) {
      auto frame = observation.images.find(camera);
      if (frame == observation.images.end()) {
        std::string names;
        for (const auto& [name, image] : observation.images) names += (names.empty() ? "" : ", ") + name;
        throw Error("--mask: camera " + camera + " (" + mask.path + ") is not one the policy sees (" + names + ")");
      }
      out[camera] = fit_label_mask(mask.labels, frame->second.width, frame->second.height, mask.path);
    }
    return out;
  };
}

}  // namespace vlascope
