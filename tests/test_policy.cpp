// SmolVLA in libtorch: configuration files, the checkpoint layout (smolvla_base keys, bf16 + fp32, processor
// statistics, old-style buffers, torch.compile prefixes), errors on bad checkpoints, cached vs uncached sampling,
// hooks (capture, override, the skipped last layer), bf16 mode, and the Policy wrapper (preprocessing, queue).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/error.h"
#include "policy/checkpoint.h"
#include "policy/config.h"
#include "policy/policy.h"
#include "policy/preprocess.h"
#include "policy/safetensors.h"
#include "policy/smolvla.h"
#include "policy/tokenizer.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;
const std::string kParity = VLASCOPE_SOURCE_DIR "/../shared/parity/";

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) {
    path = fs::temp_directory_path() / ("vlascope_test_policy_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A small random model with every feature the real ones have: two cameras, GQA, joint and cross layers.
SmolVLAConfig test_config() {
  SmolVLAConfig c = smolvla_tiny_config();
  c.input_features = {{"observation.state", "STATE", {5}},
                      {"observation.images.scene", "VISUAL", {3, 64, 64}},
                      {"observation.images.wrist", "VISUAL", {3, 64, 64}}};
  c.output_features = {{"action", "ACTION", {5}}};
  c.resize_imgs_with_padding = {64, 64};
  c.n_action_steps = 4;
  return c;
}

ModelInputs random_inputs(const SmolVLAConfig& c, int batch, int words, uint64_t seed) {
  torch::manual_seed(seed);
  ModelInputs in;
  for (size_t k = 0; k < c.camera_keys().size(); ++k) {
    in.images.push_back(torch::rand({batch, 3, c.vision.image_size, c.vision.image_size}) * 2 - 1);
    in.image_masks.push_back(torch::ones({batch}, torch::kBool));
  }
  in.lang_tokens = torch::randint(0, c.text.vocab_size, {batch, words}, torch::kInt64);
  in.lang_masks = torch::ones({batch, words}, torch::kBool);
  in.state = torch::randn({batch, c.max_state_dim});
  return in;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// ------------------------------------------------------------------------------------------------------------
// Configuration and layout
// ------------------------------------------------------------------------------------------------------------

TEST(Config, SmolvlaBaseHasTheCheckpointsExactKeysAndShapes) {
  // shared/parity/smolvla_base_keys.txt lists LeRobot's own state dict at smolvla_base sizes.
  std::ifstream in(kParity + "smolvla_base_keys.txt");
  ASSERT_TRUE(in.good());
  std::map<std::string, std::string> expected;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key, dtype, shape;
    fields >> key >> dtype;
    std::getline(fields, shape);
    expected[key] = shape.substr(shape.find('['));
  }
  ASSERT_EQ(expected.size(), 500u);
  SmolVLAWeights w;
  const SmolVLAConfig c = smolvla_base_config();
  std::map<std::string, std::string> ours;
  for (const WeightEntry& e : weight_table(c, w)) {
    std::string s = "[";
    for (size_t i = 0; i < e.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(e.shape[i]);
    ours[e.key] = s + "]";
  }
  EXPECT_EQ(ours, expected);
  EXPECT_EQ(parameter_count(c), 450046176);
  EXPECT_EQ(c.expert_hidden(), 720);
  EXPECT_EQ(c.expert_intermediate(), 2048);
  EXPECT_EQ(c.tokens_per_image(), 64);
}

TEST(Config, LeRobotConfigFilesRoundTrip) {
  const SmolVLAConfig c =
      read_lerobot_config(kParity + "smolvla_tiny_config.json", kParity + "smolvla_tiny_vlm_config.json");
  EXPECT_EQ(c.chunk_size, 10);
  EXPECT_EQ(c.num_vlm_layers, 4);
  EXPECT_EQ(c.num_expert_layers, 4);  // 0 in the file: "as many as the VLM"
  EXPECT_EQ(c.text.hidden, 128);
  EXPECT_EQ(c.text.kv_heads, 2);
  EXPECT_EQ(c.vision.layer_norm_eps, 1e-6);  // absent from the file: SmolVLMVisionConfig's default
  EXPECT_EQ(c.scale_factor, 2);
  EXPECT_FALSE(c.pad_language_to_max_length);
  EXPECT_EQ(parameter_count(c), 1272264);

  TempDir dir("config");
  SmolVLAConfig mine = test_config();
  mine.vlm_model_name = "vlascope/test";
  write_lerobot_config(dir.path.string(), mine);
  const SmolVLAConfig back = read_lerobot_config(dir / "config.json");  // finds vlm_config.json beside it
  EXPECT_EQ(back.camera_keys(), mine.camera_keys());  // camera order survives
  EXPECT_EQ(back.state_dim(), 5);
  EXPECT_EQ(back.text.vocab_size, mine.text.vocab_size);
  EXPECT_EQ(back.vision.patch_size, mine.vision.patch_size);
  EXPECT_EQ(back.n_action_steps, 4);
  EXPECT_EQ(parameter_count(back), parameter_count(mine));
}

TEST(Config, BadConfigFilesNameTheFileAndField) {
  TempDir dir("badconfig");
  write_text(dir / "config.json", "{\"type\": \"smolvla\", \"chunk_size\": \"fifty\"");
  try {
    read_lerobot_config(dir / "config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
  write_text(dir / "config.json", "{\"type\": \"smolvla\", \"chunk_size\": \"fifty\"}");
  try {
    read_lerobot_config(dir / "config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chunk_size"), std::string::npos) << e.what();
  }
  // A number beyond a double's range: an Error naming the file, not an escaped library exception.
  write_text(dir / "config.json", "{\"type\": \"smolvla\", \"chunk_size\": 1e400}");
  try {
    read_lerobot_config(dir / "config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: not valid JSON"), std::string::npos) << e.what();
  }
  // Integers out of range or with a fraction (fuzz/fuzz_config found 4.8e84 heads: undefined behaviour in the JSON
  // library's conversion), in a field and inside a list.
  for (const char* field : {"\"chunk_size\": 4.8e84", "\"chunk_size\": 50.5", "\"chunk_size\": 9999999999",
                            "\"resize_imgs_with_padding\": [512, 1e30]"}) {
    write_text(dir / "config.json", std::string("{\"type\": \"smolvla\", ") + field + "}");
    try {
      read_lerobot_config(dir / "config.json");
      FAIL() << field;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("is not an integer in range"), std::string::npos) << e.what();
    }
  }
  write_text(dir / "config.json", "{\"type\": \"act\"}");
  EXPECT_THROW(read_lerobot_config(dir / "config.json"), Error);
  write_text(dir / "config.json", "{\"type\": \"smolvla\", \"vlm_model_name\": \"someone/unknown\"}");
  try {
    read_lerobot_config(dir / "config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vlm_config"), std::string::npos) << e.what();
  }
  // n_action_steps larger than the chunk.
  write_text(dir / "config.json", "{\"type\": \"smolvla\", \"n_action_steps\": 60}");
  EXPECT_THROW(read_lerobot_config(dir / "config.json"), Error);
}

// ------------------------------------------------------------------------------------------------------------
// Checkpoints
// ------------------------------------------------------------------------------------------------------------

NormalizationStats test_stats(int state_dim, int action_dim) {
  NormalizationStats s;
  for (int i = 0; i < state_dim; ++i) {
    s.features["observation.state"].mean.push_back(10.f * i);
    s.features["observation.state"].std.push_back(2.f + i);
  }
  for (int i = 0; i < action_dim; ++i) {
    s.features["action"].mean.push_back(-5.f * i);
    s.features["action"].std.push_back(3.f + i);
  }
  return s;
}

// Writes smolvla_base's real layout (bf16 + fp32 as LeRobot stores it, processor statistics) with random weights,
// then loads it back: every tensor arrives with the file's values, the dtypes are the expected mix.
TEST(Checkpoint, SmolvlaBaseLayoutRoundTripsWithMixedDtypes) {
  TempDir dir("base");
  SmolVLA model(smolvla_base_config(), Precision::kFloat32);
  {
    torch::NoGradGuard no_grad;
    int i = 0;
    for (WeightEntry& e : model.weight_table()) e.tensor->uniform_(-1, 1).add_(0.001 * i++);
  }
  save_checkpoint(dir.path.string(), model, test_stats(6, 6), SaveDtypes::kLeRobot);
  for (const char* f : {"config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json",
                        "policy_preprocessor_step_5_normalizer_processor.safetensors",
                        "policy_postprocessor_step_0_unnormalizer_processor.safetensors"})
    EXPECT_TRUE(fs::exists(dir.path / f)) << f;
  EXPECT_FALSE(fs::exists(dir.path / "vlm_config.json"));  // SmolVLM2-500M is known by name
  {
    const SafetensorsFile file(dir / "model.safetensors");
    std::map<DType, int> count;
    for (const TensorInfo& t : file.tensors()) count[t.dtype] += 1;
    EXPECT_EQ(count[DType::kBF16], 474);
    EXPECT_EQ(count[DType::kF32], 26);  // 10 projections + 16 re-created cross-attention k/v
    EXPECT_EQ(file.at("model.vlm_with_expert.lm_expert.layers.1.self_attn.k_proj.weight").dtype, DType::kF32);
    EXPECT_EQ(file.at("model.vlm_with_expert.lm_expert.layers.0.self_attn.k_proj.weight").dtype, DType::kBF16);
  }
  LoadedCheckpoint back = load_checkpoint(dir.path.string());
  EXPECT_EQ(back.report.tensors, 500);
  EXPECT_EQ(back.report.parameters, 450046176);
  EXPECT_EQ(back.report.dtypes["BF16"], 474);
  std::vector<WeightEntry> a = model.weight_table(), b = back.model->weight_table();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    // What the file holds is the original rounded to its storage dtype.
    const torch::Tensor stored = a[i].tensor->to(a[i].lerobot_bf16 ? torch::kBFloat16 : torch::kFloat32);
    ASSERT_TRUE(torch::equal(stored.to(torch::kFloat32), *b[i].tensor)) << a[i].key;
  }
  EXPECT_EQ(back.stats.features["observation.state"].std, test_stats(6, 6).features["observation.state"].std);
  EXPECT_EQ(back.stats.features["action"].mean, test_stats(6, 6).features["action"].mean);
}

