#include "interp/steer_experiment.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <random>

#include "common/error.h"
#include "common/progress.h"
#include "interp/capture.h"
#include "dataset/dataset.h"
#include "interp/neurons.h"
#include "interp/patching.h"
#include "interp/sae.h"
#include "policy/policy.h"

namespace vlascope {

SteerMetrics steer_metrics(const RolloutResult& r, const LiftSegment& lift) {
  SteerMetrics m;
  m.success = r.success;
  m.lifted = lift.status == LiftStatus::kLifted;
  m.length = r.success ? r.success_time : r.seconds;
  if (m.lifted) {
    m.mean_height = lift.mean_height;
    m.max_height = lift.max_height;
    m.mean_rise = lift.mean_rise;
    m.max_rise = lift.max_rise;
    m.step_displacement = lift.mean_step_displacement;
    m.speed = lift.mean_speed;
    m.lift_duration = lift.duration_s;
  }
  return m;
}

SteerRun make_steer_run(const SteerCondition& condition, std::vector<RolloutResult> rollouts) {
  SteerRun run;
  run.condition = condition;
  run.rollouts = std::move(rollouts);
  for (const RolloutResult& r : run.rollouts) {
    const LiftSegment lift = find_lift_segment(r.ee_trajectory());
    run.metrics.push_back(steer_metrics(r, lift));
    run.lifts.push_back(lift);
  }
  return run;
}

bool is_ablation_mode(const std::string& mode) { return mode == "zero" || mode == "mean" || mode == "resample"; }

namespace {
// Up to n frames of the dataset's successful episodes, strided evenly over all of their frames.
std::vector<std::pair<int, int>> ablation_frames(const DatasetReader& dataset, const std::string& name, int n) {
  std::vector<std::pair<int, int>> all;
  for (int e = 0; e < dataset.num_episodes(); ++e)
    if (dataset.info(e).success)
      for (int i = 0; i < dataset.num_frames(e); ++i) all.push_back({e, i});
  require(!all.empty(), "ablation: the dataset " + name + " has no successful episode");
  require(n >= 1, "ablation: needs at least one frame (got " + std::to_string(n) + ")");
  std::vector<std::pair<int, int>> out;
  const size_t count = std::min(all.size(), static_cast<size_t>(n));
  for (size_t k = 0; k < count; ++k) out.push_back(all[k * all.size() / count]);
  return out;
}
}  // namespace

void run_steer_jobs(const RobotFactory& robots, Policy& policy, const std::vector<NeuronSet>& sets,
                    const std::vector<SteerCondition>& conditions, const std::vector<SteerJob>& jobs, uint64_t seed0,
                    const RolloutOptions& options, const BatchOptions& batch, const SteerJobDone& done,
                    const BeforeRollout& before_rollout) {
  require(!before_rollout || batch.lanes == 1, "steering: a step before each rollout needs one rollout at a time");
  ProgressBar bar("steer", static_cast<int64_t>(jobs.size()), "rollouts");
  for (size_t c = 0; c < conditions.size(); ++c) {
    std::vector<SteerJob> mine;
    std::vector<uint64_t> seeds;
    for (const SteerJob& job : jobs)
      if (job.condition == static_cast<int>(c)) {
        mine.push_back(job);
        seeds.push_back(seed0 + static_cast<uint64_t>(job.index));
      }
    if (mine.empty()) continue;
    const SteerCondition& condition = conditions[c];
    Steering steering(policy.model(), sets, condition.interventions);
    RolloutOptions o = options;
    if (!condition.task.empty()) o.task = condition.task;
    int successes = 0, finished = 0;
    RolloutCallbacks callbacks;
    if (before_rollout)
      callbacks.start = [&](int i) {
        before_rollout(condition, mine[static_cast<size_t>(i)].index);
        return RolloutObserver{};
      };
    // Closed loop: one controller per episode, α set for each row of every policy call.
    std::map<int, AlphaController> controllers;  // episode (index into mine) → its controller
    std::map<int, double> last_call;             // episode → time of its previous call (s)
    if (condition.closed_loop)
      for (const Intervention& iv : condition.interventions)
        require(iv.op == InterventionOp::kAdd, "closed-loop steering of '" + condition.name +
                                                   "' needs op add (α 0 must mean no push; '" + iv.set + "' is op " +
                                                   intervention_op_name(iv.op) + ")");
    // An SAE spliced in for the whole condition (declared before its splice, which unhooks first).
    std::unique_ptr<Sae> sae;
    std::unique_ptr<SaeSplice> splice;
    if (condition.sae) {
      require(condition.interventions.empty() && !condition.closed_loop && !condition.patch,
              "SAE condition '" + condition.name + "': the splice does not combine with steering or patching");
      sae = std::make_unique<Sae>(Sae::load(condition.sae->path));
      splice = std::make_unique<SaeSplice>(policy, *sae);
      apply_splice_setting(*splice, parse_splice_setting(condition.sae->setting, "condition '" + condition.name + "'"));
    }
    // Patching: before every call a source pass on the same noise — the same observation under the source prompt, a
    // dataset frame drawn per call (resample), or a demonstration at the same time of its episode — is recorded, then
    // written into the call (or, the control, a push of the same size per row); ablations without a source.
    std::unique_ptr<ActivationPatcher> patcher;
    std::unique_ptr<DatasetReader> dataset;
    std::vector<std::pair<int, int>> frames;  // (episode, frame) of the mean or the resampled values
    std::vector<int> demonstrations;          // episode mode: the dataset's successful source-variant episodes
    std::function<PolicyInput(const RolloutCallbacks::CallRow&)> source_of;
    if (condition.patch) {
      const PatchCondition& pc = *condition.patch;
      require(condition.interventions.empty() && !condition.closed_loop,
              "patched condition '" + condition.name + "': patching does not combine with steering");
      std::vector<PatchSpec> specs;
      for (const std::string& text : pc.specs) specs.push_back(parse_patch_spec(text));
      patcher = std::make_unique<ActivationPatcher>(policy, specs);
      const bool from_episode = pc.mode == "episode" || pc.mode == "episode-random";
      require(pc.mode == "patch" || pc.mode == "random" || from_episode || is_ablation_mode(pc.mode),
              "condition '" + condition.name + "': unknown patch mode '" + pc.mode +
                  "' (patch, random, episode, episode-random, zero, mean, resample)");
      if (pc.mode == "mean" || pc.mode == "resample" || from_episode) {
        require(!pc.dataset.empty(), "condition '" + condition.name + "': " + pc.mode + " needs a dataset");
        dataset = std::make_unique<DatasetReader>(pc.dataset);
      }
      if (pc.mode == "mean" || pc.mode == "resample") frames = ablation_frames(*dataset, pc.dataset, pc.frames);
      if (pc.mode == "zero") patcher->zero();
      if (pc.mode == "mean") {
        patcher->record_mean();
        for (size_t f = 0; f < frames.size(); ++f)
          policy.predict_chunk(frame_input(dataset->frame(frames[f].first, frames[f].second), o.task), 0,
                               static_cast<int64_t>(f));
        patcher->mean();
      }
      if (pc.mode == "patch" || pc.mode == "random")
        source_of = [&](const RolloutCallbacks::CallRow& row) {
          PolicyInput in = *row.input;
          in.task = pc.source_task;
          return in;
        };
      if (pc.mode == "resample")
        source_of = [&](const RolloutCallbacks::CallRow& row) {
          const uint64_t draw = row.noise.seed * 1000003ULL + static_cast<uint64_t>(row.noise.chunk);
          const auto& [e, i] = frames[static_cast<size_t>(std::mt19937_64(draw)() % frames.size())];
          return frame_input(dataset->frame(e, i), o.task);
        };
      if (from_episode) {
        demonstrations = successful_variant_episodes(*dataset, pc.source_variant);
        require(!demonstrations.empty(), "condition '" + condition.name + "': the dataset " + pc.dataset +
                                             " has no successful '" + pc.source_variant + "' episode");
        // Rollout k reads demonstration k (cycling): the same whichever rollouts share a call, shard or resume.
        source_of = [&](const RolloutCallbacks::CallRow& row) {
          const size_t k = static_cast<size_t>(mine[static_cast<size_t>(row.episode)].index);
          const int e = demonstrations[k % demonstrations.size()];
          const long i = std::lround(row.now->time * dataset->info(e).fps);
          return frame_input(dataset->frame(e, static_cast<int>(std::clamp(i, 0L, dataset->num_frames(e) - 1L))),
                             o.task);
        };
      }
    }
    if (source_of) {
      const bool random = condition.patch->mode == "random" || condition.patch->mode == "episode-random";
      callbacks.before_call = [&, random](std::vector<RolloutCallbacks::CallRow>& rows) {
        std::vector<PolicyInput> source;
        std::vector<const PolicyInput*> inputs;
        std::vector<Policy::NoiseId> noise;
        for (const RolloutCallbacks::CallRow& row : rows) {
          source.push_back(source_of(row));
          noise.push_back(row.noise);
        }
        for (const PolicyInput& in : source) inputs.push_back(&in);
        patcher->record();
        policy.predict_chunks(inputs, noise);
        if (random) {
          // Each row's push drawn from its own noise id: the same whichever episodes share the call.
          std::vector<uint64_t> seeds;
          for (const RolloutCallbacks::CallRow& row : rows)
            seeds.push_back(row.noise.seed * 1000003ULL + static_cast<uint64_t>(row.noise.chunk));
          patcher->reseed_rows(seeds);
          patcher->random();
        } else {
          patcher->patch();
        }
      };
    }
    if (condition.closed_loop)
      callbacks.before_call = [&](std::vector<RolloutCallbacks::CallRow>& rows) {
        const ClosedLoop& loop = *condition.closed_loop;
        std::vector<float> gains;
        for (RolloutCallbacks::CallRow& row : rows) {
          const auto it = controllers.try_emplace(row.episode, loop.controller, loop.target.value).first;
          const std::optional<double> measured = measure_concept(loop.target.concept, *row.steps, *row.now);
          if (measured) {
            const auto last = last_call.find(row.episode);
            row.steer_alpha =
                it->second.update(*measured, last == last_call.end() ? 0.0 : row.now->time - last->second);
            last_call[row.episode] = row.now->time;
          }
          gains.push_back(static_cast<float>(row.steer_alpha));
        }
        steering.set_row_gains(std::move(gains));
      };
    callbacks.done = [&](int i, const RolloutResult& r) {
      controllers.erase(i);
      last_call.erase(i);
      if (done) done(mine[static_cast<size_t>(i)], r);
      successes += r.success;
      bar.set_status(condition.name + " success " + std::to_string(successes) + "/" + std::to_string(++finished));
      bar.advance();
    };
    run_rollouts(robots, policy, seeds, o, batch, callbacks);
  }
  bar.finish();
}

std::vector<SteerRun> run_steer_conditions(const RobotFactory& robots, Policy& policy,
                                           const std::vector<NeuronSet>& sets,
                                           const std::vector<SteerCondition>& conditions, int n, uint64_t seed0,
                                           const RolloutOptions& options, const BatchOptions& batch,
                                           const BeforeRollout& before_rollout) {
  std::vector<SteerJob> jobs;
  for (int c = 0; c < static_cast<int>(conditions.size()); ++c)
    for (int k = 0; k < n; ++k) jobs.push_back({c, k});
  std::vector<std::vector<RolloutResult>> rollouts(conditions.size(), std::vector<RolloutResult>(static_cast<size_t>(n)));
  run_steer_jobs(
      robots, policy, sets, conditions, jobs, seed0, options, batch,
      [&](const SteerJob& job, const RolloutResult& r) {
        rollouts[static_cast<size_t>(job.condition)][static_cast<size_t>(job.index)] = r;
      },
      before_rollout);
  std::vector<SteerRun> runs;
  for (size_t c = 0; c < conditions.size(); ++c) runs.push_back(make_steer_run(conditions[c], std::move(rollouts[c])));
  return runs;
}

std::vector<SteerRun> run_steer_conditions(Robot& robot, Policy& policy, const std::vector<NeuronSet>& sets,
                                           const std::vector<SteerCondition>& conditions, int n, uint64_t seed0,
                                           const RolloutOptions& options, const BeforeRollout& before_rollout) {
  const std::shared_ptr<Robot> borrowed(std::shared_ptr<Robot>{}, &robot);
  return run_steer_conditions([&](int) { return borrowed; }, policy, sets, conditions, n, seed0, options, BatchOptions{},
                              before_rollout);
}

SteerComparison compare_runs(const SteerRun& a, const SteerRun& b, const std::string& metric, const MetricGetter& get,
                             bool needs_lift) {
  SteerComparison c;
  c.metric = metric;
  c.a = a.condition.name;
  c.b = b.condition.name;
  std::vector<double> x, y;
  for (const SteerMetrics& m : a.metrics)
    if (!needs_lift || m.lifted) x.push_back(get(m));
  for (const SteerMetrics& m : b.metrics)
    if (!needs_lift || m.lifted) y.push_back(get(m));
  if (x.size() < 2 || y.size() < 2) return c;
  c.summary_a = summarize(x);
  c.summary_b = summarize(y);
  if (sample_sd(x) == 0 && sample_sd(y) == 0) return c;
  c.welch = welch_t_test(x, y);
  c.mann_whitney = mann_whitney_u(x, y);
  c.hedges_g = hedges_g(x, y);
  c.valid = true;
  return c;
}

}  // namespace vlascope
