// vlascope pretrain-vlm / vlascope train: the two training stages of vlascope's own SmolVLA models (policy/train.h).
#include <cstdio>

#include "apps/commands.h"
#include "common/cli.h"
#include "common/error.h"
#include "policy/train.h"

namespace vlascope {
namespace {

void common_options(ArgParser& args) {
  args.required("dataset", "episode dataset directory (vlascope collect); several, comma-separated, are read as one");
  args.required("out", "checkpoint directory to write (LeRobot layout; training log under <out>/training)");
  args.option("steps", "1000", "optimiser steps");
  args.option("batch", "16", "samples per step");
  args.option("seed", "0", "seed of the batch order, noise and time draws (and of a fresh model)");
  args.option("threads", "0", "intra-op threads (0 = all cores)");
  args.option("save-every", "250", "steps between resumable checkpoints");
  args.option("eval-every", "100", "steps between held-out evaluations");
  args.option("max-minutes", "0", "wall-clock budget; the run saves and stops when it is spent (0 = none)");
  args.option("holdout", "0.05", "fraction of episodes held out for evaluation");
  args.flag("resume", "continue from <out>/training/state");
  args.option("ema", "0", "decay of an exponential moving average of the weights, saved as the checkpoint (0 = off)");
  args.option("augment-shift", "0", "shift each training image by up to N pixels in x and y, edges repeated (0 = off)");
}

void read_common(const ArgParser& args, TrainCommon& o) {
  o.datasets = args.get_list("dataset");
  o.out = args.get("out");
  o.steps = args.get_int("steps");
  o.batch_size = args.get_int("batch");
  o.seed = static_cast<uint64_t>(args.get_int64("seed"));
  o.threads = args.get_int("threads");
  o.save_every = args.get_int("save-every");
  o.eval_every = args.get_int("eval-every");
  o.max_minutes = args.get_double("max-minutes");
  o.holdout = args.get_double("holdout");
  o.resume = args.get_flag("resume");
  o.ema = args.get_double("ema");
  o.augment_shift = args.get_int("augment-shift");
  require(o.augment_shift >= 0, "--augment-shift: " + args.get("augment-shift") + " must be ≥ 0 pixels");
  require(o.ema >= 0 && o.ema < 1, "--ema: " + args.get("ema") + " is not a decay in [0, 1)");
}

void print_result(const char* stage, const TrainResult& r, const char* metric) {
  std::printf("%s: %d steps in %.1f min (%.1f samples/s); loss %.4f → %.4f; held-out loss %.4f", stage, r.steps_done,
              r.seconds / 60, r.samples_per_second, r.first_loss, r.final_loss, r.eval_loss);
  if (metric && !r.eval_metric.empty()) std::printf("; %s %.3f", metric, r.eval_metric[0]);
  std::printf("%s\n", r.stopped_by_budget ? " (stopped by --max-minutes)" : "");
}

}  // namespace

int run_pretrain_vlm(int argc, char** argv) {
  ArgParser args("vlascope pretrain-vlm",
                 "Stage 1 of vlascope's own model: the VLM learns to caption rendered frames (where the cube is,\n"
                 "its colour, whether the gripper is high or low, open or closed, how the arm moves), so that its\n"
                 "vocabulary means something to the interpretability tools. Writes a checkpoint with tokenizer.json.");
  common_options(args);
  args.option("preset", "small", "model sizes of a fresh model (small, tiny)");
  args.option("init", "", "continue from this checkpoint instead of a fresh model");
  args.option("lr", "3e-4", "peak learning rate");
  args.option("warmup", "100", "warm-up steps");
  args.flag("canonical-captions", "one wording per caption (no synonyms); the same as --paraphrase-fraction 0");
  args.option("paraphrase-fraction", "1", "share of captions in a random wording with synonyms (the rest canonical)");
  args.flag("tie-embeddings", "a fresh model's language head is its input embedding (as SmolLM2-135M's)");
  if (!args.parse(argc, argv)) return 0;
  PretrainOptions o;
  read_common(args, o);
  o.preset = args.get("preset");
  o.init = args.get("init");
  o.lr = args.get_double("lr");
  o.warmup_steps = args.get_int("warmup");
  const double paraphrase_fraction = args.get_double("paraphrase-fraction");
  const bool canonical = args.get_flag("canonical-captions");
  require(!canonical || paraphrase_fraction == 1.0 || paraphrase_fraction == 0.0,
          "--canonical-captions means --paraphrase-fraction 0; give one of the two");
  o.paraphrase_fraction = canonical ? 0.0 : paraphrase_fraction;
  require(o.paraphrase_fraction >= 0 && o.paraphrase_fraction <= 1,
          "--paraphrase-fraction: " + args.get("paraphrase-fraction") + " is not a fraction in [0, 1]");
  o.tie_embeddings = args.get_flag("tie-embeddings");
  require(!o.tie_embeddings || o.init.empty(), "--tie-embeddings applies to a fresh model, not to --init");
  print_result("pretrain-vlm", pretrain_vlm(o), "held-out next-word accuracy");
  return 0;
}

int run_train(int argc, char** argv) {
  ArgParser args("vlascope train",
                 "Stage 2: flow-matching training of the action expert (and, unless --frozen-vlm, the VLM) on\n"
                 "demonstrations, with LeRobot's recipe (Beta(1.5,1) time, AdamW, warm-up + cosine, clip 10).");
  common_options(args);
  args.required("init", "checkpoint to start from (the output of pretrain-vlm, or any SmolVLA checkpoint)");
  args.flag("frozen-vlm", "train the expert and projections only (LeRobot's train_expert_only)");
  args.flag("train-vision", "also train the vision encoder (LeRobot freezes it by default)");
  args.option("lr", "0", "peak learning rate (0 = the checkpoint config's optimizer_lr)");
  args.option("warmup", "-1", "warm-up steps (-1 = the config's, scaled to the run length as LeRobot does)");
  args.option("instruction", "", "train every episode with this instruction (default: each episode's own)");
  args.option("instruction-mix", "0",
              "VLA pre-training: the fraction of samples whose instruction names the episode's variant in a\n"
              "paraphrase ('… lift it high', 'gently grab the block and lift it'); the rest get a wording of the\n"
              "neutral task (0 = each episode's own instruction)");
  if (!args.parse(argc, argv)) return 0;
  VlaOptions o;
  read_common(args, o);
  o.init = args.get("init");
  o.train_expert_only = args.get_flag("frozen-vlm");
  o.freeze_vision_encoder = !args.get_flag("train-vision");
  o.lr = args.get_double("lr");
  o.warmup_steps = args.get_int("warmup");
  o.instruction = args.get("instruction");
  o.mix.named_fraction = args.get_double("instruction-mix");
  require(o.mix.named_fraction >= 0 && o.mix.named_fraction <= 1,
          "--instruction-mix: " + args.get("instruction-mix") + " is not a fraction in [0, 1]");
  require(o.instruction.empty() || o.mix.named_fraction == 0, "--instruction and --instruction-mix exclude each other");
  print_result("train", train_vla(o), nullptr);
  return 0;
}

}  // namespace vlascope
