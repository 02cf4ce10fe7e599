#include "policy/parity.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "policy/checkpoint.h"
#include "policy/safetensors.h"

namespace vlascope {

bool ParityReport::ok() const {
  return !rows.empty() && std::all_of(rows.begin(), rows.end(), [](const ParityRow& r) { return r.ok(); });
}

ParityReport run_parity(const ParityFiles& files, double tolerance, const std::string& precision, int threads) {
  if (threads > 0) at::set_num_threads(threads);
  const SmolVLAConfig config = read_lerobot_config(files.config, files.vlm_config);
  SmolVLA model(config, parse_precision(precision));
  ParityReport report;
  report.parameters = load_weights(model, files.weights).parameters;
  const SafetensorsFile io(files.io);
  torch::NoGradGuard no_grad;

  auto compare = [&](const std::string& name, const torch::Tensor& ours, double tol) {
    const torch::Tensor ref = read_tensor(io, name);
    require(ref.sizes() == ours.sizes(), files.io + ": tensor " + name + " has shape " + c10::str(ref.sizes()) +
                                             " but vlascope computed " + c10::str(ours.sizes()));
    ParityRow row;
    row.name = name;
    row.tolerance = tol;
    const torch::Tensor a = ours.detach().to(torch::kCPU, torch::kFloat64), b = ref.to(torch::kFloat64);
    row.max_abs_error = ref.numel() ? (a - b).abs().max().item<double>() : 0.0;
    row.max_abs_reference = ref.numel() ? b.abs().max().item<double>() : 0.0;
    report.rows.push_back(row);
  };

  ModelInputs in;
  for (int c = 0; io.find("images." + std::to_string(c)); ++c) {
    in.images.push_back(read_tensor(io, "images." + std::to_string(c)));
    in.image_masks.push_back(read_tensor(io, "img_masks." + std::to_string(c)));
  }
  in.lang_tokens = read_tensor(io, "lang_tokens");
  in.lang_masks = read_tensor(io, "lang_masks");
  in.state = read_tensor(io, "state");
  const torch::Tensor noise = read_tensor(io, "noise");

  // Stage by stage: image embeddings, the prefix, the KV cache, every Euler step's velocity.
  const Prefix prefix = model.embed_prefix(in);
  for (size_t c = 0; c < prefix.image_embeddings.size(); ++c)
    if (io.find("trace.img_emb." + std::to_string(c)))
      compare("trace.img_emb." + std::to_string(c), prefix.image_embeddings[c], tolerance);
  if (io.find("prefix_embs")) compare("prefix_embs", prefix.embs, tolerance);
  if (io.find("prefix_pad_masks")) compare("prefix_pad_masks", prefix.pad_masks, 0);
  if (io.find("prefix_att_masks")) compare("prefix_att_masks", prefix.att_masks, 0);
  const PrefixCache cache = model.run_prefix(prefix);
  for (int i = 0; i < config.num_vlm_layers; ++i) {
    const std::string k = "kv_cache." + std::to_string(i);
    if (io.find(k + ".key_states")) compare(k + ".key_states", cache.keys[i], tolerance);
    if (io.find(k + ".value_states")) compare(k + ".value_states", cache.values[i], tolerance);
  }
  for (int s = 0; io.find("trace.v_t." + std::to_string(s)); ++s) {
    const std::string n = std::to_string(s);
    const torch::Tensor v = model.denoise_step(cache, read_tensor(io, "trace.x_t." + n),
                                               read_tensor(io, "trace.time." + n), s);
    compare("trace.v_t." + n, v, tolerance);
  }
  // The whole chunk, with the cache (inference) and without it (the training path at every step).
  compare("actions", model.sample_actions(in, noise, /*use_cache=*/true), tolerance);
  {
    const torch::Tensor uncached = model.sample_actions(in, noise, /*use_cache=*/false);
    compare("actions", uncached, tolerance);
    report.rows.back().name = "actions (uncached)";
  }
  // And with the inference weights Policy packs (transposed, fused q|k|v and gate|up), which the timing uses.
  model.pack_for_inference();
  compare("actions", model.sample_actions(in, noise, /*use_cache=*/true), tolerance);
  report.rows.back().name = "actions (packed)";

  std::vector<double> seconds;
  for (int run = 0; run < 7; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    (void)model.sample_actions(in, noise, true);
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(seconds.begin(), seconds.end());
  report.seconds_per_chunk = seconds[seconds.size() / 2];
  return report;
}

}  // namespace vlascope
