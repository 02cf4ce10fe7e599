// The shipped small model (models/smolvla_small_unfrozen) on a rendered observation of the digital twin: one
// action chunk (prefix + 10 denoising steps) without capture, with the live view's attention capture, with every
// attention map, with one layer's maps with all heads (a middle VLM layer, or the last expert cross layer: issue 5's
// "< 10% of inference time" target), with every MLP activation, with an activation patcher hooked on every layer but
// off (issue 16: an inactive intervention must cost nothing measurable), and with a patch written at every call —
// what interpretability costs per policy call.
// At 30 Hz with 10 action steps per chunk the control loop allows 333 ms per chunk.
//
//   ./build/benchmarks/bench_shipped [--threads=2] [--model=models/smolvla_small_frozen] [--profile=trace]
// --profile=trace writes trace.<batch>.<precision>.json (chrome://tracing) of one batched call per BM_ShippedBatch
// setting: libtorch's own record of every op and its time.
#include <benchmark/benchmark.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "benchmarks/matmul_peak.h"
#include "common/error.h"
#include "common/runtime.h"
#include "hardware/units.h"
#include "interp/capture.h"
#include "interp/patching.h"
#include "policy/config.h"
#include "policy/policy.h"
#include "policy/smolvla.h"
#include "sim/simulator.h"

namespace vlascope {
namespace {

std::string g_model = std::string(VLASCOPE_SOURCE_DIR) + "/models/smolvla_small_unfrozen";
int g_threads = 2;
std::string g_profile;  // --profile=FILE: a Chrome trace of one batched call per setting, op by op
double g_peak_fp32 = 0, g_peak_bf16 = 0;  // GFLOP/s of a 1024² matmul, measured once per run

struct Fixture {
  std::unique_ptr<Policy> policy;
  PolicyInput input;
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture x;
    PolicyOptions o;
    o.threads = g_threads;
    x.policy = Policy::load(g_model, o);
    Simulator sim{SimOptions{}};
    sim.reset(100000);
    const Observation obs = sim.observe();
    x.input.images = obs.images;
    const JointVector state = to_lerobot(obs.joint_positions);
    x.input.state.assign(state.begin(), state.end());
    x.input.task = "pick up the cube and lift it";
    return x;
  }();
  return f;
}

enum Capture { kNone, kLiveView, kAllAttention, kActivations, kOneVlmLayer, kOneExpertLayer, kPatcherOff, kPatching };

void BM_ShippedChunk(benchmark::State& state) {
  Fixture& f = fixture();
  const auto capture = static_cast<Capture>(state.range(0));
  std::unique_ptr<AttentionRecorder> attention;
  std::unique_ptr<ActivationRecorder> activations;
  if (capture == kLiveView) {
    attention = std::make_unique<AttentionRecorder>(*f.policy, live_view_capture_spec());
  } else if (capture == kAllAttention) {
    AttentionCaptureSpec spec;  // every VLM and expert layer, head, step and query
    spec.max_chunks = 1;
    attention = std::make_unique<AttentionRecorder>(*f.policy, spec);
  } else if (capture == kActivations) {
    activations = std::make_unique<ActivationRecorder>(*f.policy);
  } else if (capture == kOneVlmLayer || capture == kOneExpertLayer) {
    // A middle VLM layer (every prefix row) or the last cross-attention layer (every action row, every step).
    const SmolVLAConfig& c = f.policy->config();
    AttentionCaptureSpec spec;
    spec.max_chunks = 1;
    spec.vlm = capture == kOneVlmLayer;
    spec.expert = capture == kOneExpertLayer;
    spec.vlm_layers = {c.num_vlm_layers / 2};
    for (int j = c.num_expert_layers - 1; j >= 0 && spec.expert_layers.empty(); --j)
      if (c.expert_layer_is_cross(j)) spec.expert_layers = {j};
    attention = std::make_unique<AttentionRecorder>(*f.policy, spec);
  }
  std::unique_ptr<ActivationPatcher> patcher;
  if (capture == kPatcherOff) {
    // resid.post of every expert layer and of every VLM layer but the last (a hook there would make the forward pass
    // compute that layer's unused output), hooked and off.
    std::vector<PatchSpec> specs = layer_patch_specs(*f.policy, {"vlm", "expert"});
    specs.erase(specs.begin() + f.policy->config().num_vlm_layers - 1);
    patcher = std::make_unique<ActivationPatcher>(*f.policy, specs);
  } else if (capture == kPatching) {
    // The prompt-patching study's commonest patch: one VLM layer's concept-word row, from a recorded source pass.
    patcher = std::make_unique<ActivationPatcher>(*f.policy,
                                                  std::vector<PatchSpec>{parse_patch_spec("vlm.layers.1.resid.post@last_word")});
    PolicyInput source = f.input;
    source.task = "pick up the cube and lift it high";
    patcher->record();
    f.policy->predict_chunk(source, 0, 0);
    patcher->patch();
  }
  int64_t chunk = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.policy->predict_chunk(f.input, 0, chunk++));
    if (activations) activations->clear();
  }
  static const char* names[] = {"no capture",          "live-view attention",      "all attention",
                                "all MLP activations", "one VLM layer, all heads", "one expert layer, all heads",
                                "patcher hooked, off", "one row patched"};
  state.SetLabel(names[capture]);
}
BENCHMARK(BM_ShippedChunk)->DenseRange(0, 7)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

