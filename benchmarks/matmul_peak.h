// The machine's matmul peak, measured in the benchmark's own run: speeds are quoted as a fraction of it, because the
// machines these run on differ by 2× between sessions.
#pragma once

#include <torch/torch.h>

#include <chrono>

namespace vlascope {

// GFLOP/s of a 1024² × 1024² matmul in `dtype` on libtorch's current thread count.
inline double measure_matmul_peak(torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  const torch::Tensor a = torch::randn({1024, 1024}).to(dtype), b = torch::randn({1024, 1024}).to(dtype);
  for (int i = 0; i < 3; ++i) (void)torch::matmul(a, b);
  const int reps = 20;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) (void)torch::matmul(a, b);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return reps * 2.0 * 1024 * 1024 * 1024 / s / 1e9;
}

}  // namespace vlascope
