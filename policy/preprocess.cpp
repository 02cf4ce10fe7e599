#include "policy/preprocess.h"

#include "common/error.h"

namespace vlascope {

torch::Tensor image_tensor(const Image& image) {
  require(image.channels == 3 && image.width > 0 && image.height > 0 &&
              image.pixels.size() == static_cast<size_t>(image.width) * image.height * 3,
          "policy: camera frames must be non-empty RGB images");
  const torch::Tensor hwc = torch::from_blob(const_cast<uint8_t*>(image.pixels.data()),
                                             {image.height, image.width, 3}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).unsqueeze(0).to(torch::kFloat32).div_(255.0);
}

torch::Tensor resize_with_pad(const torch::Tensor& img, int width, int height) {
  const int64_t h = img.size(2), w = img.size(3);
  if (h == height && w == width) return img;
  const double ratio = std::max(static_cast<double>(w) / width, static_cast<double>(h) / height);
  const int64_t rh = static_cast<int64_t>(h / ratio), rw = static_cast<int64_t>(w / ratio);
  const torch::Tensor resized = torch::nn::functional::interpolate(
      img, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{rh, rw})
               .mode(torch::kBilinear)
               .align_corners(false));
  const int64_t pad_h = std::max<int64_t>(0, height - rh), pad_w = std::max<int64_t>(0, width - rw);
  return torch::constant_pad_nd(resized, {pad_w, 0, pad_h, 0}, 0.0);
}

torch::Tensor model_image(const Image& image, const SmolVLAConfig& config) {
  const auto [width, height] = config.input_image_size();
  return resize_with_pad(image_tensor(image), width, height).mul(2.0).sub(1.0);
}

torch::Tensor shift_image(const torch::Tensor& images, int dx, int dy) {
  namespace F = torch::nn::functional;
  const int64_t h = images.size(2), w = images.size(3), m = std::max(std::abs(dx), std::abs(dy));
  require(m < std::min(h, w), "shift_image: a shift of " + std::to_string(m) + " pixels does not fit a " +
                                  std::to_string(w) + "x" + std::to_string(h) + " image");
  if (m == 0) return images;
  const torch::Tensor padded = F::pad(images, F::PadFuncOptions({m, m, m, m}).mode(torch::kReplicate));
  return padded.narrow(2, m - dy, h).narrow(3, m - dx, w).contiguous();
}

}  // namespace vlascope
