// Dataset throughput: how fast episodes are written (collection must keep up with the simulator) and how fast
// a training loop can sample random frames.
//
//   ./build/benchmarks/bench_dataset [--benchmark_filter=Write]
// Files go to $TMPDIR (default /tmp), which should be the disk a real dataset would live on: the write figures
// include fsync.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

#include "dataset/dataset.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

fs::path bench_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("vlascope_bench_dataset_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  return dir;
}

// A stand-in for a rendered frame: a shaded table, a moving arm-coloured bar and a cube, plus optional sensor
// noise (noise = 0 is what the simulator renders; a real camera adds a few levels of noise).
Image synthetic_render(int size, int t, int noise, std::mt19937& rng) {
  Image image(size, size, 3);
  std::uniform_int_distribution<int> jitter(-noise, noise);
  const int cube_x = size / 2 + static_cast<int>(size / 5 * std::sin(t * 0.05)), cube_y = size * 2 / 3;
  const int arm_x = size / 3 + t % (size / 3);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x) {
      int r = 90 + y * 80 / size, g = 70 + y * 60 / size, b = 50 + x * 30 / size;                         // lit table
      if (std::abs(x - arm_x) < size / 16 && y < size / 2 + t % 20) r = g = b = 200;                      // arm
      if (std::abs(x - cube_x) < size / 20 && std::abs(y - cube_y) < size / 20) r = 220, g = 30, b = 30;  // cube
      uint8_t* p = image.at(x, y);
      p[0] = static_cast<uint8_t>(std::clamp(r + (noise ? jitter(rng) : 0), 0, 255));
      p[1] = static_cast<uint8_t>(std::clamp(g + (noise ? jitter(rng) : 0), 0, 255));
      p[2] = static_cast<uint8_t>(std::clamp(b + (noise ? jitter(rng) : 0), 0, 255));
    }
  return image;
}

Image synthetic_segmentation(const Image& render) {
  Image seg(render.width, render.height, 1);
  for (int y = 0; y < render.height; ++y)
    for (int x = 0; x < render.width; ++x) {
      const uint8_t* p = render.at(x, y);
      *seg.at(x, y) = p[0] > 210 && p[1] < 60 ? 3 : (p[0] > 190 && p[1] > 190 ? 2 : 1);
    }
  return seg;
}

// An episode of two 128² cameras ("scene" with segmentation, "wrist" without), like the expert collects.
std::pair<EpisodeInfo, std::vector<Frame>> synthetic_episode(int frames, int size, int noise, bool segmentation,
                                                             uint32_t seed) {
  std::mt19937 rng(seed);
  EpisodeInfo info;
  info.instruction = "pick up the cube and lift it";
  info.variant = "high";
  info.robot = "sim";
  info.source = "expert";
  info.seed = seed;
  info.success = true;
  info.cameras = {"scene", "wrist"};
  info.scalars["target_lift_height_m"] = 0.2;
  std::vector<Frame> episode(frames);
  for (int t = 0; t < frames; ++t) {
    Frame& f = episode[t];
    f.timestamp = t / 30.0;
    for (int j = 0; j < 6; ++j) f.state[j] = f.action[j] = std::sin(t * 0.1 + j) * 60;
    f.images["scene"] = synthetic_render(size, t, noise, rng);
    f.images["wrist"] = synthetic_render(size, t + 37, noise, rng);
    if (segmentation) f.segmentation["scene"] = synthetic_segmentation(f.images["scene"]);
  }
  return {info, episode};
}

// Args: noise amplitude (0 = clean render, 4 = camera-like), segmentation (0/1).
void BM_WriteEpisode(benchmark::State& state) {
  const int frames = 90, noise = static_cast<int>(state.range(0));
  const bool segmentation = state.range(1) != 0;
  auto [info, episode] = synthetic_episode(frames, 128, noise, segmentation, 1);
  fs::path dir = bench_dir("write");
  DatasetWriter writer(dir.string());
  int64_t written = 0;
  uintmax_t bytes = 0;
  for (auto _ : state) {
    writer.write(info, episode);
    written += frames;
    state.PauseTiming();
    for (const std::string& file : list_episode_files(dir.string())) {
      bytes = fs::file_size(file);
      fs::remove(file);
    }
    state.ResumeTiming();
  }
  size_t raw = frames * (2 * 128 * 128 * 3 + (segmentation ? 128 * 128 : 0));
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(written), benchmark::Counter::kIsRate);
  state.counters["KiB/frame"] = static_cast<double>(bytes) / frames / 1024;
  state.counters["compression"] = static_cast<double>(raw) / static_cast<double>(bytes);
  fs::remove_all(dir);
}
BENCHMARK(BM_WriteEpisode)->Args({0, 1})->Args({0, 0})->Args({4, 1})->Unit(benchmark::kMillisecond)->UseRealTime();

// A dataset the random-read benchmarks share: 100 episodes of 90 frames, two 128² cameras. More episodes than
// a reader keeps open (64), so about a third of random reads reopen a file, as in training.
constexpr int kReadEpisodes = 100;

const std::string& read_dataset() {
  static const std::string directory = [] {
    fs::path dir = bench_dir("read");
    DatasetWriter writer(dir.string());
    for (int e = 0; e < kReadEpisodes; ++e) {
      auto [info, episode] = synthetic_episode(90, 128, 0, true, 100 + e);
      writer.write(info, episode);
    }
    return dir.string();
  }();
  return directory;
}

// Args: what to read — 0 numbers only, 1 both camera images, 2 images and segmentation.
void BM_ReadRandomFrame(benchmark::State& state) {
  DatasetReader reader(read_dataset());
  const bool images = state.range(0) >= 1, segmentation = state.range(0) >= 2;
  std::mt19937 rng(3);
  for (auto _ : state) {
    int e = static_cast<int>(rng() % reader.num_episodes());
    int t = static_cast<int>(rng() % reader.num_frames(e));
    Frame frame = reader.frame(e, t, images, segmentation);
    benchmark::DoNotOptimize(frame);
  }
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReadRandomFrame)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Opening validates every file and loads the per-frame numbers.
void BM_OpenReader(benchmark::State& state) {
  const std::string& directory = read_dataset();
  for (auto _ : state) {
    DatasetReader reader(directory);
    benchmark::DoNotOptimize(reader.total_frames());
  }
  state.counters["episodes/s"] =
      benchmark::Counter(double(kReadEpisodes) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_OpenReader)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace vlascope

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                              ("vlascope_bench_dataset_" + std::to_string(::getpid())));
  return 0;
}
