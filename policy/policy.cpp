#include "policy/policy.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <thread>

#include "common/error.h"
#include "policy/checkpoint.h"
#include "policy/preprocess.h"
#include "policy/tokenizer.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;
const char* const kImagePrefix = "observation.images.";

std::vector<float> stat_or(const std::vector<float>& v, size_t n, float fill) {
  return v.size() == n ? v : std::vector<float>(n, fill);
}

}  // namespace

std::map<std::string, std::string> parse_camera_map(const std::string& text) {
  std::map<std::string, std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const size_t eq = item.find('=');
    require(eq != std::string::npos && eq > 0 && eq + 1 < item.size(),
            "camera map entry '" + item + "' must be feature=camera (e.g. camera1=scene)");
    std::string key = item.substr(0, eq);
    if (key.rfind(kImagePrefix, 0) != 0) key = kImagePrefix + key;
    out[key] = item.substr(eq + 1);
    start = end + 1;
  }
  return out;
}

struct Policy::Impl {
  std::shared_ptr<SmolVLA> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<std::string> camera_keys;  // config order
  std::vector<float> state_mean, state_std, action_mean, action_std;
  bool has_action_stats = false;
  std::deque<std::vector<float>> queue;
  uint64_t seed = 0;
  int64_t chunk_index = 0;
  int n_action_steps = 0;
};

std::unique_ptr<Policy> Policy::load(const std::string& directory, const PolicyOptions& options) {
  LoadOptions lo;
  lo.precision = parse_precision(options.precision);
  lo.device = options.device;
  lo.vlm_config = options.vlm_config;
  lo.stats_group = options.stats_group;
  if (options.threads > 0) at::set_num_threads(options.threads);
  LoadedCheckpoint ckpt = load_checkpoint(directory, lo);
  std::string tokenizer = options.tokenizer;
  if (tokenizer.empty()) {
    const fs::path own = fs::path(directory) / "tokenizer.json";
    require(fs::exists(own), "checkpoint " + directory +
                                 " has no tokenizer.json; give the backbone's tokenizer with --tokenizer "
                                 "(for smolvla_base: SmolVLM2-500M-Video-Instruct's tokenizer.json)");
    tokenizer = own.string();
  }
  return std::make_unique<Policy>(std::shared_ptr<SmolVLA>(std::move(ckpt.model)), ckpt.stats, tokenizer, options);
}

Policy::Policy(std::shared_ptr<SmolVLA> model, const NormalizationStats& stats, const std::string& tokenizer_path,
               const PolicyOptions& options)
    : impl_(std::make_unique<Impl>()) {
  require(model != nullptr, "Policy: no model");
  if (options.threads > 0) {
    at::set_num_threads(options.threads);
  } else if (at::get_num_threads() < static_cast<int>(std::thread::hardware_concurrency())) {
    at::set_num_threads(static_cast<int>(std::thread::hardware_concurrency()));  // torch starts at 1 here
  }
  impl_->model = std::move(model);
  impl_->model->pack_for_inference();
  impl_->seed = options.seed;
  impl_->n_action_steps = options.n_action_steps > 0 ? options.n_action_steps : impl_->model->config().n_action_steps;
  require(impl_->n_action_steps <= impl_->model->config().chunk_size,
          "Policy: n_action_steps " + std::to_string(options.n_action_steps) + " exceeds the chunk size " +
              std::to_string(impl_->model->config().chunk_size));
  if (!tokenizer_path.empty()) impl_->tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(tokenizer_path));
  const SmolVLAConfig& c = impl_->model->config();
  impl_->camera_keys = c.camera_keys();
  for (const auto& [key, camera] : options.camera_map)
    if (std::find(impl_->camera_keys.begin(), impl_->camera_keys.end(), key) == impl_->camera_keys.end()) {
      std::string known;
      for (const std::string& k : impl_->camera_keys) known += (known.empty() ? "" : ", ") + k.substr(k.rfind('.') + 1);
      throw Error("camera map: the checkpoint has no camera '" + key.substr(key.rfind('.') + 1) + "' (it has " +
                  known + ")");
    }
  for (const std::string& key : impl_->camera_keys) {
    auto it = options.camera_map.find(key);
    std::string camera = it != options.camera_map.end() ? it->second : key.substr(key.rfind('.') + 1);
    cameras_.push_back(camera);
  }
  const size_t sd = static_cast<size_t>(c.state_dim()), ad = static_cast<size_t>(c.action_dim());
  auto check = [&](const std::string& feature, size_t n) {
    auto it = stats.features.find(feature);
    if (it == stats.features.end()) return false;
    require(it->second.mean.size() == n && it->second.std.size() == n,
            stats.source + ": statistics of " + feature + " have " + std::to_string(it->second.mean.size()) +
                " values, the model expects " + std::to_string(n));
    return true;
  };
  if (c.normalization_state == "MEAN_STD" && check("observation.state", sd)) {
    impl_->state_mean = stats.features.at("observation.state").mean;
    impl_->state_std = stats.features.at("observation.state").std;
  }
  if (c.normalization_action == "MEAN_STD" && check("action", ad)) {
    impl_->action_mean = stats.features.at("action").mean;
    impl_->action_std = stats.features.at("action").std;
    impl_->has_action_stats = true;
  }
  impl_->state_mean = stat_or(impl_->state_mean, sd, 0.f);
  impl_->state_std = stat_or(impl_->state_std, sd, 1.f);
  impl_->action_mean = stat_or(impl_->action_mean, ad, 0.f);
  impl_->action_std = stat_or(impl_->action_std, ad, 1.f);
}

