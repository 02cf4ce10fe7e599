// SmolVLA inference: one action chunk (prefix + all denoising steps) at smolvla_base size with random weights and
// at the parity-tiny size; the prefix vs denoising split; cached vs uncached; fp32 vs bf16. Each case reports the
// FLOP rate it achieved as a fraction of the machine's matmul peak measured in the same run.
//
// BM_VersusLeRobotOps runs the same model the way LeRobot's eager PyTorch code does, so that a machine without
// LeRobot still gets a same-machine baseline: separate q/k/v and gate/up matmuls, every attention as full
// [B, H, L, L] maps (matmul, fp32 softmax, matmul — what no-op pattern hooks force), the last VLM layer's prefix rows
// computed, two threads (but the denoising loop's small elementwise ops on one, as here), and glibc's default of mmap
// for big blocks (fresh, page-faulting memory for every large activation, as a Python process gets). It is an
// emulation, not LeRobot, and a generous one: at base size it runs at 0.65–0.8 of the 1024² matmul peak per chunk's 828
// GFLOP (6.2–8.5 s here, depending on what the heap already holds), where LeRobot itself — timed on an Intel machine,
// PyTorch eager, fp32, 2 threads — took 6.2 s, 0.57 of that machine's 235 GFLOP/s. At tiny size LeRobot took 17.4 ms
// (recorded in shared/parity/smolvla_tiny_io.safetensors), 0.03 of peak: Python's per-op cost dominates, which the
// emulation does not have (0.06 of peak here).
//
//   ./build/benchmarks/bench_policy                               # everything (~6 min on 2 cores)
//   ./build/benchmarks/bench_policy --benchmark_filter='/1/' --threads=2   # base size only
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "benchmarks/matmul_peak.h"
#include "common/runtime.h"
#include "interp/stats.h"
#include "policy/config.h"
#include "policy/smolvla.h"

