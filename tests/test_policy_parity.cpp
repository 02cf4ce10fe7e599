// SmolVLA against LeRobot's own numbers (shared/parity): the definition of "exact architecture".
#include <gtest/gtest.h>

#include <cstdio>

#include "policy/parity.h"

namespace vlascope {
namespace {

const std::string kParity = VLASCOPE_SOURCE_DIR "/../shared/parity/";

ParityFiles tiny_files() {
  return {kParity + "smolvla_tiny_config.json", kParity + "smolvla_tiny_vlm_config.json",
          kParity + "smolvla_tiny_weights.safetensors", kParity + "smolvla_tiny_io.safetensors"};
}

TEST(Parity, TinyFloat32MatchesLeRobotAtEveryStage) {
  const ParityReport r = run_parity(tiny_files(), 1e-4, "fp32", 2);
  EXPECT_EQ(r.parameters, 1272264);
  // images ×2, prefix (3), KV cache of layers 0 and 1 (4), 10 velocities, actions cached and uncached.
  EXPECT_EQ(r.rows.size(), 2u + 3u + 4u + 10u + 3u);  // actions: cached, uncached, packed
  for (const ParityRow& row : r.rows) {
    std::printf("  %-24s max |error| %.3g (reference max %.3g)\n", row.name.c_str(), row.max_abs_error,
                row.max_abs_reference);
    EXPECT_LE(row.max_abs_error, row.tolerance) << row.name << " (reference scale " << row.max_abs_reference << ")";
    if (row.tolerance > 0) {
      EXPECT_GT(row.max_abs_reference, 1e-3) << row.name << ": a reference of zeros would prove nothing";
    }
  }
  EXPECT_TRUE(r.ok());
}

}  // namespace
}  // namespace vlascope