// A tied language head: the caption logits read embed_tokens (a changed lm_head changes nothing), the checkpoint
// stores lm_head as a copy of the embedding and says so in vlm_config.json, and the loaded model is tied again.
TEST(Checkpoint, TiedEmbeddingsAreTheLanguageHeadAndRoundTrip) {
  TempDir dir("tied");
  SmolVLAConfig c = test_config();
  c.vlm_model_name = "vlascope/test-tied";  // not a known backbone: the sizes go to vlm_config.json
  c.text.tie_word_embeddings = true;
  SmolVLA model(c, Precision::kFloat32);
  model.init_random(3);
  const ModelInputs in = random_inputs(c, 2, 5, 4);
  torch::NoGradGuard no_grad;
  const torch::Tensor before = model.caption_logits(in.images, in.image_masks, in.lang_tokens, in.lang_masks);
  model.mutable_weights().lm_head.weight.add_(1.0);
  EXPECT_TRUE(torch::equal(before, model.caption_logits(in.images, in.image_masks, in.lang_tokens, in.lang_masks)));
  model.mutable_weights().embed_tokens.mul_(2.0);
  EXPECT_GT(max_diff(before, model.caption_logits(in.images, in.image_masks, in.lang_tokens, in.lang_masks)), 1e-3);

  save_checkpoint(dir.path.string(), model, test_stats(5, 5), SaveDtypes::kFloat32);
  {
    const SafetensorsFile file(dir / "model.safetensors");
    const TensorInfo& head = file.at("model.vlm_with_expert.vlm.lm_head.weight");
    const TensorInfo& embed = file.at("model.vlm_with_expert.vlm.model.text_model.embed_tokens.weight");
    ASSERT_EQ(head.shape, embed.shape);
    EXPECT_EQ(file.to_float(head), file.to_float(embed));
  }
  std::ifstream vlm(dir / "vlm_config.json");
  const std::string text((std::istreambuf_iterator<char>(vlm)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"tie_word_embeddings\": true"), std::string::npos) << text;
  LoadedCheckpoint back = load_checkpoint(dir.path.string());
  EXPECT_TRUE(back.model->config().text.tie_word_embeddings);
  EXPECT_TRUE(torch::equal(back.model->output_embedding(), model.weights().embed_tokens));
  EXPECT_TRUE(torch::equal(back.model->weights().lm_head.weight, model.weights().embed_tokens));

  // An untied model keeps its own head.
  SmolVLAConfig u = c;
  u.text.tie_word_embeddings = false;
  SmolVLA untied(u, Precision::kFloat32);
  untied.init_random(3);
  EXPECT_FALSE(torch::equal(untied.output_embedding(), untied.weights().embed_tokens));
}

