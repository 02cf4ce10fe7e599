// The steering experiment (interpretability.md §1.4–1.7): the same seeded episodes under several conditions —
// no intervention, neuron sets switched on, a random control set, a changed prompt — and per rollout the
// end-effector lift segment found the same way in sim and on the real arm (interp/lift_segment.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "interp/closed_loop.h"
#include "interp/lift_segment.h"
#include "interp/neuron_set.h"
#include "interp/rollout.h"
#include "interp/stats.h"

namespace vlascope {

// Closed-loop steering of a condition: its interventions' α is multiplied, per episode and policy call, by what a
// controller sets from the measured concept (interp/closed_loop.h); write the interventions with α 1 and op add
// (α 0, before the concept is measurable, must mean no push; run_steer_jobs refuses other ops).
struct ClosedLoop {
  ConceptTarget target;
  ControllerOptions controller;
};

// Activation patching and ablation in closed loop (interp/patching.h), by mode:
//   patch     at every policy call the episode's observation first runs under source_task with the specs'
//             activations recorded, then the episode's own call gets them written into the specs' rows;
//   random    the control: a push of the same size per row in a random direction instead;
//   episode   …recorded on a `source_variant` demonstration of `dataset` at the episode's own time instead (rollout k
//             reads the k-th successful such demonstration, cycling), under the experiment's instruction: another
//             episode's activations written into this one; episode-random is its control;
//   zero      the specs' rows are 0;
//   mean      …their mean over `frames` frames of `dataset` (successful episodes, the experiment's instruction);
//   resample  …the values of a frame of `dataset` drawn per call (from the call's noise id), same instruction.
struct PatchCondition {
  std::string mode = "patch";
  std::string source_task;         // patch, random
  std::vector<std::string> specs;  // as parse_patch_spec reads them
  std::string dataset;             // mean, resample, episode
  std::string source_variant;      // episode: the demonstrations' variant ("high", …)
  int frames = 64;                 // mean: frames averaged (every episode's frames, strided evenly)
};
bool is_ablation_mode(const std::string& mode);  // zero, mean, resample

// A sparse autoencoder spliced in at its hook point for a whole condition (interp/sae.h): the rows replaced by its
// reconstruction (does the policy still work on what the SAE keeps?), by the training rows' mean (the reference),
// or features clamped at a value along their decoder directions, the SAE's error kept.
struct SaeCondition {
  std::string path;     // the SAE's folder (vlascope sae train)
  std::string setting;  // reconstruct, mean or clamp:F=V,… (parse_splice_setting)
};

struct SteerCondition {
  std::string name;                         // "baseline", "high", "random", "prompt-high", …
  std::vector<Intervention> interventions;  // empty = none
  std::string task;                         // "" = the experiment's instruction
  std::optional<ClosedLoop> closed_loop;    // none = α as the interventions say (static)
  std::optional<PatchCondition> patch;      // none = no patching (a patched condition has no interventions)
  std::optional<SaeCondition> sae;          // none = no SAE (a spliced condition has no other intervention)
};

// What one rollout says about height and speed.
struct SteerMetrics {
  bool success = false, lifted = false;
  double mean_height = 0, max_height = 0;  // lift segment, absolute EE z (m)
  double mean_rise = 0, max_rise = 0;      // above the grasp height (m)
  double step_displacement = 0;            // lift segment, mean EE displacement per control step (m)
  double speed = 0;                        // lift segment path length / duration (m/s)
  double lift_duration = 0;                // s
  double length = 0;                       // episode length: to success, else to the end (s)
};
SteerMetrics steer_metrics(const RolloutResult& rollout, const LiftSegment& lift);

struct SteerRun {
  SteerCondition condition;
  std::vector<RolloutResult> rollouts;
  std::vector<LiftSegment> lifts;
  std::vector<SteerMetrics> metrics;
};

// before_rollout, if given, is called before each rollout with the condition and the rollout's index (e.g. to let a
// person put the cube back on the real arm); it needs one lane.
using BeforeRollout = std::function<void(const SteerCondition& condition, int index)>;

// One rollout of a steering experiment: conditions[condition] on seed seed0 + index.
struct SteerJob {
  int condition = 0;
  int index = 0;
};
// The metrics and lift segments of a condition's rollouts.
SteerRun make_steer_run(const SteerCondition& condition, std::vector<RolloutResult> rollouts);

// Runs the jobs, each condition's together (batched as `batch` says), under one progress bar for all of them;
// `done` is called on the calling thread the moment a rollout ends (a sharded run keeps it at once).
using SteerJobDone = std::function<void(const SteerJob& job, const RolloutResult& result)>;
void run_steer_jobs(const RobotFactory& robots, Policy& policy, const std::vector<NeuronSet>& sets,
                    const std::vector<SteerCondition>& conditions, const std::vector<SteerJob>& jobs, uint64_t seed0,
                    const RolloutOptions& options, const BatchOptions& batch, const SteerJobDone& done,
                    const BeforeRollout& before_rollout = {});

// Runs every condition on seeds seed0 … seed0 + n − 1 (identical across conditions), each condition's rollouts
// batched as `batch` says (interp/rollout.h: the robots are made per condition, lane l on its thread).
std::vector<SteerRun> run_steer_conditions(const RobotFactory& robots, Policy& policy,
                                           const std::vector<NeuronSet>& sets,
                                           const std::vector<SteerCondition>& conditions, int rollouts_per_condition,
                                           uint64_t seed0, const RolloutOptions& options, const BatchOptions& batch,
                                           const BeforeRollout& before_rollout = {});
// The same on one robot, one rollout at a time (the real arm).
std::vector<SteerRun> run_steer_conditions(Robot& robot, Policy& policy, const std::vector<NeuronSet>& sets,
                                           const std::vector<SteerCondition>& conditions, int rollouts_per_condition,
                                           uint64_t seed0, const RolloutOptions& options,
                                           const BeforeRollout& before_rollout = {});

// One metric of condition a vs b, over the rollouts where it is defined (lifted, for lift metrics).
struct SteerComparison {
  std::string metric, a, b;
  Summary summary_a, summary_b;
  TTestResult welch;         // difference a − b with its 95% CI and p
  MannWhitneyResult mann_whitney;
  double hedges_g = 0;
  bool valid = false;        // both sides had ≥ 2 values and were not both constant
};
using MetricGetter = std::function<double(const SteerMetrics&)>;
SteerComparison compare_runs(const SteerRun& a, const SteerRun& b, const std::string& metric, const MetricGetter& get,
                             bool needs_lift);

}  // namespace vlascope
