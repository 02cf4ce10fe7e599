// vlascope inspect: what a checkpoint file holds (keys, dtypes, shapes, parameter count), or what a preset's freshly
// built model holds — the same table either way, so a file can be checked against the architecture.
#include <cstdio>
#include <filesystem>
#include <map>

#include "apps/commands.h"
#include "common/cli.h"
#include "common/error.h"
#include "policy/safetensors.h"
#include "policy/smolvla.h"

namespace vlascope {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

int run_inspect(int argc, char** argv) {
  ArgParser args("vlascope inspect",
                 "Print the keys, dtypes, shapes and parameter count of a checkpoint (a model.safetensors file or a\n"
                 "checkpoint directory), or of a preset's freshly built model (--preset base|small).");
  args.option("preset", "", "base (smolvla_base) or small (vlascope's own model): list the built model's tensors");
  args.option("precision", "bf16", "with --preset: the dtypes of fp32 or bf16 (LeRobot's run-time mix)");
  args.flag("summary", "only the totals per dtype and per part of the model");
  args.positional("path", "model.safetensors or a checkpoint directory (ignored with --preset; give -)");
  if (!args.parse(argc, argv)) return 0;
  const bool summary = args.get_flag("summary");
  std::map<std::string, std::pair<int, int64_t>> by_dtype, by_part;
  int64_t total = 0;
  int count = 0;
  auto row = [&](const std::string& key, const std::string& dtype, const std::vector<int64_t>& shape,
                 const std::string& part) {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    total += n;
    ++count;
    by_dtype[dtype].first += 1, by_dtype[dtype].second += n;
    by_part[part].first += 1, by_part[part].second += n;
    if (!summary) std::printf("%-90s %-5s %s\n", key.c_str(), dtype.c_str(), shape_text(shape).c_str());
  };
  if (!args.get("preset").empty()) {
    SmolVLAConfig config = preset_config(args.get("preset"));
    const Precision precision = parse_precision(args.get("precision"));
    SmolVLAWeights w;
    for (const WeightEntry& e : weight_table(config, w)) {
      const bool bf16 = precision == Precision::kBFloat16 && e.lerobot_bf16;
      row(e.key, bf16 ? "BF16" : "F32", e.shape, weight_group_name(e.group));
    }
  } else {
    std::string path = args.get("path");
    if (std::filesystem::is_directory(path)) path = (std::filesystem::path(path) / "model.safetensors").string();
    const SafetensorsFile file(path);
    for (const TensorInfo& t : file.tensors()) {
      const std::string& k = t.name;
      std::string part = "other";
      if (k.find("vision_model") != std::string::npos) part = "vision";
      else if (k.find("connector") != std::string::npos) part = "connector";
      else if (k.find("embed_tokens") != std::string::npos) part = "embed_tokens";
      else if (k.find("text_model") != std::string::npos) part = "vlm";
      else if (k.find("lm_head") != std::string::npos) part = "lm_head";
      else if (k.find("lm_expert") != std::string::npos) part = "expert";
      else if (k.find("normalize") != std::string::npos) part = "normalisation buffers";
      else if (k.find("_proj") != std::string::npos) part = "projection";
      row(k, dtype_name(t.dtype), t.shape, part);
    }
  }
  std::printf("\n%d tensors, %lld parameters\n", count, static_cast<long long>(total));
  for (const auto& [d, v] : by_dtype)
    std::printf("  %-22s %4d tensors %14lld parameters\n", d.c_str(), v.first, static_cast<long long>(v.second));
  for (const auto& [p, v] : by_part)
    std::printf("  %-22s %4d tensors %14lld parameters\n", p.c_str(), v.first, static_cast<long long>(v.second));
  return 0;
}

}  // namespace vlascope