TEST(Checkpoint, InitialWeightsOfATensorDoNotDependOnOtherTensorsSizes) {
  SmolVLAConfig small = test_config();
  SmolVLAConfig large = small;
  large.text.vocab_size = small.text.vocab_size + 200;  // a larger vocabulary, nothing else
  SmolVLA a(small, Precision::kFloat32), b(large, Precision::kFloat32), c(small, Precision::kFloat32);
  a.init_random(7);
  b.init_random(7);
  c.init_random(8);
  std::vector<WeightEntry> ta = a.weight_table(), tb = b.weight_table(), tc = c.weight_table();
  ASSERT_EQ(ta.size(), tb.size());
  int compared = 0, random = 0;
  for (size_t i = 0; i < ta.size(); ++i) {
    ASSERT_EQ(ta[i].key, tb[i].key);
    if (ta[i].shape != tb[i].shape) continue;  // the embedding and the language head
    EXPECT_TRUE(torch::equal(*ta[i].tensor, *tb[i].tensor)) << ta[i].key;
    ++compared;
    if (ta[i].init == WeightEntry::kNormal || ta[i].init == WeightEntry::kTorchLinear) {
      EXPECT_FALSE(torch::equal(*ta[i].tensor, *tc[i].tensor)) << ta[i].key << ": the seed must matter";
      ++random;
    }
  }
  EXPECT_EQ(compared + 2, static_cast<int>(ta.size()));
  EXPECT_GT(random, 10);
  // Two tensors of one shape draw different values.
  const torch::Tensor& q0 = a.weights().vision_layers.at(0).q.weight;  // [Dv, Dv] both
  const torch::Tensor& k0 = a.weights().vision_layers.at(0).k.weight;
  ASSERT_EQ(q0.sizes(), k0.sizes());
  EXPECT_FALSE(torch::equal(q0, k0));
}

// Writes a checkpoint file by hand from a weight table (optionally renaming keys or adding extras).
void write_weights(const std::string& path, SmolVLA& model,
                   const std::function<std::string(const std::string&)>& rename,
                   const std::map<std::string, std::vector<float>>& extra = {}) {
  SafetensorsWriter w;
  for (const WeightEntry& e : model.weight_table()) {
    const std::string key = rename(e.key);
    if (key.empty()) continue;
    const torch::Tensor t = e.tensor->contiguous();
    w.add(key, DType::kF32, t.sizes().vec(), t.data_ptr(), t.numel() * 4);
  }
  for (const auto& [key, values] : extra)
    w.add(key, DType::kF32, {static_cast<int64_t>(values.size())}, values.data(), values.size() * 4);
  w.write(path);
}

TEST(Checkpoint, OlderCheckpointsStripCompilePrefixAndKeepStatisticsInTheModelFile) {
  TempDir dir("old");
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(3);
  write_lerobot_config(dir.path.string(), c);
  write_weights(dir / "model.safetensors", model,
                [](const std::string& k) { return "model._orig_mod." + k.substr(6); },
                {{"normalize_inputs.buffer_observation_state.mean", {1, 2, 3, 4, 5}},
                 {"normalize_inputs.buffer_observation_state.std", {2, 2, 2, 2, 2}},
                 {"unnormalize_outputs.buffer_action.mean", {9, 8, 7, 6, 5}},
                 {"unnormalize_outputs.buffer_action.std", {1, 1, 1, 1, 1}}});
  LoadedCheckpoint back = load_checkpoint(dir.path.string());
  EXPECT_TRUE(back.report.stripped_orig_mod);
  EXPECT_EQ(back.report.ignored.size(), 4u);
  EXPECT_EQ(back.stats.features["observation.state"].mean, (std::vector<float>{1, 2, 3, 4, 5}));
  EXPECT_EQ(back.stats.features["action"].mean, (std::vector<float>{9, 8, 7, 6, 5}));
  std::vector<WeightEntry> a = model.weight_table(), b = back.model->weight_table();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_TRUE(torch::equal(*a[i].tensor, *b[i].tensor)) << a[i].key;
}

TEST(Checkpoint, MismatchedCheckpointsListEveryOffendingKey) {
  TempDir dir("mismatch");
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(1);
  const std::string missing = "model.vlm_with_expert.lm_expert.layers.2.mlp.up_proj.weight";
  write_weights(dir / "model.safetensors", model,
                [&](const std::string& k) { return k == missing ? std::string() : k; },
                {{"model.something_new.weight", {1, 2}}});
  SmolVLA other(c);
  try {
    load_weights(other, dir / "model.safetensors");
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(missing), std::string::npos) << m;
    EXPECT_NE(m.find("model.something_new.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("model.safetensors"), std::string::npos) << m;
  }
  // A model with another width: every tensor of that width is reported with both shapes.
  SmolVLAConfig wider = c;
  wider.text.intermediate = 384;
  SmolVLA wide(wider);
  try {
    load_weights(wide, dir / "model.safetensors");
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("mis-shaped"), std::string::npos) << m;
    EXPECT_NE(m.find("expected [384, 128], found [256, 128]"), std::string::npos) << m;
  }
}

