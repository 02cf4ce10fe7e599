// The options of every command that runs a checkpoint: which checkpoint and how to run it, the episodes, and
// neuron-set or SAE steering, with one spelling and one default everywhere.
//
//   ArgParser args(...);
//   add_policy_options(args);
//   add_episode_options(args);
//   if (!args.parse(argc, argv)) return 0;
//   std::unique_ptr<Policy> policy = load_policy(args);
//   RolloutResult r = run_rollout(robot, *policy, seed, rollout_options(args));
#pragma once

#include <memory>
#include <vector>

#include "common/cli.h"
#include "interp/neuron_set.h"
#include "interp/rollout.h"
#include "interp/sae.h"
#include "policy/policy.h"

namespace vlascope {

// --checkpoint and how to run it: --precision, --threads, --tokenizer, --action-steps, --camera-map.
void add_policy_options(ArgParser& args);
// The same without --checkpoint, for commands that name their checkpoints otherwise (compare-attention's --a, --b).
void add_policy_run_options(ArgParser& args);
std::unique_ptr<Policy> load_policy(const ArgParser& args);
std::unique_ptr<Policy> load_policy(const ArgParser& args, const std::string& checkpoint);
// The episodes: --task, --max-seconds, --after-success.
void add_episode_options(ArgParser& args);
RolloutOptions rollout_options(const ArgParser& args);
// What a closed-loop command switches on: --steer, --sets, --alpha, --op (neuron sets), --sae, --sae-mode.
void add_steering_options(ArgParser& args);

// --batch N (episodes stepped together, one batched policy call per tick) and --sim-threads T (threads stepping their
// simulators). Many episodes at once need the simulator: batch_options() names --batch when --robot is the real arm.
void add_batch_options(ArgParser& args);
BatchOptions batch_options(const ArgParser& args);

// --steer / --alpha / --op as interventions (empty without --steer), and the neuron sets they name (--sets,
// required with --steer). The interventions are printed, so a log shows what was switched on.
std::vector<Intervention> steering_interventions(const ArgParser& args);
std::vector<NeuronSet> steering_sets(const ArgParser& args);

// --sae / --sae-mode: the SAE and its splice, hooked while the returned object lives (nullptr without --sae).
struct SplicedSae {
  Sae sae;
  std::unique_ptr<SaeSplice> splice;  // after sae: unhooked first
};
std::unique_ptr<SplicedSae> sae_splice_from(const ArgParser& args, Policy& policy);

}  // namespace vlascope
