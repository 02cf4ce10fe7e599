// LeRobot's SmolVLA preprocessing of camera frames, shared by the policy (inference) and training.
#pragma once

#include <torch/torch.h>

#include "common/image.h"
#include "policy/config.h"

namespace vlascope {

// uint8 RGB [H, W, 3] → float [1, 3, H, W] in [0, 1]. Error if the image is empty or not RGB.
torch::Tensor image_tensor(const Image& image);
// LeRobot's resize_with_pad(img, width, height, pad_value=0): keep the aspect ratio, bilinear (align_corners
// false, no antialias), pad on the left and top. [N, 3, H, W] → [N, 3, height, width].
torch::Tensor resize_with_pad(const torch::Tensor& images, int width, int height);
// A camera frame as the model sees it: resized with padding and mapped to [−1, 1], [1, 3, h, w].
torch::Tensor model_image(const Image& image, const SmolVLAConfig& config);
// Training augmentation (not LeRobot's; `train --augment-shift`): images [N, 3, H, W] moved by dx pixels right and dy
// down, the uncovered border filled by repeating the edge; same size.
torch::Tensor shift_image(const torch::Tensor& images, int dx, int dy);

}  // namespace vlascope