TEST(Checkpoint, TruncatedOrGarbledModelFilesAreErrorsNamingTheFile) {
  TempDir dir("truncated");
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(1);
  save_checkpoint(dir.path.string(), model, test_stats(5, 5));
  const std::string path = dir / "model.safetensors";
  const auto size = fs::file_size(path);
  for (double fraction : {0.0, 0.001, 0.5, 0.999}) {
    fs::resize_file(path, static_cast<uintmax_t>(size * fraction));
    try {
      load_checkpoint(dir.path.string());
      FAIL() << fraction;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
    }
  }
  fs::remove(dir / "config.json");
  EXPECT_THROW(load_checkpoint(dir.path.string()), Error);
}

// ------------------------------------------------------------------------------------------------------------
// The forward pass
// ------------------------------------------------------------------------------------------------------------

TEST(Model, CachedAndUncachedSamplingAgreeWithPaddingAndMaskedCamera) {
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(7);
  ModelInputs in = random_inputs(c, 2, 9, 1);
  in.lang_masks[0].narrow(0, 6, 3).fill_(false);  // padded words in the first prompt
  in.image_masks[1][1] = false;                    // the second element has no wrist camera
  torch::NoGradGuard no_grad;
  const torch::Tensor noise = torch::randn({2, c.chunk_size, c.max_action_dim});
  const torch::Tensor cached = model.sample_actions(in, noise, true);
  const torch::Tensor uncached = model.sample_actions(in, noise, false);
  EXPECT_LT(max_diff(cached, uncached), 1e-4);
  EXPECT_GT(cached.abs().max().item<double>(), 0.1);
  // Padding is padding: changing the ids of padded words changes nothing.
  ModelInputs changed = in;
  changed.lang_tokens = in.lang_tokens.clone();
  changed.lang_tokens[0].narrow(0, 6, 3).fill_(3);
  EXPECT_LT(max_diff(model.sample_actions(changed, noise, true), cached), 1e-5);
  // …but a real word matters.
  changed.lang_tokens[0][0] = (in.lang_tokens[0][0].item<int64_t>() + 1) % c.text.vocab_size;
  EXPECT_GT(max_diff(model.sample_actions(changed, noise, true), cached), 1e-4);
  // The padded prompt alone and unpadded (as a policy runs it) gives the same actions, and so does the training
  // forward: mixed-length instruction batches train what inference runs.
  ModelInputs alone;
  for (size_t k = 0; k < in.images.size(); ++k) {
    alone.images.push_back(in.images[k].narrow(0, 0, 1));
    alone.image_masks.push_back(in.image_masks[k].narrow(0, 0, 1));
  }
  alone.lang_tokens = in.lang_tokens.narrow(0, 0, 1).narrow(1, 0, 6);
  alone.lang_masks = in.lang_masks.narrow(0, 0, 1).narrow(1, 0, 6);
  alone.state = in.state.narrow(0, 0, 1);
  EXPECT_LT(max_diff(model.sample_actions(alone, noise.narrow(0, 0, 1), true), cached.narrow(0, 0, 1)), 1e-5);
  const torch::Tensor actions = torch::randn({2, c.chunk_size, c.max_action_dim});
  const torch::Tensor time = torch::tensor({0.3f, 0.8f});
  const torch::Tensor batch_loss = model.flow_loss(in, actions, noise, time);
  const torch::Tensor alone_loss =
      model.flow_loss(alone, actions.narrow(0, 0, 1), noise.narrow(0, 0, 1), time.narrow(0, 0, 1));
  EXPECT_LT(max_diff(batch_loss.narrow(0, 0, 1), alone_loss), 1e-5);
}

TEST(Model, PackedInferenceWeightsGiveTheSameActionsAndGoStaleSafely) {
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(11);
  const ModelInputs in = random_inputs(c, 1, 5, 6);
  torch::NoGradGuard no_grad;
  const torch::Tensor noise = torch::randn({1, c.chunk_size, c.max_action_dim});
  const torch::Tensor plain = model.sample_actions(in, noise);
  model.pack_for_inference();
  EXPECT_TRUE(model.packed());
  EXPECT_LT(max_diff(model.sample_actions(in, noise), plain), 1e-5);
  // Mutable access drops the pack, so changed weights are used, never a stale copy.
  model.mutable_weights().action_out_proj.bias.add_(1.0);
  EXPECT_FALSE(model.packed());
  EXPECT_GT(max_diff(model.sample_actions(in, noise), plain), 0.5);
}

// Runs `body` with libtorch's intra-op threads set to `threads`, restoring them after.
template <typename Body>
void with_threads(int threads, Body body) {
  const int saved = at::get_num_threads();
  at::set_num_threads(threads);
  body();
  at::set_num_threads(saved);
}

// By size, a big phase takes libtorch's thread count (what --threads sets), never more: a --workers process given
// one thread beside another must not take a second core; a small phase takes one; an explicit setting wins.
TEST(Model, PhaseThreadsFollowLibtorchsCountForBigPhasesAndOneForSmallOnes) {
  with_threads(1, [] {
    EXPECT_EQ(phase_threads(-1, 5e9), 1);
    EXPECT_EQ(phase_threads(-1, 1e8), 1);
  });
  with_threads(2, [] {
    EXPECT_EQ(phase_threads(-1, 5e9), 2);
    EXPECT_EQ(phase_threads(-1, 1e8), 1);
    EXPECT_EQ(phase_threads(3, 1e8), 3);
    EXPECT_EQ(phase_threads(0, 5e9), 0);
  });
}

