// The shipped small model (models/smolvla_small_unfrozen) on a rendered observation of the digital twin: one
// action chunk (prefix + 10 denoising steps) without capture, with the live view's attention capture, with every
// attention map, with one layer's maps with all heads (a middle VLM layer, or the last expert cross layer: issue 5's
// "< 10% of inference time" target), with every MLP activation, with an activation patcher hooked on every layer but
// off (issue 16: an inactive intervention must cost nothing measurable), and with a patch written at every call —
// what interpretability costs per policy call.
// At 30 Hz with 10 action steps per chunk the control loop allows 333 ms per chunk.
//
//   ./build/benchmarks/bench_shipped [--threads=2] [--model=models/smolvla_small_frozen]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/runtime.h"
#include "hardware/units.h"
#include "interp/capture.h"
#include "interp/patching.h"
#include "policy/config.h"
#include "policy/policy.h"
#include "sim/simulator.h"

namespace vlascope {
namespace {

std::string g_model = std::string(VLASCOPE_SOURCE_DIR) + "/models/smolvla_small_unfrozen";
int g_threads = 2;

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
    else
      rest.push_back(argv[i]);
  }
  std::printf("model %s; threads %d\n", vlascope::g_model.c_str(), vlascope::g_threads);
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