// One batched call for `batch` episodes (what --batch N does at a chunk boundary), fp32 or bf16: the time per episode's
// chunk, and the policy's FLOP rate as a fraction of the 1024² matmul peak measured in this run. args: batch,
// precision (0 fp32, 1 bf16).
void BM_ShippedBatch(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const bool bf16 = state.range(1) != 0;
  // fp32: the fixture's own policy; bf16 loaded once.
  static std::unique_ptr<Policy> bf16_policy;
  if (bf16 && !bf16_policy) {
    PolicyOptions o;
    o.threads = g_threads;
    o.precision = "bf16";
    bf16_policy = Policy::load(g_model, o);
  }
  const std::unique_ptr<Policy>& policy = bf16 ? bf16_policy : fixture().policy;
  const PolicyInput& input = fixture().input;
  const std::vector<const PolicyInput*> inputs(static_cast<size_t>(batch), &input);
  std::vector<Policy::NoiseId> noise;
  for (int64_t b = 0; b < batch; ++b) noise.push_back({static_cast<uint64_t>(b), 0});
  for (auto _ : state) benchmark::DoNotOptimize(policy->predict_chunks(inputs, noise));
  if (!g_profile.empty()) {
    torch::autograd::profiler::RecordProfile trace(g_profile + "." + std::to_string(batch) + (bf16 ? ".bf16" : ".fp32") +
                                                   ".json");
    benchmark::DoNotOptimize(policy->predict_chunks(inputs, noise));
  }
  const SmolVLAConfig& c = policy->config();
  const ChunkFlops fl = chunk_flops(c, static_cast<int>(input.images.size()), c.input_image_size().first,
                                    static_cast<int>(policy->layout().language_len));
  const double flops = (fl.prefix + fl.denoise) * static_cast<double>(batch);
  const double peak = bf16 ? g_peak_bf16 : g_peak_fp32;
  state.counters["ms_per_episode"] = benchmark::Counter(
      static_cast<double>(batch) / 1e3, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["peak_fraction"] =
      benchmark::Counter(flops / (peak * 1e9) * state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(bf16 ? "bf16" : "fp32") + " batch " + std::to_string(batch));
}
BENCHMARK(BM_ShippedBatch)
    ->ArgsProduct({{1, 4, 8, 16}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(2);

}  // namespace
}  // namespace vlascope

int main(int argc, char** argv) {
  vlascope::prepare_runtime(argv);
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::strncmp(argv[i], "--threads=", 10) == 0)
      vlascope::g_threads = std::atoi(argv[i] + 10);
    else if (std::strncmp(argv[i], "--model=", 8) == 0)
      vlascope::g_model = argv[i] + 8;
    else if (std::strncmp(argv[i], "--profile=", 10) == 0)
      vlascope::g_profile = argv[i] + 10;
    else
      rest.push_back(argv[i]);
  }
  at::set_num_threads(vlascope::g_threads);
  vlascope::g_peak_fp32 = vlascope::measure_matmul_peak(torch::kFloat32);
  vlascope::g_peak_bf16 = vlascope::measure_matmul_peak(torch::kBFloat16);
  std::printf("model %s; threads %d; 1024² matmul peak: fp32 %.0f GFLOP/s, bf16 %.0f GFLOP/s\n",
              vlascope::g_model.c_str(), vlascope::g_threads, vlascope::g_peak_fp32, vlascope::g_peak_bf16);
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  try {
    benchmark::RunSpecifiedBenchmarks();
  } catch (const vlascope::Error& e) {
    std::fprintf(stderr, "bench_shipped: %s\n", e.what());
    return 1;
  }
  benchmark::Shutdown();
  return 0;
}