// In sample_actions each phase gets the threads its whole batch's work warrants, decided before the prefix phase
// changes libtorch's count: a batch whose prefix is under 1 GFLOP and whose denoising is over it runs the prefix on
// one thread and the denoising on two.
TEST(Model, EachPhaseOfABatchedCallGetsItsOwnThreads) {
  const SmolVLAConfig c = smolvla_tiny_config();
  SmolVLA model(c);
  model.init_random(2);
  const int words = 4;
  const ChunkFlops per_row = chunk_flops(c, static_cast<int>(c.camera_keys().size()), c.vision.image_size, words);
  if (per_row.prefix >= per_row.denoise) GTEST_SKIP() << "this config's prefix is not the smaller phase";
  const int batch = static_cast<int>(std::ceil(1e9 / per_row.denoise));
  ASSERT_LT(batch * per_row.prefix, 1e9);
  const ModelInputs in = random_inputs(c, batch, words, 5);
  with_threads(2, [&] {
    EXPECT_EQ(model.call_threads(in).prefix, 1);
    EXPECT_EQ(model.call_threads(in).denoise, 2);
    EXPECT_EQ(model.call_threads(in, /*use_cache=*/false).denoise, 1);  // one pass over both: the prefix's threads
    // One row of the same inputs is small in both phases.
    const ModelInputs one = random_inputs(c, 1, words, 5);
    EXPECT_EQ(model.call_threads(one).prefix, 1);
    EXPECT_EQ(model.call_threads(one).denoise, 1);
  });
  // Set explicitly, a phase keeps its count whatever its size.
  model.set_threads({2, 1});
  with_threads(2, [&] {
    EXPECT_EQ(model.call_threads(in).prefix, 2);
    EXPECT_EQ(model.call_threads(in).denoise, 1);
  });
}

TEST(Model, BlockedAttentionMatchesTheFullPatternPath) {
  // A vision tower big enough for the blocked path (2 images × 2 heads × 1024² logits, spread over two threads)
  // against the same tower with a pattern hook, which forces the full-pattern path; packed (fused q|k|v) and not,
  // under NoGrad and InferenceMode (the blocked path's worker threads must take the caller's mode).
  SmolVLAConfig c = test_config();
  c.vision = VisionConfig{32, 1, 2, 64, 16, 512, 1e-6};
  c.scale_factor = 4;
  SmolVLA model(c);
  model.init_random(2);
  torch::NoGradGuard no_grad;
  const torch::Tensor images = torch::rand({2, 3, 512, 512}) * 2 - 1;
  with_threads(2, [&] {
    const torch::Tensor blocked = model.embed_images(images);
    torch::Tensor packed, inference;
    model.pack_for_inference();
    packed = model.embed_images(images);
    {
      c10::InferenceMode mode;
      inference = model.embed_images(images);
    }
    int seen = 0;
    const HookHandle hook = model.hooks().add("vision.layers.0.attn.pattern", [&](const HookContext&, at::Tensor& p) {
      ++seen;
      EXPECT_EQ(p.sizes(), (std::vector<int64_t>{2, 2, 1024, 1024}));
    });
    const torch::Tensor full = model.embed_images(images);
    EXPECT_EQ(seen, 1);
    EXPECT_LT(max_diff(blocked, full), 1e-5);
    EXPECT_LT(max_diff(packed, full), 1e-5);
    EXPECT_LT(max_diff(inference, full), 1e-5);
  });
}

TEST(Model, BlockedAttentionWithPaddingAndGroupedHeadsMatchesTheFullPatternPath) {
  // The VLM's prefix attention takes the blocked path once a prefix is long enough (4 heads × 729² ≥ 2²¹ logits):
  // grouped KV heads, the prefix mask and left-padded words must come out as in the full-pattern path, which
  // no-op pattern hooks on every VLM layer force.
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(4);
  ModelInputs in = random_inputs(c, 2, 720, 8);
  in.lang_masks[1].narrow(0, 0, 100).fill_(false);
  const torch::Tensor noise = torch::randn({2, c.chunk_size, c.max_action_dim});
  c10::InferenceMode mode;
  with_threads(2, [&] {
    const torch::Tensor blocked = model.sample_actions(in, noise, true);
    int seen = 0;
    std::vector<HookHandle> hooks;
    for (int i = 0; i < c.num_vlm_layers; ++i)
      hooks.push_back(model.hooks().add("vlm.layers." + std::to_string(i) + ".attn.pattern",
                                        [&](const HookContext&, at::Tensor&) { ++seen; }));
    const torch::Tensor full = model.sample_actions(in, noise, true);
    EXPECT_GE(seen, c.num_vlm_layers - 1);  // the last layer's prefix rows are not computed
    EXPECT_LT(max_diff(blocked, full), 1e-5);
  });
}

TEST(Hooks, NamesParseAndUnknownNamesAreErrors) {
  EXPECT_EQ(parse_hook_point("vlm.layers.3.mlp.post").name(), "vlm.layers.3.mlp.post");
  EXPECT_EQ(parse_hook_point("expert.layers.11.attn.pattern").layer, 11);
  EXPECT_EQ(parse_hook_point("expert.velocity").site, HookSite::kVelocity);
  EXPECT_EQ(parse_hook_point("vlm.embed").layer, -1);
  for (const char* bad : {"vlm.layers.x.mlp.post", "vlm.layers.3.mlp", "vision.embed", "expert.layers.1.mlp.pre",
                          "text.layers.1.mlp.post", "vision.layers.0.attn.out", "vlm.layers..mlp.post"})
    EXPECT_THROW(parse_hook_point(bad), Error) << bad;
}

