// Seeded random numbers that are identical on every platform and standard library (std::uniform_real_distribution
// is not), so that an episode is a function of its seed. SplitMix64: (seed, stream) mixes into a state, each draw
// is one more mixing step. Independent streams keep draws apart: switching one randomisation off does not shift
// the others.
#pragma once

#include <cstdint>

namespace vlascope {

class SeededRandom {
 public:
  SeededRandom(uint64_t seed, uint64_t stream) : state_(mix(seed ^ mix(stream + 0x9E3779B97F4A7C15ull))) {}

  double uniform(double lo, double hi) { return lo + (hi - lo) * static_cast<double>(mix(state_++) >> 11) * 0x1.0p-53; }

 private:
  static uint64_t mix(uint64_t z) {
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t state_;
};

// The streams in use: one per thing a seed decides.
enum RandomStream : uint64_t {
  kStreamCubePose = 1,
  kStreamCubeColour,
  kStreamLights,
  kStreamCamera,
  kStreamStartPose,
  kStreamExpert,
  kStreamExecutionNoise
};

}  // namespace vlascope