Policy::~Policy() = default;

const SmolVLAConfig& Policy::config() const { return impl_->model->config(); }
SmolVLA& Policy::model() { return *impl_->model; }
const Tokenizer& Policy::tokenizer() const {
  require(impl_->tokenizer != nullptr, "Policy: no tokenizer was given");
  return *impl_->tokenizer;
}
Hooks& Policy::hooks() { return impl_->model->hooks(); }
int Policy::action_dim() const { return config().action_dim(); }
int Policy::n_action_steps() const { return impl_->n_action_steps; }
bool Policy::has_action_stats() const { return impl_->has_action_stats; }

void Policy::reset(uint64_t seed) {
  impl_->queue.clear();
  impl_->seed = seed;
  impl_->chunk_index = 0;
}

std::vector<std::vector<float>> Policy::predict_chunk(const PolicyInput& input) {
  return predict_chunk(input, impl_->seed, impl_->chunk_index++);
}

std::vector<std::vector<float>> Policy::predict_chunk(const PolicyInput& input, uint64_t seed, int64_t chunk) {
  return predict_chunks({&input}, {{seed, chunk}}).front();
}

std::vector<std::vector<std::vector<float>>> Policy::predict_chunks(const std::vector<const PolicyInput*>& inputs,
                                                                   const std::vector<NoiseId>& noise_ids) {
  const auto t0 = std::chrono::steady_clock::now();
  SmolVLA& model = *impl_->model;
  const SmolVLAConfig& c = model.config();
  c10::InferenceMode inference;
  const int64_t n = static_cast<int64_t>(inputs.size());
  require(n > 0 && noise_ids.size() == inputs.size(), "policy: predict_chunks needs one noise id per input");
  for (const PolicyInput* input : inputs)
    require(input->task == inputs[0]->task, "policy: one batched call runs one task; got \"" + inputs[0]->task +
                                                "\" and \"" + input->task + "\"");

  ModelInputs in;
  const auto [width, height] = c.input_image_size();
  for (size_t k = 0; k < impl_->camera_keys.size(); ++k) {
    std::vector<torch::Tensor> frames;  // [1, 3, H, W] each
    for (const PolicyInput* input : inputs) {
      auto it = input->images.find(cameras_[k]);
      if (it == input->images.end()) {
        std::string have;
        for (const auto& [name, _] : input->images) have += (have.empty() ? "" : ", ") + name;
        throw Error("policy: the model needs camera '" + cameras_[k] + "' (feature " + impl_->camera_keys[k] +
                    ") but the robot gave [" + have + "]; map cameras with --camera-map");
      }
      frames.push_back(model_image(it->second, c));
    }
    in.images.push_back(n == 1 ? frames[0] : torch::cat(frames, 0));  // [N, 3, H, W]
    in.image_masks.push_back(torch::ones({n}, torch::kBool));
  }
  for (int e = 0; e < c.empty_cameras; ++e) {
    in.images.push_back(torch::full({n, 3, height, width}, -1.0f));
    in.image_masks.push_back(torch::zeros({n}, torch::kBool));
  }

  const size_t sd = impl_->state_mean.size();
  torch::Tensor state = torch::zeros({n, c.max_state_dim});  // [N, max_state_dim]
  auto state_acc = state.accessor<float, 2>();
  for (int64_t b = 0; b < n; ++b) {
    const PolicyInput& input = *inputs[static_cast<size_t>(b)];
    require(input.state.size() == sd, "policy: the state has " + std::to_string(input.state.size()) +
                                          " values, the model expects " + std::to_string(sd));
    for (size_t i = 0; i < sd; ++i)
      state_acc[b][static_cast<int64_t>(i)] = (input.state[i] - impl_->state_mean[i]) / (impl_->state_std[i] + 1e-8f);
  }
  in.state = state;

  const TokenizedText text = tokenize_task(tokenizer(), inputs[0]->task, c.tokenizer_max_length,
                                           c.pad_language_to_max_length);
  const int64_t words = static_cast<int64_t>(text.ids.size());
  in.lang_tokens = torch::tensor(text.ids, torch::kInt64).view({1, words}).expand({n, words}).contiguous();
  in.lang_masks = torch::tensor(std::vector<int64_t>(text.mask.begin(), text.mask.end()), torch::kInt64)
                      .view({1, words})
                      .to(torch::kBool)
                      .expand({n, words})
                      .contiguous();
  // The token table of this prefix.
  PrefixLayout& L = layout_;
  L = PrefixLayout{};
  L.batch = static_cast<int>(n);
  L.grid_rows = L.grid_cols = c.image_grid();
  L.camera_names = cameras_;
  for (int e = 0; e < c.empty_cameras; ++e) L.camera_names.push_back("empty" + std::to_string(e));
  const int cams = static_cast<int>(L.camera_names.size());
  const int per_image = c.tokens_per_image();
  L.image_begin = 0;
  L.language_begin = cams * per_image;
  L.language_len = static_cast<int>(words);
  L.state_index = L.language_begin + L.language_len;
  L.prefix_len = L.state_index + 1;
  L.suffix_len = c.chunk_size;
  std::vector<LayoutToken> tokens;
  int position = -1;
  for (int cam = 0; cam < cams; ++cam) {
    const bool valid = cam < static_cast<int>(cameras_.size());
    for (int r = 0; r < L.grid_rows; ++r)
      for (int col = 0; col < L.grid_cols; ++col) {
        LayoutToken t;
        t.kind = TokenKind::kImage;
        t.camera = cam;
        t.row = r;
        t.col = col;
        t.padding = !valid;
        if (valid) ++position;
        t.position = position;  // cumsum(pad) − 1, as LeRobot: padding repeats the last position
        tokens.push_back(t);
      }
  }
  for (int64_t i = 0; i < words; ++i) {
    LayoutToken t;
    t.kind = TokenKind::kLanguage;
    t.token_id = text.ids[i];
    t.piece = tokenizer().piece(text.ids[i]);
    t.padding = text.mask[i] == 0;
    if (!t.padding) ++position;
    t.position = position;  // cumsum(pad) − 1, as LeRobot: padding repeats the last position
    tokens.push_back(t);
  }
  LayoutToken st;
  st.kind = TokenKind::kState;
  st.position = ++position;
  tokens.push_back(st);
  for (int a = 0; a < c.chunk_size; ++a) {
    LayoutToken t;
    t.kind = TokenKind::kAction;
    t.action = a;
    t.position = position + 1 + a;
    tokens.push_back(t);
  }
  L.tokens.assign(static_cast<size_t>(n), tokens);  // one task: every element has the same table

  // Noise of chunk k: its own generator seeded from (seed, k), so a chunk does not depend on how many were drawn
  // nor on which episodes share its batch.
  std::vector<torch::Tensor> noises;
  for (const NoiseId& id : noise_ids) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(id.seed * 1000003ULL + static_cast<uint64_t>(id.chunk));
    noises.push_back(at::normal(0.0, 1.0, {1, c.chunk_size, c.max_action_dim}, gen));
  }
  const torch::Tensor noise = n == 1 ? noises[0] : torch::cat(noises, 0);  // [N, chunk, max_action_dim]
  const torch::Tensor actions = model.sample_actions(in, noise, c.use_cache).to(torch::kCPU, torch::kFloat32);

  const int ad = action_dim();
  const auto acc = actions.accessor<float, 3>();
  std::vector<std::vector<std::vector<float>>> out(
      static_cast<size_t>(n), std::vector<std::vector<float>>(c.chunk_size, std::vector<float>(ad)));
  for (int64_t b = 0; b < n; ++b)
    for (int t = 0; t < c.chunk_size; ++t)
      for (int i = 0; i < ad; ++i) out[b][t][i] = acc[b][t][i] * impl_->action_std[i] + impl_->action_mean[i];
  chunks_ += static_cast<int>(n);
  last_chunk_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

bool Policy::will_compute_chunk() const { return impl_->queue.empty(); }

std::vector<float> Policy::select_action(const PolicyInput& input) {
  ran_model_ = false;
  if (impl_->queue.empty()) {
    const std::vector<std::vector<float>> chunk = predict_chunk(input);
    for (int t = 0; t < impl_->n_action_steps; ++t) impl_->queue.push_back(chunk[t]);
    ran_model_ = true;
  }
  std::vector<float> a = impl_->queue.front();
  impl_->queue.pop_front();
  return a;
}

std::vector<float> preprocess_image(const Image& image, int width, int height) {
  const torch::Tensor t = resize_with_pad(image_tensor(image), width, height).mul(2.0).sub(1.0).contiguous();
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

}  // namespace vlascope