TEST(Hooks, CaptureSeesEveryPassAndCostsNothingWhenAbsent) {
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(4);
  ModelInputs in = random_inputs(c, 1, 7, 2);
  torch::NoGradGuard no_grad;
  const torch::Tensor noise = torch::randn({1, c.chunk_size, c.max_action_dim});
  const torch::Tensor plain = model.sample_actions(in, noise);

  std::map<std::string, std::vector<std::vector<int64_t>>> shapes;
  std::vector<int> steps;
  std::vector<HookHandle> hooks;
  auto record = [&](const std::string& name) {
    hooks.push_back(model.hooks().add(name, [&shapes, &steps, name](const HookContext& ctx, at::Tensor& t) {
      shapes[name].push_back(t.sizes().vec());
      if (name == "expert.layers.0.attn.pattern") steps.push_back(ctx.step);
    }));
  };
  for (const char* n : {"vlm.layers.0.attn.pattern", "vlm.layers.1.attn.pattern", "vlm.layers.3.mlp.post",
                        "vlm.layers.3.resid.post", "expert.layers.0.attn.pattern", "expert.layers.1.attn.pattern",
                        "expert.layers.2.mlp.post", "expert.velocity", "vlm.embed"})
    record(n);
  const torch::Tensor hooked = model.sample_actions(in, noise);
  EXPECT_TRUE(torch::equal(plain, hooked));  // reading never changes the actions

  const int64_t lp = 2 * 4 + 7 + 1, t = c.chunk_size;
  EXPECT_EQ(shapes["vlm.layers.0.attn.pattern"], (std::vector<std::vector<int64_t>>{{1, 4, lp, lp}}));
  EXPECT_EQ(shapes["vlm.layers.3.mlp.post"], (std::vector<std::vector<int64_t>>{{1, lp, 256}}));  // the last layer
  EXPECT_EQ(shapes["expert.layers.0.attn.pattern"].size(), 10u);  // every denoising step
  EXPECT_EQ(shapes["expert.layers.0.attn.pattern"][0], (std::vector<int64_t>{1, 4, t, lp + t}));  // joint
  EXPECT_EQ(shapes["expert.layers.1.attn.pattern"][0], (std::vector<int64_t>{1, 4, t, lp}));      // cross
  EXPECT_EQ(shapes["expert.layers.2.mlp.post"][0], (std::vector<int64_t>{1, t, 256}));
  EXPECT_EQ(steps, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(shapes["vlm.embed"][0], (std::vector<int64_t>{1, lp, 128}));
}

TEST(Hooks, AttentionRowsAreDistributionsOverUnmaskedKeys) {
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(5);
  ModelInputs in = random_inputs(c, 1, 6, 3);
  in.lang_masks[0].narrow(0, 4, 2).fill_(false);
  torch::NoGradGuard no_grad;
  const int64_t lp = 8 + 6 + 1;
  torch::Tensor vlm, joint, cross;
  const HookHandle vlm_hook =
      model.hooks().add("vlm.layers.2.attn.pattern", [&](const HookContext&, at::Tensor& p) { vlm = p.clone(); });
  const HookHandle joint_hook = model.hooks().add("expert.layers.2.attn.pattern", [&](const HookContext& ctx, at::Tensor& p) {
    if (ctx.step == 0) joint = p.clone();
  });
  const HookHandle cross_hook = model.hooks().add("expert.layers.3.attn.pattern", [&](const HookContext& ctx, at::Tensor& p) {
    if (ctx.step == 0) cross = p.clone();
  });
  model.sample_actions(in, torch::randn({1, c.chunk_size, c.max_action_dim}));
  // Valid prefix rows sum to one; padded words and the state/actions get nothing from image/word queries.
  for (int64_t q : {0, 5, 8, 11, 14}) {
    EXPECT_NEAR(vlm[0].select(1, q).sum(-1).max().item<double>(), 1.0, 1e-5);
    EXPECT_EQ(vlm[0].select(1, q).narrow(-1, 12, 2).abs().max().item<double>(), 0.0);  // padded words
  }
  // No image or word sees the state (rows 12, 13 are padded words: fully masked rows are uniform, as in LeRobot).
  EXPECT_EQ(vlm[0].narrow(1, 0, 12).narrow(2, 14, 1).abs().max().item<double>(), 0.0);
  EXPECT_NEAR(vlm[0][0][12][14].item<double>(), 1.0 / lp, 1e-6);
  EXPECT_NEAR(joint.sum(-1).min().item<double>(), 1.0, 1e-5);
  EXPECT_EQ(joint.narrow(3, 12, 2).abs().max().item<double>(), 0.0);  // padded words
  // Actions are causal among themselves: action 0 sees no later action.
  EXPECT_EQ(joint[0].select(1, 0).narrow(-1, lp + 1, c.chunk_size - 1).abs().max().item<double>(), 0.0);
  EXPECT_GT(joint[0].select(1, 3).narrow(-1, lp, 4).sum().item<double>(), 0.0);
  EXPECT_NEAR(cross.sum(-1).min().item<double>(), 1.0, 1e-5);
  EXPECT_EQ(cross.narrow(3, 12, 2).abs().max().item<double>(), 0.0);
}

TEST(Hooks, OverridingNeuronsChangesExactlyThoseActivations) {
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(6);
  ModelInputs in = random_inputs(c, 1, 5, 4);
  torch::NoGradGuard no_grad;
  const torch::Tensor noise = torch::randn({1, c.chunk_size, c.max_action_dim});
  const std::vector<int64_t> neurons = {3, 17, 100};
  const torch::Tensor index = torch::tensor(neurons, torch::kInt64);
  torch::Tensor before, after;
  const torch::Tensor baseline_free = model.sample_actions(in, noise);
  // Three hooks on one point run in registration order: record, steer, record.
  const HookHandle first =
      model.hooks().add("vlm.layers.1.mlp.post", [&](const HookContext&, at::Tensor& a) { before = a.clone(); });
  HookHandle steer = model.hooks().add("vlm.layers.1.mlp.post",
                                       [&](const HookContext&, at::Tensor& a) { a.index_fill_(-1, index, 4.0); });
  const HookHandle last =
      model.hooks().add("vlm.layers.1.mlp.post", [&](const HookContext&, at::Tensor& a) { after = a.clone(); });
  const torch::Tensor steered = model.sample_actions(in, noise);
  const torch::Tensor diff = (after - before).abs().sum(std::vector<int64_t>{0, 1});  // per neuron
  for (int64_t j = 0; j < diff.size(0); ++j) {
    const bool chosen = std::find(neurons.begin(), neurons.end(), j) != neurons.end();
    if (!chosen) {
      ASSERT_EQ(diff[j].item<double>(), 0.0) << j;
    }
  }
  EXPECT_TRUE(torch::all(after.index_select(-1, index) == 4.0).item<bool>());
  EXPECT_GT(max_diff(steered, baseline_free), 1e-4);  // and it reaches the actions
  // The handle is the registration: resetting it (or letting it go out of scope) removes that hook and no other.
  steer.reset();
  EXPECT_FALSE(steer.active());
  EXPECT_EQ(max_diff(model.sample_actions(in, noise), baseline_free), 0.0);
  EXPECT_TRUE(torch::equal(before, after));  // both recorders still run
  {
    const HookHandle scoped = model.hooks().add("vlm.layers.1.mlp.post",
                                                [&](const HookContext&, at::Tensor& a) { a.index_fill_(-1, index, 4.0); });
    EXPECT_GT(max_diff(model.sample_actions(in, noise), baseline_free), 1e-4);
  }
  EXPECT_EQ(max_diff(model.sample_actions(in, noise), baseline_free), 0.0);
  model.hooks().clear();  // outstanding handles become no-ops
}

TEST(Model, Bfloat16ModeStaysCloseToFloat32) {
  // The parity weights and inputs: LeRobot's own bf16 build differs from its fp32 one by 0.024 at base size.
  const SmolVLAConfig c =
      read_lerobot_config(kParity + "smolvla_tiny_config.json", kParity + "smolvla_tiny_vlm_config.json");
  SmolVLA fp32(c, Precision::kFloat32), bf16(c, Precision::kBFloat16);
  load_weights(fp32, kParity + "smolvla_tiny_weights.safetensors");
  load_weights(bf16, kParity + "smolvla_tiny_weights.safetensors");
  const SafetensorsFile io(kParity + "smolvla_tiny_io.safetensors");
  ModelInputs in;
  for (int k = 0; k < 2; ++k) {
    in.images.push_back(read_tensor(io, "images." + std::to_string(k)));
    in.image_masks.push_back(read_tensor(io, "img_masks." + std::to_string(k)));
  }
  in.lang_tokens = read_tensor(io, "lang_tokens");
  in.lang_masks = read_tensor(io, "lang_masks");
  in.state = read_tensor(io, "state");
  torch::NoGradGuard no_grad;
  const torch::Tensor noise = read_tensor(io, "noise");
  const torch::Tensor a = fp32.sample_actions(in, noise), b = bf16.sample_actions(in, noise);
  const double d = max_diff(a, b);
  std::printf("  bf16 vs fp32: max |Δaction| %.4f (actions up to %.2f)\n", d, a.abs().max().item<double>());
  EXPECT_LT(d, 0.03);  // the bound (LeRobot's own bf16 build: 0.024 at base size)
  EXPECT_GT(d, 0.0);   // it really ran in bf16
  EXPECT_EQ(bf16.weights().vlm_layers[0].q.weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(bf16.weights().state_proj.weight.scalar_type(), torch::kFloat32);
}

TEST(Model, FlowLossIsTheSquaredVelocityErrorAndTrainsTheExpert) {
  SmolVLAConfig c = test_config();
  SmolVLA model(c);
  model.init_random(8);
  ModelInputs in = random_inputs(c, 3, 5, 5);
  const torch::Tensor actions = torch::randn({3, c.chunk_size, c.max_action_dim});
  const torch::Tensor noise = torch::randn({3, c.chunk_size, c.max_action_dim});
  const torch::Tensor time = torch::tensor({0.2f, 0.5f, 0.9f});
  {
    // loss = (noise − actions − v(x_t, t))², with v the uncached velocity.
    torch::NoGradGuard no_grad;
    const torch::Tensor t = time.view({-1, 1, 1});
    const torch::Tensor v = model.velocity_uncached(model.embed_prefix(in), t * noise + (1 - t) * actions, time);
    EXPECT_LT(max_diff(model.flow_loss(in, actions, noise, time), (noise - actions - v).pow(2)), 1e-5);
  }
  // Gradients reach the expert and the state projection through the frozen VLM.
  std::vector<torch::Tensor> params;
  for (WeightEntry& e : model.weight_table()) {
    if (e.group == WeightGroup::kExpert || e.group == WeightGroup::kProjection) {
      e.tensor->set_requires_grad(true);
      params.push_back(*e.tensor);
    }
  }
  torch::optim::AdamW opt(params, torch::optim::AdamWOptions(1e-3));
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    const torch::Tensor loss = model.flow_loss(in, actions, noise, time).mean();
    loss.backward();
    opt.step();
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
  }
  EXPECT_LT(last, 0.5 * first);
  EXPECT_TRUE(model.weights().state_proj.weight.grad().defined());
  EXPECT_GT(model.weights().state_proj.weight.grad().abs().sum().item<double>(), 0.0);
}

// ------------------------------------------------------------------------------------------------------------
// Policy: LeRobot's pre- and post-processing
// ------------------------------------------------------------------------------------------------------------

TEST(Policy, ResizeWithPadKeepsAspectAndPadsLeftAndTop) {
  Image img(640, 480);
  for (auto& p : img.pixels) p = 255;
  const std::vector<float> out = preprocess_image(img, 512, 512);  // 480×640 → 384×512, 128 rows on top
  ASSERT_EQ(out.size(), 3u * 512 * 512);
  auto at = [&](int c, int y, int x) { return out[(static_cast<size_t>(c) * 512 + y) * 512 + x]; };
  EXPECT_FLOAT_EQ(at(0, 0, 0), -1.f);    // padding: 0 → −1
  EXPECT_FLOAT_EQ(at(1, 127, 300), -1.f);
  EXPECT_FLOAT_EQ(at(2, 128, 0), 1.f);   // image: 255 → 1
  EXPECT_FLOAT_EQ(at(0, 511, 511), 1.f);
  Image same(64, 64);
  EXPECT_EQ(preprocess_image(same, 64, 64).size(), 3u * 64 * 64);
}

struct PolicyFixture {
  TempDir dir{"policy"};
  SmolVLAConfig config = test_config();
  std::string tokenizer;
  std::unique_ptr<Policy> policy;
  PolicyFixture() {
    tokenizer = dir / "tokenizer.json";
    write_word_level_tokenizer(tokenizer, {"pick", "up", "the", "cube", "and", "lift", "it", "high"});
    SmolVLA model(config);
    model.init_random(9);
    save_checkpoint(dir.path.string(), model, test_stats(5, 5), SaveDtypes::kFloat32,
                    [&] {
                      std::ifstream in(tokenizer);
                      std::stringstream ss;
                      ss << in.rdbuf();
                      return ss.str();
                    }());
    policy = Policy::load(dir.path.string());
  }
  PolicyInput input() const {
    PolicyInput in;
    in.images["scene"] = Image(64, 64, 3, 120);
    in.images["wrist"] = Image(64, 64, 3, 30);
    in.state = {1, 2, 3, 4, 5};
    in.task = "pick up the cube and lift it";
    return in;
  }
};

TEST(Policy, ShiftedTrainingImagesMoveTheirPixelsAndRepeatTheEdge) {
  const torch::Tensor img = torch::arange(2 * 3 * 5 * 6, torch::kFloat32).view({2, 3, 5, 6});
  const torch::Tensor moved = shift_image(img, 2, -1);  // 2 right, 1 up
  ASSERT_EQ(moved.sizes(), img.sizes());
  for (int64_t y = 0; y < 5; ++y)
    for (int64_t x = 0; x < 6; ++x) {
      const int64_t sy = std::clamp<int64_t>(y + 1, 0, 4), sx = std::clamp<int64_t>(x - 2, 0, 5);
      ASSERT_EQ(moved[1][2][y][x].item<float>(), img[1][2][sy][sx].item<float>()) << y << "," << x;
    }
  EXPECT_TRUE(torch::equal(shift_image(img, 0, 0), img));
  EXPECT_THROW(shift_image(img, 5, 0), Error);  // no pixel of the image would be left
}

TEST(Policy, QueuesChunksAndRunsTheModelEveryNActionSteps) {
  PolicyFixture f;
  Policy& p = *f.policy;
  EXPECT_EQ(p.cameras(), (std::vector<std::string>{"scene", "wrist"}));
  EXPECT_TRUE(p.has_action_stats());
  p.reset(1);
  const std::vector<std::vector<float>> chunk = [&] {
    Policy& q = *f.policy;
    return q.predict_chunk(f.input());
  }();
  p.reset(1);
  std::vector<std::vector<float>> actions;
  int model_calls = 0;
  for (int i = 0; i < 10; ++i) {
    actions.push_back(p.select_action(f.input()));
    model_calls += p.ran_model_last_call();
  }
  EXPECT_EQ(model_calls, 3);  // steps 0, 4, 8 with n_action_steps = 4
  for (int i = 0; i < 4; ++i) EXPECT_EQ(actions[i], chunk[i]) << i;  // same seed → same first chunk
  EXPECT_EQ(actions[0].size(), 5u);
  // The token table: 2 cameras × 4 cells, the words, the state, the actions.
  const PrefixLayout& L = p.layout();
  EXPECT_EQ(L.language_begin, 8);
  EXPECT_EQ(L.language_len, 7);
  EXPECT_EQ(L.prefix_len, 16);
  EXPECT_EQ(L.tokens[0][8].piece, "pick");
  EXPECT_EQ(L.tokens[0][L.state_index].kind, TokenKind::kState);
  // Another noise seed gives another chunk.
  p.reset(2);
  EXPECT_NE(p.predict_chunk(f.input())[0], chunk[0]);
}

TEST(Policy, ActionStepsOverrideTheCheckpointsReplanningInterval) {
  PolicyFixture f;
  ASSERT_EQ(f.policy->n_action_steps(), 4);
  PolicyOptions o;
  o.n_action_steps = 2;
  std::unique_ptr<Policy> p = Policy::load(f.dir.path.string(), o);
  EXPECT_EQ(p->n_action_steps(), 2);
  EXPECT_EQ(p->config().n_action_steps, 4);  // the checkpoint's config is untouched
  p->reset(1);
  int model_calls = 0;
  for (int i = 0; i < 10; ++i) {
    p->select_action(f.input());
    model_calls += p->ran_model_last_call();
  }
  EXPECT_EQ(model_calls, 5);  // steps 0, 2, 4, 6, 8
  o.n_action_steps = f.config.chunk_size + 1;
  try {
    Policy::load(f.dir.path.string(), o);
    FAIL() << "n_action_steps beyond the chunk was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exceeds the chunk size"), std::string::npos) << e.what();
  }
}