namespace vlascope {
namespace {

struct Size {
  const char* name;
  SmolVLAConfig config;
  int cameras, image, words;
};

const Size& size(int index) {
  static const Size sizes[] = {{"tiny", smolvla_tiny_config(), 2, 64, 12}, {"base", smolvla_base_config(), 3, 512, 48}};
  return sizes[index];
}

double g_peak_fp32 = 0, g_peak_bf16 = 0;  // GFLOP/s of a 1024² matmul, measured once per run

struct Fixture {
  std::unique_ptr<SmolVLA> model;
  std::vector<HookHandle> hooks;  // after the model: unhooked first
  ModelInputs inputs;
  torch::Tensor noise;
};

// One model per (size, precision), built on first use and kept for the run (base fp32 is 1.8 GB).
Fixture& fixture(int size_index, Precision precision) {
  static std::map<std::pair<int, int>, Fixture> cache;
  auto key = std::make_pair(size_index, static_cast<int>(precision));
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const Size& s = size(size_index);
  Fixture f;
  f.model = std::make_unique<SmolVLA>(s.config, Precision::kFloat32);
  f.model->init_random(0);
  f.model->to(precision, torch::kCPU);
  f.model->pack_for_inference();  // as Policy does: the expert's transposed and fused weights
  torch::manual_seed(1);
  for (int c = 0; c < s.cameras; ++c) {
    f.inputs.images.push_back(torch::rand({1, 3, s.image, s.image}) * 2 - 1);
    f.inputs.image_masks.push_back(torch::ones({1}, torch::kBool));
  }
  f.inputs.lang_tokens = torch::randint(0, s.config.text.vocab_size, {1, s.words}, torch::kInt64);
  f.inputs.lang_masks = torch::ones({1, s.words}, torch::kBool);
  f.inputs.state = torch::randn({1, s.config.max_state_dim});
  f.noise = torch::randn({1, s.config.chunk_size, s.config.max_action_dim});
  return cache.emplace(key, std::move(f)).first->second;
}

// The fp32 model at a size, run as LeRobot's code runs it (see the top of this file), built on first use.
Fixture& lerobot_ops_fixture(int size_index) {
  static std::map<int, Fixture> cache;
  auto it = cache.find(size_index);
  if (it != cache.end()) return it->second;
  const Size& s = size(size_index);
  Fixture f;
  f.model = std::make_unique<SmolVLA>(s.config, Precision::kFloat32);
  f.model->init_random(0);  // not packed
  f.model->set_threads({2, 2});
  const auto no_op = [](const HookContext&, at::Tensor&) {};
  const std::pair<const char*, int> streams[] = {
      {"vision", s.config.vision.layers}, {"vlm", s.config.num_vlm_layers}, {"expert", s.config.num_expert_layers}};
  for (const auto& [stream, layers] : streams)
    for (int i = 0; i < layers; ++i)
      f.hooks.push_back(f.model->hooks().add(std::string(stream) + ".layers." + std::to_string(i) + ".attn.pattern", no_op));
  const Fixture& same = fixture(size_index, Precision::kFloat32);
  f.inputs = same.inputs;
  f.noise = same.noise;
  return cache.emplace(size_index, std::move(f)).first->second;
}

// glibc's allocation defaults for a scope (prepare_runtime turns mmap off); 32 MB is the threshold its dynamic rule
// settles at in a long-running process.
class DefaultMalloc {
 public:
  DefaultMalloc() {
    mallopt(M_MMAP_MAX, 65536);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
  }
  ~DefaultMalloc() { keep_freed_memory_on_the_heap(); }
};

void report(benchmark::State& state, double flops, Precision precision) {
  // Rate counters divide by the measured wall time.
  state.counters["GFLOP/s"] = benchmark::Counter(flops / 1e9 * state.iterations(), benchmark::Counter::kIsRate);
  const double peak = precision == Precision::kFloat32 ? g_peak_fp32 : g_peak_bf16;
  state.counters["peak_fraction"] =
      benchmark::Counter(flops / (peak * 1e9) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["peak_GFLOP/s"] = peak;
}

// args: size (0 tiny, 1 base), precision (0 fp32, 1 bf16)
void BM_Chunk(benchmark::State& state) {
  const Precision precision = state.range(1) ? Precision::kBFloat16 : Precision::kFloat32;
  Fixture& f = fixture(static_cast<int>(state.range(0)), precision);
  c10::InferenceMode inference;
  for (auto _ : state) benchmark::DoNotOptimize(f.model->sample_actions(f.inputs, f.noise, true));
  const Size& s = size(static_cast<int>(state.range(0)));
  const ChunkFlops fl = chunk_flops(s.config, s.cameras, s.image, s.words);
  report(state, fl.prefix + fl.denoise, precision);
  state.SetLabel(std::string(s.name) + " " + precision_name(precision));
}

// args: size, precision of vlascope's run. Each iteration runs one chunk our way, then one the emulated LeRobot way,
// and the speed-up is the median of the per-pair ratios: these machines' speed drifts by ±15 % over minutes, and a
// pair sees the same drift.
void BM_VersusLeRobotOps(benchmark::State& state) {
  const int size_index = static_cast<int>(state.range(0));
  const Precision precision = state.range(1) ? Precision::kBFloat16 : Precision::kFloat32;
  Fixture& ours = fixture(size_index, precision);
  Fixture& lerobot = lerobot_ops_fixture(size_index);
  c10::InferenceMode inference;
  using clock = std::chrono::steady_clock;
  std::vector<double> ours_ms, lerobot_ms, ratios;
  for (auto _ : state) {
    const auto t0 = clock::now();
    benchmark::DoNotOptimize(ours.model->sample_actions(ours.inputs, ours.noise, true));
    const auto t1 = clock::now();
    {
      const DefaultMalloc malloc_defaults;
      benchmark::DoNotOptimize(lerobot.model->sample_actions(lerobot.inputs, lerobot.noise, true));
    }
    const auto t2 = clock::now();
    ours_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    lerobot_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    ratios.push_back(lerobot_ms.back() / ours_ms.back());
  }
  state.counters["ours_ms"] = quantile(ours_ms, 0.5);
  state.counters["lerobot_ops_ms"] = quantile(lerobot_ms, 0.5);
  state.counters["speedup"] = quantile(ratios, 0.5);
  const Size& s = size(size_index);
  state.SetLabel(std::string(s.name) + " " + precision_name(precision) +
                 " vs fp32 in LeRobot's op sequence (emulated)");
}

void BM_ChunkUncached(benchmark::State& state) {
  const Precision precision = state.range(1) ? Precision::kBFloat16 : Precision::kFloat32;
  Fixture& f = fixture(static_cast<int>(state.range(0)), precision);
  c10::InferenceMode inference;
  for (auto _ : state) benchmark::DoNotOptimize(f.model->sample_actions(f.inputs, f.noise, false));
  const Size& s = size(static_cast<int>(state.range(0)));
  state.SetLabel(std::string(s.name) + " " + precision_name(precision) + " (prefix recomputed every step)");
}

void BM_Prefix(benchmark::State& state) {
  const Precision precision = state.range(1) ? Precision::kBFloat16 : Precision::kFloat32;
  Fixture& f = fixture(static_cast<int>(state.range(0)), precision);
  c10::InferenceMode inference;
  const Size& s = size(static_cast<int>(state.range(0)));
  const double flops = chunk_flops(s.config, s.cameras, s.image, s.words).prefix;
  const int saved = at::get_num_threads();
  at::set_num_threads(std::max(1, phase_threads(f.model->threads().prefix, flops)));  // as sample_actions does
  for (auto _ : state) benchmark::DoNotOptimize(f.model->run_prefix(f.model->embed_prefix(f.inputs)));
  at::set_num_threads(saved);
  report(state, flops, precision);
  state.SetLabel(std::string(s.name) + " " + precision_name(precision));
}

void BM_Denoise(benchmark::State& state) {
  const Precision precision = state.range(1) ? Precision::kBFloat16 : Precision::kFloat32;
  Fixture& f = fixture(static_cast<int>(state.range(0)), precision);
  c10::InferenceMode inference;
  const PrefixCache cache = f.model->run_prefix(f.model->embed_prefix(f.inputs));
  const int steps = f.model->config().num_steps;
  const torch::Tensor t = torch::full({1}, 0.5f);
  const Size& s = size(static_cast<int>(state.range(0)));
  const double flops = chunk_flops(s.config, s.cameras, s.image, s.words).denoise;
  const int saved = at::get_num_threads();
  at::set_num_threads(std::max(1, phase_threads(f.model->threads().denoise, flops)));
  for (auto _ : state)
    for (int k = 0; k < steps; ++k) benchmark::DoNotOptimize(f.model->denoise_step(cache, f.noise, t, k));
  at::set_num_threads(saved);
  report(state, flops, precision);
  state.SetLabel(std::string(s.name) + " " + precision_name(precision) + ", all " + std::to_string(steps) + " steps");
}

BENCHMARK(BM_Chunk)->ArgsProduct({{0}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_Prefix)->ArgsProduct({{0}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);
BENCHMARK(BM_Denoise)->ArgsProduct({{0}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);
BENCHMARK(BM_ChunkUncached)->ArgsProduct({{0}, {0}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1);
BENCHMARK(BM_VersusLeRobotOps)->ArgsProduct({{0}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);
BENCHMARK(BM_Chunk)->ArgsProduct({{1}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_Prefix)->ArgsProduct({{1}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_Denoise)->ArgsProduct({{1}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_VersusLeRobotOps)->ArgsProduct({{1}, {0, 1}})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(5);
BENCHMARK(BM_ChunkUncached)->ArgsProduct({{1}, {1}})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace
}  // namespace vlascope

int main(int argc, char** argv) {
  vlascope::prepare_runtime(argv);
  int threads = 2;
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0)
      threads = std::atoi(argv[i] + 10);
    else
      rest.push_back(argv[i]);
  }
  at::set_num_threads(threads);
  vlascope::g_peak_fp32 = vlascope::measure_matmul_peak(torch::kFloat32);
  vlascope::g_peak_bf16 = vlascope::measure_matmul_peak(torch::kBFloat16);
  std::printf("OpenBLAS core %s; ", vlascope::blas_core_name().c_str());
  std::printf("threads %d; 1024² matmul peak: fp32 %.0f GFLOP/s, bf16 %.0f GFLOP/s\n", threads, vlascope::g_peak_fp32,
              vlascope::g_peak_bf16);
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
