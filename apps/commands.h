// The subcommands of `vlascope`. Each lives in its own apps/cmd_<name>.cpp, takes the arguments after
// its name (argv[0] is the subcommand) and returns the process exit code. Errors are thrown as
// vlascope::Error and reported by main().
#pragma once

namespace vlascope {

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);
  // Runs the policy: main() first makes sure OpenBLAS uses its fast kernels (common/runtime.h), which may cost a
  // re-execution; commands that talk to devices in real time (twin, servo, calibrate, teleop) start without it.
  bool tensors = false;
};

int run_info(int argc, char** argv);
int run_dataset_info(int argc, char** argv);
int run_collect(int argc, char** argv);
int run_render(int argc, char** argv);
int run_replay(int argc, char** argv);
int run_sim_check(int argc, char** argv);
int run_twin(int argc, char** argv);
int run_calibrate(int argc, char** argv);
int run_teleop(int argc, char** argv);
int run_servo(int argc, char** argv);
int run_parity_command(int argc, char** argv);
int run_inspect(int argc, char** argv);
int run_pretrain_vlm(int argc, char** argv);
int run_train(int argc, char** argv);
int run_eval(int argc, char** argv);
int run_rollout_command(int argc, char** argv);
int run_merge(int argc, char** argv);
int run_export(int argc, char** argv);
int run_attention(int argc, char** argv);
int run_compare_attention(int argc, char** argv);
int run_neurons(int argc, char** argv);
int run_patch(int argc, char** argv);
int run_sae(int argc, char** argv);
int run_steer_experiment(int argc, char** argv);
int run_sim_vs_real(int argc, char** argv);
int run_report(int argc, char** argv);
int run_explore(int argc, char** argv);

inline constexpr Command kCommands[] = {
    {"info", "print versions, threads and build options", run_info},
    {"dataset-info", "summarise an episode dataset and validate every file", run_dataset_info},
    {"collect", "record scripted pick-and-lift demonstrations in simulation", run_collect},
    {"render", "PNG frames and an MP4 of an episode, with its segmentation", run_render},
    {"replay", "re-run recorded actions in simulation and report the deviation", run_replay},
    {"sim-check", "expert success, lift, duration and servo tracking per variant", run_sim_check},
    {"twin", "emulate the SO-100's six servos on a pseudo-terminal (no arm needed)", run_twin},
    {"calibrate", "calibrate an SO-100 arm the LeRobot way; saves LeRobot's calibration file", run_calibrate},
    {"teleop", "teleoperate an SO-100 follower with a leader arm", run_teleop},
    {"servo", "Feetech servo setup: scan, dump, read/write registers, set IDs", run_servo},
    {"parity", "compare vlascope's SmolVLA with a recorded LeRobot run, tensor by tensor", run_parity_command, true},
    {"inspect", "keys, dtypes, shapes and parameter count of a checkpoint or a preset", run_inspect, true},
    {"pretrain-vlm", "stage 1 of the small model: the VLM learns to caption rendered frames", run_pretrain_vlm, true},
    {"train", "stage 2: flow-matching training on demonstrations (frozen or unfrozen VLM)", run_train, true},
    {"eval", "seeded closed-loop rollouts of a checkpoint: success, lift, length, videos", run_eval, true},
    {"merge", "combine the shards of a sharded eval or steer-experiment (--shard K/N) into one report", run_merge, true},
    {"rollout", "one closed-loop episode of a checkpoint, with video and trajectory", run_rollout_command, true},
    {"export", "rewrite a checkpoint in LeRobot's bf16/fp32 layout (or all fp32)", run_export, true},
    {"attention", "attention figures, overlay video and metrics of a policy (rollout or recorded episode)",
     run_attention, true},
    {"compare-attention", "where two checkpoints look, side by side, on the same seeds", run_compare_attention,
     true},
    {"neurons", "concept neurons by the logit lens and by contrast; writes neuron sets", run_neurons, true},
    {"patch", "activation patching between two prompts, layer by layer, with a random control", run_patch, true},
    {"sae", "sparse autoencoders: capture activations, train, evaluate, label and steer features", run_sae, true},
    {"steer-experiment", "steering by neuron sets vs baseline, random and prompt controls, with statistics",
     run_steer_experiment, true},
    {"sim-vs-real", "one experiment in the twin and on the real arm: lift-aligned heights, table, differences",
     run_sim_vs_real, true},
    {"report", "index.html over the main job's results folder", run_report},
    {"explore", "explorer.html: scrub episodes with attention, search neurons and features, steering results", run_explore},
};

}  // namespace vlascope
