// Benchmarks of the digital twin: physics rate, the simulator's overhead over raw mj_step, rendering per camera and
// size (fast and nice), observations, IK, and expert-episode throughput.
//
//   ./build/benchmarks/bench_sim                          # everything (~1 min)
//   ./build/benchmarks/bench_sim --benchmark_filter=Render
// All rates are wall-clock (UseRealTime): OSMesa's llvmpipe rasterises on worker threads whose CPU time the main
// thread's clock would miss. On a shared machine, compare against the CPU column and re-run when idle.
#include <benchmark/benchmark.h>

#include "common/progress.h"
#include "sim/expert.h"
#include "sim/simulator.h"

namespace vlascope {
namespace {

SimOptions headless() {
  SimOptions o;
  o.cameras = {};
  return o;
}

// The joint targets of one expert episode, replayed in a loop, so both physics benchmarks simulate the same motion
// (reach, grasp, lift, hold) rather than an idle arm.
std::vector<JointVector> expert_targets(Simulator& sim) {
  sim.reset(0);
  ScriptedExpert expert(sim.kinematics(), sim.control_hz());
  return expert.plan(sim.joint_positions(), sim.cube_pose(), expert_variant("high"), 0).targets;
}

// Raw MuJoCo: write ctrl, mj_step × substeps.
void BM_PhysicsRawMjStep(benchmark::State& state) {
  Simulator sim(headless());
  const auto targets = expert_targets(sim);
  const mjModel* m = sim.model();
  std::shared_ptr<mjData> d(mj_makeData(m), mj_deleteData);
  auto restart = [&]() {
    sim.reset(0);
    mj_copyData(d.get(), m, sim.data());
  };
  restart();
  const int substeps = sim.substeps();
  size_t k = 0;
  for (auto _ : state) {
    if (k == targets.size()) {
      state.PauseTiming();
      restart();
      k = 0;
      state.ResumeTiming();
    }
    for (int j = 0; j < kNumJoints; ++j) d->ctrl[j] = targets[k][j];
    for (int i = 0; i < substeps; ++i) mj_step(m, d.get());
    ++k;
  }
  state.SetItemsProcessed(state.iterations() * substeps);  // physics steps
  state.counters["ticks/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PhysicsRawMjStep)->Unit(benchmark::kMicrosecond)->UseRealTime();

// The same motion through Simulator::act (clamping, kinematics refresh, grasp/success bookkeeping).
void BM_PhysicsSimulatorAct(benchmark::State& state) {
  Simulator sim(headless());
  const auto targets = expert_targets(sim);
  sim.reset(0);
  size_t k = 0;
  for (auto _ : state) {
    if (k == targets.size()) {
      state.PauseTiming();
      sim.reset(0);
      k = 0;
      state.ResumeTiming();
    }
    sim.act(targets[k++]);
  }
  state.SetItemsProcessed(state.iterations() * sim.substeps());
  state.counters["ticks/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PhysicsSimulatorAct)->Unit(benchmark::kMicrosecond)->UseRealTime();

// One camera frame: args = camera (0 scene, 1 wrist), size, quality (0 fast, 1 nice).
void BM_Render(benchmark::State& state) {
  Simulator sim(headless());
  sim.reset(0);
  const char* camera = state.range(0) == 0 ? "scene" : "wrist";
  const int size = static_cast<int>(state.range(1));
  RenderRequest request;
  request.quality = state.range(2) == 0 ? RenderQuality::kFast : RenderQuality::kNice;
  sim.render(camera, size, size, request);  // context creation outside the timing
  for (auto _ : state) benchmark::DoNotOptimize(sim.render(camera, size, size, request));
  state.counters["frames/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel(std::string(camera) + " " + std::to_string(size) + "² " + quality_name(*request.quality));
}
BENCHMARK(BM_Render)
    ->ArgsProduct({{0, 1}, {64, 128, 256}, {0, 1}})
    ->ArgNames({"camera", "size", "nice"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// RGB + depth + segmentation of one camera (what `vlascope collect --segmentation` and figures ask for).
void BM_RenderAllChannels(benchmark::State& state) {
  Simulator sim(headless());
  sim.reset(0);
  const int size = static_cast<int>(state.range(0));
  RenderRequest request;
  request.depth = request.segmentation = true;
  sim.render("scene", size, size, request);
  for (auto _ : state) benchmark::DoNotOptimize(sim.render("scene", size, size, request));
  state.counters["frames/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RenderAllChannels)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

// A full observation: joints, ee pose, scene + wrist cameras at 128² (fast), as a policy rollout sees it.
void BM_Observe(benchmark::State& state) {
  Simulator sim;  // defaults: scene + wrist at 128², fast
  sim.reset(0);
  sim.observe();
  for (auto _ : state) benchmark::DoNotOptimize(sim.observe());
  state.counters["observations/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Observe)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_InverseKinematics(benchmark::State& state) {
  Simulator sim(headless());
  ArmKinematics& kin = sim.kinematics();
  const JointVector home = sim.home_pose();
  IkTarget target;
  target.position = {0.05, -0.25, 0.05};
  target.point_offset = ScriptedExpert::kGraspPoint;
  for (auto _ : state) benchmark::DoNotOptimize(kin.inverse(target, home));
  state.counters["solves/s"] = benchmark::Counter(state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_InverseKinematics)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Expert episodes (variant "high"): arg 0 = physics only, arg 1 = with scene + wrist observations at 128² (what
// `vlascope collect` simulates and renders per episode, before writing).
void BM_ExpertEpisode(benchmark::State& state) {
  SimOptions o;
  if (state.range(0) == 0) o.cameras = {};
  Simulator sim(o);
  const ExpertParams params = expert_variant("high");
  uint64_t seed = 0;
  int64_t frames = 0;
  for (auto _ : state) {
    ExpertEpisode e = run_expert_episode(
        sim, params, seed++,
        [](int, const Observation& obs, const JointVector&, ExpertPhase) { benchmark::DoNotOptimize(obs); });
    frames += e.frames;
  }
  state.counters["episodes/min"] = benchmark::Counter(60.0 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["frames/s"] = benchmark::Counter(static_cast<double>(frames), benchmark::Counter::kIsRate);
  state.SetLabel(state.range(0) ? "2 cameras 128² fast" : "no rendering");
}
BENCHMARK(BM_ExpertEpisode)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->MinTime(3)->UseRealTime();

}  // namespace
}  // namespace vlascope

int main(int argc, char** argv) {
  vlascope::ProgressBar::set_enabled(false);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
