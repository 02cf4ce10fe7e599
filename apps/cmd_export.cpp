// vlascope export: rewrite a checkpoint directory in another dtype layout (LeRobot's bf16/fp32 mix, all fp32, or
// as loaded), keeping config, statistics and tokenizer. The shipped models are exported this way.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/commands.h"
#include "common/cli.h"
#include "common/error.h"
#include "policy/checkpoint.h"

namespace vlascope {

int run_export(int argc, char** argv) {
  ArgParser args("vlascope export",
                 "Rewrite a SmolVLA checkpoint directory: model.safetensors in another dtype layout, with its\n"
                 "config, normalisation statistics and tokenizer.json.");
  args.required("checkpoint", "checkpoint directory to read");
  args.required("out", "checkpoint directory to write");
  args.option("dtypes", "lerobot", "lerobot (bf16 backbone and expert, fp32 projections, as smolvla_base), fp32, as-is");
  if (!args.parse(argc, argv)) return 0;
  const std::string d = args.get("dtypes");
  SaveDtypes dtypes = SaveDtypes::kAsModel;
  if (d == "lerobot") dtypes = SaveDtypes::kLeRobot;
  else if (d == "fp32") dtypes = SaveDtypes::kFloat32;
  else require(d == "as-is", "--dtypes: lerobot, fp32 or as-is, not '" + d + "'");
  LoadedCheckpoint ckpt = load_checkpoint(args.get("checkpoint"));
  std::string tokenizer;
  const std::filesystem::path tok = std::filesystem::path(args.get("checkpoint")) / "tokenizer.json";
  if (std::filesystem::exists(tok)) {
    std::ifstream in(tok, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    tokenizer = ss.str();
  }
  save_checkpoint(args.get("out"), *ckpt.model, ckpt.stats, dtypes, tokenizer);
  std::printf("exported %d tensors (%lld parameters) to %s\n", ckpt.report.tensors,
              static_cast<long long>(ckpt.report.parameters), args.get("out").c_str());
  return 0;
}

}  // namespace vlascope
