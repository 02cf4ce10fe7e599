#include <mujoco/mujoco.h>
#include <torch/version.h>

#include <cstdio>
#include <opencv2/core/version.hpp>
#include <thread>

#include "apps/commands.h"
#include "common/cli.h"

namespace vlascope {

int run_info(int argc, char** argv) {
  ArgParser args("vlascope info", "Print library versions, hardware threads and build options.");
  if (!args.parse(argc, argv)) return 0;
  std::printf("vlascope        0.1\n");
  std::printf("MuJoCo          %d.%d.%d\n", mj_version() / 100, (mj_version() / 10) % 10, mj_version() % 10);
  std::printf("libtorch        %s\n", TORCH_VERSION);
  std::printf("OpenCV          %s\n", CV_VERSION);
  std::printf("hardware threads %u\n", std::thread::hardware_concurrency());
#ifdef __SANITIZE_ADDRESS__
  std::printf("sanitizers      address, undefined\n");
#endif
  return 0;
}

}  // namespace vlascope
