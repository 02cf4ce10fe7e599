#include "apps/policy_options.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "common/error.h"

namespace vlascope {

void add_policy_options(ArgParser& args) {
  args.required("checkpoint", "SmolVLA checkpoint directory (LeRobot layout)");
  add_policy_run_options(args);
}

void add_policy_run_options(ArgParser& args) {
  args.option("precision", "fp32", "fp32 or bf16");
  args.option("threads", "0", "intra-op threads (0 = all cores)");
  args.option("tokenizer", "", "tokenizer.json (default: the checkpoint's)");
  args.option("action-steps", "0", "actions executed from each chunk before the policy runs again (0 = the\n"
              "checkpoint's n_action_steps)");
  args.option("camera-map", "", "checkpoint camera → robot camera, e.g. camera1=scene,camera2=wrist");
}

void add_episode_options(ArgParser& args) {
  args.option("task", "pick up the cube and lift it", "instruction given to the policy");
  args.option("max-seconds", "15", "episode length limit");
  args.option("after-success", "3", "seconds to run on after success (sim: the lift must finish), < 0 = to the limit");
}

void add_steering_options(ArgParser& args) {
  args.option("steer", "", "neuron sets to switch on during the rollouts, e.g. high or high,fast (needs --sets)");
  args.option("sets", "", "neuron_sets.json (vlascope neurons)");
  args.option("alpha", "4", "with --steer: the value α");
  args.option("op", "set", "with --steer: set (x := α), add (x += α) or scale (x *= α)");
  args.option("sae", "", "a sparse autoencoder (vlascope sae train) spliced into the policy at its hook point");
  args.option("sae-mode", "reconstruct",
              "with --sae: reconstruct (its rows replaced by the SAE's reconstruction), mean (by the training\n"
              "rows' mean: the reference), or clamp:F=V,F=V (features F held at activation V, the SAE's error kept);\n"
              "@ROWS keeps it to some of the SAE's kinds of row, e.g. clamp:701=2@state");
}

std::unique_ptr<Policy> load_policy(const ArgParser& args) { return load_policy(args, args.get("checkpoint")); }

std::unique_ptr<Policy> load_policy(const ArgParser& args, const std::string& checkpoint) {
  PolicyOptions o;
  o.precision = args.get("precision");
  o.threads = args.get_int("threads");
  o.tokenizer = args.get("tokenizer");
  o.n_action_steps = args.get_int("action-steps");
  require(o.n_action_steps >= 0, "--action-steps must be ≥ 0");
  if (!args.get("camera-map").empty()) o.camera_map = parse_camera_map(args.get("camera-map"));
  return Policy::load(checkpoint, o);
}

RolloutOptions rollout_options(const ArgParser& args) {
  RolloutOptions o;
  o.task = args.get("task");
  o.max_seconds = args.get_double("max-seconds");
  require(o.max_seconds > 0 && std::isfinite(o.max_seconds), "--max-seconds must be > 0, got " + args.get("max-seconds"));
  o.stop_after_success_s = args.get_double("after-success");
  require(std::isfinite(o.stop_after_success_s), "--after-success must be a number of seconds, got " +
                                                     args.get("after-success"));
  return o;
}

void add_batch_options(ArgParser& args) {
  args.option("batch", "1", "episodes run together in lock step, one batched policy call for all whose action queue\n"
              "ran out at the same tick (simulation only; results reproduce for the same --batch)");
  args.option("sim-threads", "0", "threads stepping the --batch simulators (0 = all cores, at most --batch)");
}

BatchOptions batch_options(const ArgParser& args) {
  BatchOptions b;
  b.lanes = args.get_int("batch");
  require(b.lanes >= 1 && b.lanes <= 256, "--batch must be 1..256, got " + args.get("batch"));
  require(b.lanes == 1 || args.get("robot") == "sim",
          "--batch " + args.get("batch") + " needs --robot sim: one real arm runs one episode at a time");
  b.threads = args.get_int("sim-threads");
  require(b.threads >= 0, "--sim-threads must be ≥ 0");
  if (b.threads == 0) b.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  b.threads = std::min(b.threads, b.lanes);
  return b;
}

std::vector<Intervention> steering_interventions(const ArgParser& args) {
  std::vector<Intervention> interventions;
  for (const std::string& name : args.get_list("steer")) {
    Intervention iv;
    iv.set = name;
    iv.op = parse_intervention_op(args.get("op"));
    iv.alpha = args.get_double("alpha");
    interventions.push_back(iv);
    std::printf("steering: %s\n", iv.describe().c_str());
  }
  return interventions;
}

std::vector<NeuronSet> steering_sets(const ArgParser& args) {
  if (args.get_list("steer").empty()) return {};
  require(!args.get("sets").empty(), "--steer needs --sets (a neuron_sets.json)");
  return read_neuron_sets(args.get("sets"));
}

std::unique_ptr<SplicedSae> sae_splice_from(const ArgParser& args, Policy& policy) {
  if (args.get("sae").empty()) return nullptr;
  auto out = std::make_unique<SplicedSae>();
  out->sae = Sae::load(args.get("sae"));
  out->splice = std::make_unique<SaeSplice>(policy, out->sae);
  const std::string mode = args.get("sae-mode");
  apply_splice_setting(*out->splice, parse_splice_setting(mode, "--sae-mode"));
  std::printf("sae: %s spliced in at %s (%s)\n", args.get("sae").c_str(), out->sae.config().hook.c_str(), mode.c_str());
  return out;
}

}  // namespace vlascope