TEST(Policy, ActionsAreUnnormalisedWithTheCheckpointStatistics) {
  PolicyFixture f;
  auto model = std::shared_ptr<SmolVLA>(std::move(load_checkpoint(f.dir.path.string()).model));
  NormalizationStats a = test_stats(5, 5), b = a;
  for (float& m : b.features["action"].mean) m += 100;
  for (float& s : b.features["action"].std) s *= 2;
  Policy pa(model, a, f.tokenizer), pb(model, b, f.tokenizer);
  pa.reset(5);
  pb.reset(5);
  const auto ca = pa.predict_chunk(f.input()), cb = pb.predict_chunk(f.input());
  for (size_t t = 0; t < ca.size(); ++t)
    for (int i = 0; i < 5; ++i) {
      // x·std + mean with the same normalised x: b = (a − mean_a)·2 + mean_a + 100.
      const float expected = (ca[t][i] - a.features["action"].mean[i]) * 2 + a.features["action"].mean[i] + 100;
      ASSERT_NEAR(cb[t][i], expected, 1e-3) << t << " " << i;
    }
}

TEST(Policy, MissingCamerasAndWrongStatesAreClearErrors) {
  PolicyFixture f;
  PolicyInput in = f.input();
  in.images.erase("wrist");
  try {
    f.policy->predict_chunk(in);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wrist"), std::string::npos) << e.what();
  }
  in = f.input();
  in.state.pop_back();
  EXPECT_THROW(f.policy->predict_chunk(in), Error);
  EXPECT_EQ(parse_camera_map("camera1=scene,observation.images.camera2=wrist"),
            (std::map<std::string, std::string>{{"observation.images.camera1", "scene"},
                                                {"observation.images.camera2", "wrist"}}));
  EXPECT_THROW(parse_camera_map("camera1"), Error);
  // A map entry for a camera the checkpoint does not have is an error naming it and the ones it has.
  PolicyOptions o;
  o.camera_map = parse_camera_map("camera1=nose");
  try {
    Policy::load(f.dir.path.string(), o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no camera 'camera1' (it has scene, wrist)"), std::string::npos) << e.what();
  }
  o.camera_map = parse_camera_map("scene=wrist,wrist=scene");
  EXPECT_EQ(Policy::load(f.dir.path.string(), o)->cameras(), (std::vector<std::string>{"wrist", "scene"}));
}

}  // namespace
}  // namespace vlascope
