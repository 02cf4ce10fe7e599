#include "interp/sae.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>

#include "common/cli.h"
#include "common/error.h"
#include "common/file_io.h"
#include "common/json_io.h"
#include "common/image_io.h"
#include "common/progress.h"
#include "dataset/dataset.h"
#include "interp/attention_metrics.h"
#include "interp/attention_study.h"
#include "interp/lift_segment.h"
#include "interp/rollout.h"
#include "interp/neurons.h"
#include "interp/patching.h"
#include "interp/stats.h"
#include "policy/policy.h"
#include "policy/safetensors.h"
#include "policy/smolvla.h"

namespace vlascope {

namespace fs = std::filesystem;

struct Sae::Impl {
  SaeConfig config;
  // The SAE's own units (inputs × input_scale): W_enc [width, features], b_enc [features], W_dec [features, width]
  // (unit rows), b_dec [width].
  torch::Tensor w_enc, b_enc, w_dec, b_dec;
  std::vector<float> mean;  // input units

  // xs [N, width] scaled → the top-k activations and their features [N, k] (ReLU'd: a negative pre-activation in
  // the top k is an inactive feature).
  std::pair<torch::Tensor, torch::Tensor> encode(const torch::Tensor& xs) const {
    const torch::Tensor pre = torch::addmm(b_enc, xs - b_dec, w_enc);  // [N, features]
    auto [values, indices] = pre.topk(config.k, 1);
    return {torch::relu(values), indices};
  }
  torch::Tensor decode(const torch::Tensor& values, const torch::Tensor& indices) const {
    const torch::Tensor z = torch::zeros({values.size(0), config.features}, values.options()).scatter(1, indices, values);
    return torch::addmm(b_dec, z, w_dec);  // [N, width]
  }
  // Input units in and out.
  torch::Tensor reconstruct(const torch::Tensor& x) const {
    const double s = config.input_scale;
    const auto [values, indices] = encode(x * s);
    return decode(values, indices) / s;
  }
};

namespace {

torch::Tensor gather_rows(const ActivationStore& store, const int64_t* rows, int64_t n) {
  const int64_t d = store.width();
  torch::Tensor out = torch::empty({n, d}, torch::kFloat32);
  float* p = out.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) std::memcpy(p + i * d, store.row(rows[i]), sizeof(float) * static_cast<size_t>(d));
  return out;
}

std::vector<float> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().to(torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

Sae::Sae() : impl_(std::make_unique<Impl>()) {}
Sae::~Sae() = default;
Sae::Sae(Sae&&) noexcept = default;
Sae& Sae::operator=(Sae&&) noexcept = default;
const SaeConfig& Sae::config() const { return impl_->config; }
const std::vector<float>& Sae::input_mean() const { return impl_->mean; }

Sae Sae::train(const ActivationStore& store, const SaeTrainOptions& o, SaeTrainReport* report) {
  torch::NoGradGuard outer_no_grad;  // gradients only inside the step below
  if (o.threads > 0) at::set_num_threads(o.threads);
  const int64_t d = store.width();
  const int64_t n = o.features > 0 ? o.features : 8 * d;
  require(o.k >= 1 && o.k <= n, "sae train: k = " + std::to_string(o.k) + " must be between 1 and the " +
                                    std::to_string(n) + " features");
  require(o.batch >= 1 && o.steps >= 1, "sae train: --batch and --steps must be positive");
  const RowSplit split = split_by_episode(store, o.holdout);
  require(!split.train.empty(), store.dir() + ": no rows to train on");
  std::mt19937_64 rng(o.seed);

  Sae sae;
  Impl& m = *sae.impl_;
  SaeConfig& c = m.config;
  c.hook = store.info().hook;
  c.width = d;
  c.features = n;
  c.k = o.k;
  c.store = store.dir();
  c.checkpoint = store.info().checkpoint;
  c.checkpoint_digest = store.info().checkpoint_digest;
  c.steps = o.steps;
  c.batch = o.batch;
  c.train_rows = static_cast<int64_t>(split.train.size());
  c.lr = o.lr;
  c.aux_coef = o.aux_coef;
  c.aux_k = o.aux_k > 0 ? o.aux_k : static_cast<int>(std::max<int64_t>(1, d / 2));
  c.holdout = o.holdout;
  c.balance_kinds = o.balance_kinds;
  c.seed = o.seed;

  // The input scale and mean from a sample of the training rows.
  std::vector<int64_t> sample = split.train;
  std::shuffle(sample.begin(), sample.end(), rng);
  sample.resize(std::min<size_t>(sample.size(), 20000));
  const torch::Tensor xs = gather_rows(store, sample.data(), static_cast<int64_t>(sample.size())).to(torch::kFloat64);
  const double mean_sq = xs.pow(2).sum(1).mean().item<double>();
  require(mean_sq > 0, store.dir() + ": every sampled activation is zero");
  c.input_scale = std::sqrt(static_cast<double>(d) / mean_sq);
  const torch::Tensor mean = xs.mean(0);
  m.mean = to_vector(mean);
  // Σ|x − mean|² per row, in the SAE's units: the loss is the fraction of this variance left unexplained.
  const double variance = (xs - mean).pow(2).sum(1).mean().item<double>() * c.input_scale * c.input_scale;
  require(variance > 0, store.dir() + ": the sampled activations do not vary");

  auto generator = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  m.w_dec = torch::randn({n, d}, generator, torch::TensorOptions().dtype(torch::kFloat32));
  m.w_dec /= m.w_dec.norm(2, 1, true);
  m.w_enc = m.w_dec.t().clone();
  m.b_enc = torch::zeros({n});
  m.b_dec = (mean * c.input_scale).to(torch::kFloat32);
  for (torch::Tensor* t : {&m.w_enc, &m.b_enc, &m.w_dec, &m.b_dec}) t->set_requires_grad(true);
  torch::optim::Adam adam({m.w_enc, m.b_enc, m.w_dec, m.b_dec}, torch::optim::AdamOptions(o.lr));

  torch::Tensor rows_since_fired = torch::zeros({n}, torch::kInt64);
  // The training rows by kind (one group of all of them without balancing); a row is drawn from a uniform group.
  std::vector<std::vector<int64_t>> groups;
  if (o.balance_kinds) {
    std::map<RowKind, std::vector<int64_t>> by_kind;
    for (int64_t r : split.train)
      if (store.meta(r).kind != RowKind::kPadding) by_kind[store.meta(r).kind].push_back(r);  // not a kind to learn
    for (auto& [kind, rows] : by_kind) groups.push_back(std::move(rows));
    require(!groups.empty(), store.dir() + ": only padding rows to train on");
  } else {
    groups.push_back(split.train);
  }
  std::uniform_int_distribution<size_t> pick_group(0, groups.size() - 1);
  auto draw = [&]() {
    const std::vector<int64_t>& g = groups[pick_group(rng)];
    return g[std::uniform_int_distribution<size_t>(0, g.size() - 1)(rng)];
  };
  std::vector<int64_t> batch_rows(static_cast<size_t>(o.batch));
  ProgressBar bar("sae train", o.steps, "steps");
  const auto start = std::chrono::steady_clock::now();
  double last_fvu = 1;
  for (int64_t step = 0; step < o.steps; ++step) {
    const int64_t decay_from = o.steps - o.steps / 5;
    const double lr = step < decay_from ? o.lr : o.lr * static_cast<double>(o.steps - step) / (o.steps - decay_from);
    for (auto& group : adam.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
    for (int64_t& r : batch_rows) r = draw();
    const torch::Tensor x = gather_rows(store, batch_rows.data(), o.batch) * c.input_scale;  // [B, width]
    torch::Tensor loss, err;
    {
      torch::AutoGradMode grad(true);
      const torch::Tensor pre = torch::addmm(m.b_enc, x - m.b_dec, m.w_enc);  // [B, features]
      auto [values, indices] = pre.topk(c.k, 1);
      values = torch::relu(values);
      const torch::Tensor z = torch::zeros_like(pre).scatter(1, indices, values);
      err = x - torch::addmm(m.b_dec, z, m.w_dec);
      loss = err.pow(2).sum(1).mean() / variance;
      // Which features fired: the dead ones (none for dead_after rows) get the AuxK loss — reconstruct the main
      // error from the top aux_k dead features, so they get gradient and come back.
      const torch::Tensor fired = (z.detach() > 0).any(0);
      rows_since_fired.add_(o.batch).masked_fill_(fired, 0);
      const torch::Tensor dead = rows_since_fired >= o.dead_after;
      const int64_t dead_count = dead.sum().item<int64_t>();
      if (dead_count > 0 && o.aux_coef > 0) {
        const torch::Tensor aux_pre = pre.masked_fill(dead.logical_not(), -std::numeric_limits<float>::infinity());
        auto [av, ai] = aux_pre.topk(std::min<int64_t>(c.aux_k, dead_count), 1);
        const torch::Tensor za = torch::zeros_like(pre).scatter(1, ai, torch::relu(av));
        const torch::Tensor e = err.detach();
        const torch::Tensor aux = (e - torch::mm(za, m.w_dec)).pow(2).sum(1).mean() /
                                  e.pow(2).sum(1).mean().clamp_min(1e-12);
        loss = loss + o.aux_coef * aux;
      }
      adam.zero_grad();
      loss.backward();
    }
    adam.step();
    m.w_dec /= m.w_dec.norm(2, 1, true).clamp_min(1e-8);
    if (step % 50 == 0 || step + 1 == o.steps) {
      const double batch_var = (x - x.mean(0)).pow(2).sum().item<double>();
      last_fvu = err.pow(2).sum().item<double>() / std::max(batch_var, 1e-30);
      if (report) report->curve.push_back({step, last_fvu});
      char status[64];
      std::snprintf(status, sizeof status, "unexplained %.3f", last_fvu);
      bar.set_status(status);
    }
    bar.advance();
  }
  bar.finish();
  for (torch::Tensor* t : {&m.w_enc, &m.b_enc, &m.w_dec, &m.b_dec}) *t = t->detach().set_requires_grad(false);
  if (report) {
    report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    report->samples_per_second = static_cast<double>(o.steps) * o.batch / std::max(report->seconds, 1e-9);
    report->dead_fraction = (rows_since_fired >= o.dead_after).to(torch::kFloat64).mean().item<double>();
    report->train_rows = static_cast<int64_t>(split.train.size());
    report->heldout_rows = static_cast<int64_t>(split.heldout.size());
  }
  return sae;
}

// ---- save / load -------------------------------------------------------------------------------------------------

void Sae::save(const std::string& dir) const {
  const Impl& m = *impl_;
  const SaeConfig& c = m.config;
  std::error_code ec;
  fs::create_directories(dir, ec);
  require(!ec, dir + ": cannot create the folder (" + ec.message() + ")");
  SafetensorsWriter w;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    const torch::Tensor x = t.detach().to(torch::kFloat32).contiguous();
    w.add(name, DType::kF32, x.sizes().vec(), x.data_ptr<float>(), static_cast<size_t>(x.numel()) * sizeof(float));
  };
  add("W_enc", m.w_enc);
  add("b_enc", m.b_enc);
  add("W_dec", m.w_dec);
  add("b_dec", m.b_dec);
  add("input_mean", torch::tensor(m.mean, torch::kFloat32));
  w.set_metadata("format", "vlascope.sae");
  w.write((fs::path(dir) / "sae.safetensors").string());
  const nlohmann::json j = {{"format", "vlascope.sae"},
                            {"version", 1},
                            {"architecture", "topk"},
                            {"hook", c.hook},
                            {"width", c.width},
                            {"features", c.features},
                            {"k", c.k},
                            {"input_scale", c.input_scale},
                            {"training",
                             {{"store", c.store},
                              {"checkpoint", c.checkpoint},
                              {"checkpoint_digest", c.checkpoint_digest},
                              {"steps", c.steps},
                              {"batch", c.batch},
                              {"train_rows", c.train_rows},
                              {"lr", c.lr},
                              {"aux_k", c.aux_k},
                              {"aux_coef", c.aux_coef},
                              {"holdout", c.holdout},
                              {"balance_kinds", c.balance_kinds},
                              {"seed", c.seed}}}};
  write_file_atomically((fs::path(dir) / "sae.json").string(), j.dump(2) + "\n");
}

Sae Sae::load(const std::string& dir) {
  const std::string json_path = (fs::path(dir) / "sae.json").string();
  const std::string weights_path = (fs::path(dir) / "sae.safetensors").string();
  require(fs::exists(json_path), dir + ": not a sparse autoencoder (no sae.json)");
  const nlohmann::json j = read_json_object(json_path);
  Sae sae;
  Impl& m = *sae.impl_;
  SaeConfig& c = m.config;
  try {
    require(j.at("format").get<std::string>() == "vlascope.sae", json_path + ": \"format\" is not \"vlascope.sae\"");
    c.hook = j.at("hook").get<std::string>();
    c.width = j.at("width").get<int64_t>();
    c.features = j.at("features").get<int64_t>();
    c.k = j.at("k").get<int>();
    c.input_scale = j.at("input_scale").get<double>();
    const nlohmann::json t = j.value("training", nlohmann::json::object());
    c.store = t.value("store", "");
    c.checkpoint = t.value("checkpoint", "");
    c.checkpoint_digest = t.value("checkpoint_digest", "");
    c.steps = t.value("steps", int64_t{0});
    c.batch = t.value("batch", int64_t{0});
    c.train_rows = t.value("train_rows", int64_t{0});
    c.lr = t.value("lr", 0.0);
    c.aux_k = t.value("aux_k", 0);
    c.aux_coef = t.value("aux_coef", 0.0);
    c.holdout = t.value("holdout", 0);
    c.balance_kinds = t.value("balance_kinds", false);
    c.seed = t.value("seed", uint64_t{0});
  } catch (const nlohmann::json::exception& e) {
    throw Error(json_path + ": " + e.what());
  }
  require(c.width > 0 && c.features > 0 && c.k >= 1 && c.k <= c.features && c.input_scale > 0,
          json_path + ": needs width > 0, features > 0, 1 ≤ k ≤ features and input_scale > 0");
  parse_patch_spec(c.hook);  // an Error naming the spec if it is not one
  const SafetensorsFile file(weights_path);
  auto read = [&](const std::string& name, std::vector<int64_t> shape) {
    const TensorInfo& info = file.at(name);
    require(info.shape == shape, weights_path + ": " + name + " has the wrong shape for width " +
                                     std::to_string(c.width) + " and " + std::to_string(c.features) + " features");
    const std::vector<float> v = file.to_float(info);
    return torch::tensor(v, torch::kFloat32).view(shape);
  };
  m.w_enc = read("W_enc", {c.width, c.features});
  m.b_enc = read("b_enc", {c.features});
  m.w_dec = read("W_dec", {c.features, c.width});
  m.b_dec = read("b_dec", {c.width});
  m.mean = to_vector(read("input_mean", {c.width}));
  return sae;
}

std::vector<Sae::Code> Sae::encode(const float* x, int64_t rows) const {
  torch::NoGradGuard no_grad;
  const Impl& m = *impl_;
  const torch::Tensor in = torch::from_blob(const_cast<float*>(x), {rows, m.config.width}, torch::kFloat32);
  const auto [values, indices] = m.encode(in * m.config.input_scale);
  std::vector<Code> out(static_cast<size_t>(rows));
  const auto va = values.accessor<float, 2>();
  const auto ia = indices.accessor<int64_t, 2>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < values.size(1); ++j)
      if (va[r][j] > 0) {
        out[static_cast<size_t>(r)].features.push_back(static_cast<int32_t>(ia[r][j]));
        out[static_cast<size_t>(r)].values.push_back(va[r][j]);
      }
  return out;
}

std::vector<float> Sae::reconstruct(const float* x, int64_t rows) const {
  torch::NoGradGuard no_grad;
  const Impl& m = *impl_;
  const torch::Tensor in = torch::from_blob(const_cast<float*>(x), {rows, m.config.width}, torch::kFloat32);
  return to_vector(m.reconstruct(in));
}

std::vector<float> Sae::decoder_direction(int feature) const {
  const Impl& m = *impl_;
  require(feature >= 0 && feature < m.config.features,
          "sae: feature " + std::to_string(feature) + " is not one of the " + std::to_string(m.config.features));
  return to_vector(m.w_dec[feature] / m.config.input_scale);
}

SaeEvaluation evaluate_sae(const Sae& sae, const ActivationStore& store, const std::vector<int64_t>& rows) {
  torch::NoGradGuard no_grad;
  const Sae::Impl& m = sae.impl();
  require(store.width() == m.config.width, store.dir() + ": rows of " + std::to_string(store.width()) +
                                               " values, the SAE reads " + std::to_string(m.config.width));
  SaeEvaluation out;
  out.rows = static_cast<int64_t>(rows.size());
  require(out.rows > 0, store.dir() + ": no rows to evaluate on");
  torch::Tensor active = torch::zeros({m.config.features}, torch::kFloat64);
  // Per kind of row and for all rows together: Σ|x − x̂|², Σ|x|², Σx and the row count.
  struct Sums {
    double err = 0, sq = 0;
    torch::Tensor sum;
    int64_t rows = 0;
    void add(const torch::Tensor& x64, const torch::Tensor& diff64) {
      err += diff64.pow(2).sum().item<double>();
      sq += x64.pow(2).sum().item<double>();
      sum = sum.defined() ? sum + x64.sum(0) : x64.sum(0);
      rows += x64.size(0);
    }
    double explained() const {
      const double total = sq - sum.pow(2).sum().item<double>() / static_cast<double>(rows);
      return 1 - err / std::max(total, 1e-30);
    }
  };
  Sums all;
  std::map<RowKind, Sums> kinds;
  double l0 = 0;
  constexpr int64_t kBatch = 4096;
  for (int64_t begin = 0; begin < out.rows; begin += kBatch) {
    const int64_t len = std::min(kBatch, out.rows - begin);
    const torch::Tensor x = gather_rows(store, rows.data() + begin, len);
    const double s = m.config.input_scale;
    const auto [values, indices] = m.encode(x * s);
    const torch::Tensor xhat = m.decode(values, indices) / s;
    const torch::Tensor x64 = x.to(torch::kFloat64), diff64 = (x - xhat).to(torch::kFloat64);
    all.add(x64, diff64);
    std::map<RowKind, std::vector<int64_t>> of_kind;
    for (int64_t r = 0; r < len; ++r) of_kind[store.meta(rows[static_cast<size_t>(begin + r)]).kind].push_back(r);
    for (const auto& [kind, which] : of_kind) {
      const torch::Tensor idx = torch::tensor(which, torch::kInt64);
      kinds[kind].add(x64.index_select(0, idx), diff64.index_select(0, idx));
    }
    const torch::Tensor on = values > 0;
    l0 += on.sum().item<double>();
    active.index_add_(0, indices.flatten(), on.flatten().to(torch::kFloat64));
  }
  out.variance_explained = all.explained();
  for (const auto& [kind, sums] : kinds) out.by_kind[kind] = {sums.rows, sums.rows > 1 ? sums.explained() : 0};
  out.mean_l0 = l0 / static_cast<double>(out.rows);
  const torch::Tensor freq = active / static_cast<double>(out.rows);
  out.frequency.assign(freq.data_ptr<double>(), freq.data_ptr<double>() + freq.numel());
  for (double f : out.frequency) {
    out.dead += f == 0;
    out.dense += f > 0.1;
  }
  return out;
}

// ---- capture -----------------------------------------------------------------------------------------------------

namespace {

RowKind row_kind(const HookContext& ctx, bool expert, int64_t position) {
  if (expert) return RowKind::kAction;
  if (position < ctx.words_begin) return RowKind::kImage;
  if (position < ctx.words_end) return RowKind::kWord;
  if (position == ctx.state_index) return RowKind::kState;
  return RowKind::kPadding;
}

// The dataset frames a capture (or a splice check) runs: every stride-th frame of the first episodes.
std::vector<std::pair<int, int>> chosen_frames(const DatasetReader& dataset, const CaptureOptions& o) {
  std::vector<std::pair<int, int>> frames;
  const int episodes = o.episodes > 0 ? std::min(o.episodes, dataset.num_episodes()) : dataset.num_episodes();
  for (int e = 0; e < episodes; ++e)
    for (int i = 0; i < dataset.num_frames(e); i += std::max(1, o.stride)) frames.push_back({e, i});
  return frames;
}

bool step_chosen(const PatchSpec& spec, const HookContext& ctx) {
  return spec.point.stream != HookStream::kExpert || spec.steps.empty() ||
         std::binary_search(spec.steps.begin(), spec.steps.end(), ctx.step);
}

}  // namespace

namespace {

// The rows a spec names, copied out of every forward pass (batch 1) with the metadata of what is running.
class RowCapture {
 public:
  RowCapture(Policy& policy, const PatchSpec& spec) : policy_(policy), spec_(spec) {
    validate_patch_spec(spec_, policy);
    require(spec_.head < 0, "sae capture '" + spec_.text + "': a head is chosen at attn.heads for ablation; capture "
                                                          "the whole point");
    const bool expert = spec_.point.stream == HookStream::kExpert;
    handle_ = policy.hooks().add(spec_.point, [this, expert](const HookContext& ctx, at::Tensor& act) {
      if (ctx.pass == ForwardPass::kTrain || !step_chosen(spec_, ctx)) return;
      require(act.size(0) == 1, "sae capture: one frame per call");
      const torch::Tensor a = act.detach().select(0, 0).to(torch::kFloat32).contiguous();  // [L, D]
      require(width_ < 0 || a.size(1) == width_, "sae capture: the hook's width changed");
      width_ = a.size(1);
      for (const auto& [begin, len] : spec_rows(spec_, policy_, ctx, a.size(0))) {
        const float* p = a.data_ptr<float>() + begin * width_;
        values_.insert(values_.end(), p, p + len * width_);
        for (int64_t r = begin; r < begin + len; ++r) {
          ActivationRow row = current;
          row.position = static_cast<int32_t>(r);
          row.step = expert ? ctx.step : -1;
          row.kind = row_kind(ctx, expert, r);
          rows_.push_back(row);
        }
      }
    });
  }
  RowCapture(const RowCapture&) = delete;
  RowCapture& operator=(const RowCapture&) = delete;

  ActivationRow current;  // episode, frame, phase and variant of what runs next
  std::vector<ActivationRow>& rows() { return rows_; }
  // Appends what was captured since the last call to the store (opened at the first rows) and forgets it.
  void flush(std::unique_ptr<ActivationStoreWriter>& out, const std::string& out_dir) {
    if (!rows_.empty()) {
      if (!out) out = std::make_unique<ActivationStoreWriter>(out_dir, width_);
      out->append(values_.data(), rows_);
    }
    values_.clear();
    rows_.clear();
  }

 private:
  Policy& policy_;
  PatchSpec spec_;
  HookHandle handle_;
  int64_t width_ = -1;
  std::vector<float> values_;
  std::vector<ActivationRow> rows_;
};

StoreInfo store_info(Policy& policy, const std::string& spec, const std::string& checkpoint, const std::string& dataset,
                     const std::string& prompt, std::vector<std::string> variants, int frames) {
  StoreInfo info;
  info.hook = spec;
  info.checkpoint = checkpoint;
  if (!checkpoint.empty() && fs::exists(fs::path(checkpoint) / "model.safetensors"))
    info.checkpoint_digest = file_digest((fs::path(checkpoint) / "model.safetensors").string());
  info.dataset = dataset;
  info.prompt = prompt;
  info.cameras = policy.cameras();
  info.grid = policy.config().image_grid();
  info.tokens_per_camera = info.grid * info.grid;
  info.variants = std::move(variants);
  info.frames = frames;
  return info;
}

}  // namespace

StoreInfo capture_activations(Policy& policy, const DatasetReader& dataset, const CaptureOptions& o,
                              const std::string& out_dir) {
  torch::NoGradGuard no_grad;
  std::vector<std::string> variants;
  for (int e = 0; e < dataset.num_episodes(); ++e) {
    const std::string& v = dataset.info(e).variant;
    if (!v.empty() && std::find(variants.begin(), variants.end(), v) == variants.end()) variants.push_back(v);
  }
  RowCapture capture(policy, parse_patch_spec(o.spec));
  const std::vector<std::pair<int, int>> frames = chosen_frames(dataset, o);
  require(!frames.empty(), "sae capture: the dataset has no frames to run");
  std::unique_ptr<ActivationStoreWriter> out;
  ProgressBar bar("sae capture", static_cast<int64_t>(frames.size()), "frames");
  int64_t chunk = 0;
  for (const auto& [e, i] : frames) {
    const Frame frame = dataset.frame(e, i);
    const EpisodeInfo& ei = dataset.info(e);
    capture.current = {};
    capture.current.episode = e;
    capture.current.frame = i;
    capture.current.phase = static_cast<int32_t>(frame.phase);
    const auto v = std::find(variants.begin(), variants.end(), ei.variant);
    capture.current.variant = v == variants.end() ? -1 : static_cast<int32_t>(v - variants.begin());
    policy.predict_chunk(frame_input(frame, o.prompt.empty() ? ei.instruction : o.prompt), o.seed, chunk++);
    capture.flush(out, out_dir);
    bar.advance();
    bar.set_status(std::to_string(out ? out->count() : 0) + " rows");
  }
  bar.finish();
  require(out != nullptr, "sae capture '" + o.spec + "': no rows were captured");
  StoreInfo info = store_info(policy, o.spec, o.checkpoint, fs::path(dataset.path(0)).parent_path().string(), o.prompt,
                              variants, static_cast<int>(frames.size()));
  out->finish(info);
  return info;
}

StoreInfo capture_rollout_activations(Policy& policy, Robot& robot, const RolloutCaptureOptions& o,
                                      const std::string& out_dir) {
  torch::NoGradGuard no_grad;
  require(o.episodes >= 1, "sae capture: --rollouts must be at least 1");
  require(!o.prompts.empty(), "sae capture: no prompt to run the rollouts with");
  std::vector<std::string> variants;
  for (const auto& [variant, prompt] : o.prompts)
    if (!variant.empty() && std::find(variants.begin(), variants.end(), variant) == variants.end())
      variants.push_back(variant);
  RowCapture capture(policy, parse_patch_spec(o.spec));
  std::unique_ptr<ActivationStoreWriter> out;
  ProgressBar bar("sae capture", o.episodes, "rollouts");
  int calls = 0;
  for (int k = 0; k < o.episodes; ++k) {
    const auto& [variant, prompt] = o.prompts[static_cast<size_t>(k) % o.prompts.size()];
    const auto v = std::find(variants.begin(), variants.end(), variant);
    capture.current = {};
    capture.current.episode = k;
    capture.current.variant = v == variants.end() ? -1 : static_cast<int32_t>(v - variants.begin());
    RolloutOptions ro = o.rollout;
    ro.task = prompt;
    // The rows of a policy call belong to the step that made it: its index and time, the phase once the episode's
    // lift segment is known.
    std::vector<double> row_time;
    size_t stamped = 0;
    const RolloutResult r = run_rollout(robot, policy, o.first_seed + static_cast<uint64_t>(k), ro,
                                        [&](int index, const Observation&, const RolloutStep& step) {
                                          for (; stamped < capture.rows().size(); ++stamped) {
                                            capture.rows()[stamped].frame = index;
                                            row_time.push_back(step.time);
                                          }
                                          return true;
                                        });
    const LiftSegment lift = find_lift_segment(r.ee_trajectory());
    for (size_t i = 0; i < capture.rows().size(); ++i) {
      const std::string phase = i < row_time.size() ? phase_at(lift, row_time[i]) : "";
      capture.rows()[i].phase = static_cast<int32_t>(phase.empty() ? Phase::kUnknown : parse_task_phase(phase, "phase"));
    }
    calls += r.model_calls;
    capture.flush(out, out_dir);
    bar.advance();
    bar.set_status(std::to_string(out ? out->count() : 0) + " rows");
  }
  bar.finish();
  require(out != nullptr, "sae capture '" + o.spec + "': no rows were captured");
  std::string prompts;
  for (const auto& [variant, prompt] : o.prompts) prompts += (prompts.empty() ? "" : ";") + variant + "=" + prompt;
  StoreInfo info = store_info(policy, o.spec, o.checkpoint, "rollouts:" + robot.name(), prompts, variants, calls);
  out->finish(info);
  return info;
}

// ---- splicing ----------------------------------------------------------------------------------------------------

struct SaeSplice::Impl {
  Policy& policy;
  const Sae& sae;
  PatchSpec spec;  // the SAE's hook, its rows as set_rows chose
  std::vector<TokenRegion> sae_rows;  // the kinds of row the SAE reads
  Mode mode = Mode::kOff;
  std::vector<std::pair<int, float>> clamp;
  int64_t rows_written = 0;
  HookHandle handle;
  torch::Tensor mean;  // [width], input units
};

SaeSplice::SaeSplice(Policy& policy, const Sae& sae) : impl_(new Impl{policy, sae, parse_patch_spec(sae.config().hook)}) {
  Impl& m = *impl_;
  validate_patch_spec(m.spec, policy);
  m.sae_rows = m.spec.tokens;
  m.mean = torch::tensor(sae.input_mean(), torch::kFloat32);
  m.handle = policy.hooks().add(m.spec.point, [this](const HookContext& ctx, at::Tensor& act) {
    Impl& m = *impl_;
    if (m.mode == Mode::kOff || ctx.pass == ForwardPass::kTrain || !step_chosen(m.spec, ctx)) return;
    const Sae::Impl& s = m.sae.impl();
    const int64_t width = act.size(2);
    require(width == s.config.width, "sae splice '" + s.config.hook + "': the hook has " + std::to_string(width) +
                                         " values per row, the SAE reads " + std::to_string(s.config.width));
    for (const auto& [begin, len] : spec_rows(m.spec, m.policy, ctx, act.size(1))) {
      const torch::Tensor view = act.narrow(1, begin, len);                   // [B, len, width]
      const torch::Tensor x = view.reshape({-1, width}).to(torch::kFloat32);  // [B·len, width]
      torch::Tensor y;
      switch (m.mode) {
        case Mode::kReconstruct: y = s.reconstruct(x); break;
        case Mode::kMean: y = m.mean.expand_as(x); break;
        case Mode::kClamp: {
          // f_i(x) as the SAE computes it (0 outside the top k), then x + (value − f_i) d_i.
          const double scale = s.config.input_scale;
          const auto [values, indices] = s.encode(x * scale);
          y = x.clone();
          for (const auto& [feature, value] : m.clamp) {
            const torch::Tensor current = (values * (indices == feature)).sum(1, true);  // [N, 1]
            y += (value - current) * (s.w_dec[feature] / scale).view({1, width});
          }
          break;
        }
        case Mode::kOff: return;
      }
      view.copy_(y.view_as(view).to(act.scalar_type()));
      m.rows_written += x.size(0);
    }
  });
}

SaeSplice::~SaeSplice() = default;
void SaeSplice::set_mode(Mode mode) { impl_->mode = mode; }
void SaeSplice::set_clamp(std::vector<std::pair<int, float>> features) {
  for (const auto& [f, v] : features)
    require(f >= 0 && f < impl_->sae.config().features,
            "sae clamp: feature " + std::to_string(f) + " is not one of the " +
                std::to_string(impl_->sae.config().features));
  impl_->clamp = std::move(features);
}
void SaeSplice::set_rows(const std::vector<TokenRegion>& rows) {
  Impl& m = *impl_;
  if (rows.empty()) {
    m.spec.tokens = m.sae_rows;
    return;
  }
  require(m.spec.point.stream == HookStream::kVlm && m.spec.row_begin < 0,
          "sae splice: rows are chosen by kind only for a VLM SAE that reads kinds of row (" + m.sae.config().hook + ")");
  auto reads = [&](TokenRegion r) {
    return std::find(m.sae_rows.begin(), m.sae_rows.end(), r) != m.sae_rows.end();
  };
  for (TokenRegion r : rows)
    require(reads(TokenRegion::kAll) || reads(r) || (r == TokenRegion::kLastWord && reads(TokenRegion::kWords)),
            std::string("sae splice: the SAE (") + m.sae.config().hook + ") was not trained on " +
                token_region_name(r) + " rows");
  m.spec.tokens = rows;
}
int64_t SaeSplice::rows_written() const { return impl_->rows_written; }

SpliceSetting parse_splice_setting(const std::string& full_text, const std::string& where) {
  SpliceSetting s;
  const size_t at = full_text.rfind('@');
  const std::string text = full_text.substr(0, at);
  if (at != std::string::npos) {
    for (const std::string& name : split_nonempty(full_text.substr(at + 1), '+')) {
      try {
        s.rows.push_back(parse_token_region(name));
      } catch (const Error&) {
        throw Error(where + ": '" + name + "' is not a kind of row (images, words, last_word, state)");
      }
    }
    require(!s.rows.empty(), where + ": '" + full_text + "' names no row after '@'");
  }
  if (text == "reconstruct") return s;
  if (text == "mean") {
    s.mode = SaeSplice::Mode::kMean;
    return s;
  }
  require(text.rfind("clamp:", 0) == 0, where + ": '" + text + "' is not reconstruct, mean or clamp:F=V,…");
  s.mode = SaeSplice::Mode::kClamp;
  for (const std::string& item : split_nonempty(text.substr(6), ',')) {
    const size_t eq = item.find('=');
    size_t used_f = 0, used_v = 0;
    int feature = -1;
    float value = 0;
    try {
      if (eq != std::string::npos) {
        feature = std::stoi(item.substr(0, eq), &used_f);
        value = std::stof(item.substr(eq + 1), &used_v);
      }
    } catch (const std::exception&) {
      used_f = 0;
    }
    require(eq != std::string::npos && used_f == eq && used_v == item.size() - eq - 1 && feature >= 0 &&
                std::isfinite(value),
            where + ": '" + item + "' is not F=V (a feature number and the value it is held at)");
    s.clamp.push_back({feature, value});
  }
  require(!s.clamp.empty(), where + ": clamp names no feature (clamp:F=V,…)");
  return s;
}

void apply_splice_setting(SaeSplice& splice, const SpliceSetting& setting) {
  splice.set_rows(setting.rows);
  splice.set_clamp(setting.clamp);
  splice.set_mode(setting.mode);
}

SpliceError splice_action_error(Policy& policy, const Sae& sae, const DatasetReader& dataset,
                                const CaptureOptions& o) {
  SaeSplice splice(policy, sae);
  SpliceError out;
  const std::vector<std::pair<int, int>> frames = chosen_frames(dataset, o);
  require(!frames.empty(), "sae splice: the dataset has no frames to run");
  ProgressBar bar("sae splice (open loop)", static_cast<int64_t>(frames.size()), "frames");
  double spliced = 0, ablated = 0;
  int64_t values = 0, chunk = 0;
  for (const auto& [e, i] : frames) {
    const PolicyInput in = frame_input(dataset.frame(e, i), o.prompt.empty() ? dataset.info(e).instruction : o.prompt);
    splice.set_mode(SaeSplice::Mode::kOff);
    const auto original = policy.predict_chunk(in, o.seed, chunk);
    splice.set_mode(SaeSplice::Mode::kReconstruct);
    const auto with_sae = policy.predict_chunk(in, o.seed, chunk);
    splice.set_mode(SaeSplice::Mode::kMean);
    const auto with_mean = policy.predict_chunk(in, o.seed, chunk);
    ++chunk;
    for (size_t t = 0; t < original.size(); ++t)
      for (size_t j = 0; j < original[t].size(); ++j) {
        spliced += std::abs(with_sae[t][j] - original[t][j]);
        ablated += std::abs(with_mean[t][j] - original[t][j]);
        ++values;
      }
    bar.advance();
  }
  bar.finish();
  out.frames = static_cast<int>(frames.size());
  out.spliced = spliced / std::max<int64_t>(values, 1);
  out.mean_ablated = ablated / std::max<int64_t>(values, 1);
  return out;
}

// ---- features ----------------------------------------------------------------------------------------------------

std::vector<SaeFeature> feature_statistics(const Sae& sae, const ActivationStore& store, int top_rows) {
  torch::NoGradGuard no_grad;
  const Sae::Impl& m = sae.impl();
  const int64_t n = m.config.features;
  require(store.width() == m.config.width, store.dir() + ": rows of " + std::to_string(store.width()) +
                                               " values, the SAE reads " + std::to_string(m.config.width));
  constexpr int kPhases = 5;
  std::vector<double> count(n), sum(n), maxv(n);
  std::vector<std::vector<double>> phase_sum(kPhases, std::vector<double>(n));
  std::vector<int64_t> phase_rows(kPhases);
  // Per episode: sums over its lift-phase rows, its other rows (features × 2) and their row counts.
  struct EpisodeSums {
    std::vector<double> lift, other;
    int64_t lift_rows = 0, other_rows = 0;
    int variant = -1;
  };
  std::map<int, EpisodeSums> episodes;
  using Entry = std::pair<float, int64_t>;
  std::vector<std::vector<Entry>> top(n);  // min-heaps by activation
  const auto greater = [](const Entry& a, const Entry& b) { return a.first > b.first; };
  constexpr int64_t kBatch = 4096;
  const int lift = static_cast<int>(Phase::kLift);
  ProgressBar bar("sae features", store.count(), "rows");
  for (int64_t begin = 0; begin < store.count(); begin += kBatch) {
    const int64_t len = std::min(kBatch, store.count() - begin);
    // Rows begin … begin + len lie side by side in the mapped store: read in place.
    const torch::Tensor x = torch::from_blob(const_cast<float*>(store.row(begin)), {len, store.width()}, torch::kFloat32);
    const auto [values, indices] = m.encode(x * m.config.input_scale);
    const auto va = values.accessor<float, 2>();
    const auto ia = indices.accessor<int64_t, 2>();
    for (int64_t r = 0; r < len; ++r) {
      const int64_t row = begin + r;
      const ActivationRow& meta = store.meta(row);
      const int phase = std::clamp(meta.phase, 0, kPhases - 1);
      ++phase_rows[phase];
      EpisodeSums& es = episodes[meta.episode];
      if (es.lift.empty()) es.lift.assign(n, 0), es.other.assign(n, 0), es.variant = meta.variant;
      (phase == lift ? es.lift_rows : es.other_rows)++;
      for (int64_t j = 0; j < values.size(1); ++j) {
        const float v = va[r][j];
        if (v <= 0) continue;
        const int64_t f = ia[r][j];
        count[f] += 1;
        sum[f] += v;
        maxv[f] = std::max<double>(maxv[f], v);
        phase_sum[phase][f] += v;
        (phase == lift ? es.lift : es.other)[f] += v;
        std::vector<Entry>& heap = top[f];
        if (static_cast<int>(heap.size()) < top_rows) {
          heap.push_back({v, row});
          std::push_heap(heap.begin(), heap.end(), greater);
        } else if (top_rows > 0 && v > heap.front().first) {
          std::pop_heap(heap.begin(), heap.end(), greater);
          heap.back() = {v, row};
          std::push_heap(heap.begin(), heap.end(), greater);
        }
      }
    }
    bar.advance(len);
  }
  bar.finish();
  const auto& variants = store.info().variants;
  auto variant_index = [&](const char* name) {
    const auto it = std::find(variants.begin(), variants.end(), name);
    return it == variants.end() ? -2 : static_cast<int>(it - variants.begin());
  };
  const int high = variant_index("high"), low = variant_index("low"), fast = variant_index("fast"),
            slow = variant_index("slow");
  std::vector<SaeFeature> out(static_cast<size_t>(n));
  const double rows = static_cast<double>(std::max<int64_t>(store.count(), 1));
  for (int64_t f = 0; f < n; ++f) {
    SaeFeature& s = out[static_cast<size_t>(f)];
    s.feature = static_cast<int>(f);
    s.frequency = count[f] / rows;
    s.mean_active = count[f] > 0 ? sum[f] / count[f] : 0;
    s.max_activation = maxv[f];
    s.top_rows = top[f];
    std::sort(s.top_rows.begin(), s.top_rows.end(), greater);
    for (int p = 0; p < kPhases; ++p) s.phase_mean.push_back(phase_rows[p] ? phase_sum[p][f] / phase_rows[p] : 0);
    std::vector<double> lift_minus_other, hi, lo, fa, sl;
    for (const auto& [e, es] : episodes) {
      const double lift_mean = es.lift_rows ? es.lift[f] / es.lift_rows : 0;
      const double other_mean = es.other_rows ? es.other[f] / es.other_rows : 0;
      const double all_mean = (es.lift[f] + es.other[f]) / std::max<int64_t>(es.lift_rows + es.other_rows, 1);
      if (es.lift_rows && es.other_rows) lift_minus_other.push_back(lift_mean - other_mean);
      if (es.lift_rows && es.variant == high) hi.push_back(lift_mean);
      if (es.lift_rows && es.variant == low) lo.push_back(lift_mean);
      if (es.variant == fast) fa.push_back(all_mean);
      if (es.variant == slow) sl.push_back(all_mean);
    }
    if (lift_minus_other.size() >= 2) {
      const double sd = sample_sd(lift_minus_other);
      s.lift_d = sd > 0 ? mean(lift_minus_other) / sd : 0;
    }
    auto compare = [](const std::vector<double>& a, const std::vector<double>& b, double* g, double* p) {
      if (a.size() < 2 || b.size() < 2) return;
      if (sample_sd(a) == 0 && sample_sd(b) == 0) return;  // neither group ever fires it
      *g = hedges_g(a, b);
      *p = welch_t_test(a, b).p;
    };
    compare(hi, lo, &s.high_low_g, &s.high_low_p);
    compare(fa, sl, &s.fast_slow_g, &s.fast_slow_p);
  }
  return out;
}

void label_with_tokens(std::vector<SaeFeature>& stats, const Sae& sae, Policy& policy, int k) {
  const PatchSpec spec = parse_patch_spec(sae.config().hook);
  if (spec.point.stream != HookStream::kVlm) return;
  const SmolVLA& model = policy.model();
  const HookSite site = spec.point.site;
  const bool residual = site == HookSite::kResidPost || site == HookSite::kResidMid || site == HookSite::kMlpOut ||
                        site == HookSite::kAttnOut || site == HookSite::kEmbed;
  if (!residual && site != HookSite::kMlpPost) return;  // attn.heads: no single basis to read words in
  torch::NoGradGuard no_grad;
  for (SaeFeature& s : stats) {
    std::vector<float> direction = sae.decoder_direction(s.feature);
    if (site == HookSite::kMlpPost) {
      const torch::Tensor down = model.weights().vlm_layers[static_cast<size_t>(spec.point.layer)].down.weight.to(
          torch::kFloat32);  // [D, I]
      direction = to_vector(torch::mv(down, torch::tensor(direction, torch::kFloat32)));
    }
    s.top_tokens = direction_top_tokens(model, policy.tokenizer(), direction, k, /*final_norm=*/false);
  }
}

Image feature_frames_figure(const SaeFeature& stats, const ActivationStore& store, const DatasetReader& dataset,
                            int input_width, int input_height, int max_frames) {
  const StoreInfo& info = store.info();
  std::vector<Image> tiles;
  for (const auto& [value, row] : stats.top_rows) {
    if (static_cast<int>(tiles.size()) >= max_frames) break;
    const ActivationRow& meta = store.meta(row);
    const Frame frame = dataset.frame(meta.episode, meta.frame);
    int camera = 0, cell = -1;
    if (meta.kind == RowKind::kImage && info.tokens_per_camera > 0) {
      camera = meta.position / info.tokens_per_camera;
      cell = meta.position % info.tokens_per_camera;
    }
    require(camera < static_cast<int>(info.cameras.size()), store.dir() + ": row " + std::to_string(row) +
                                                                " names a camera the store does not list");
    const auto image = frame.images.find(info.cameras[static_cast<size_t>(camera)]);
    require(image != frame.images.end(), dataset.path(meta.episode) + ": frame " + std::to_string(meta.frame) +
                                             " has no camera '" + info.cameras[static_cast<size_t>(camera)] + "'");
    Image tile = resize(image->second, image->second.width * 2, image->second.height * 2);
    if (cell >= 0 && info.grid > 0) {
      // The cell's edges in the model input, back to the (2×) frame.
      const PadGeometry g = resize_with_pad_geometry(image->second.width, image->second.height, input_width,
                                                     input_height);
      const double cw = static_cast<double>(input_width) / info.grid, ch = static_cast<double>(input_height) / info.grid;
      const int cx = cell % info.grid, cy = cell / info.grid;
      const int x0 = std::clamp(static_cast<int>(2 * g.frame_x(cx * cw)), 0, tile.width - 1);
      const int x1 = std::clamp(static_cast<int>(2 * g.frame_x((cx + 1) * cw)) - 1, 0, tile.width - 1);
      const int y0 = std::clamp(static_cast<int>(2 * g.frame_y(cy * ch)), 0, tile.height - 1);
      const int y1 = std::clamp(static_cast<int>(2 * g.frame_y((cy + 1) * ch)) - 1, 0, tile.height - 1);
      for (int t = 0; t < 2; ++t)
        for (int x = x0; x <= x1; ++x)
          for (int y : {std::min(y0 + t, y1), std::max(y1 - t, y0)}) std::memcpy(tile.at(x, y), "\xff\xe0\x00", 3);
      for (int t = 0; t < 2; ++t)
        for (int y = y0; y <= y1; ++y)
          for (int x : {std::min(x0 + t, x1), std::max(x1 - t, x0)}) std::memcpy(tile.at(x, y), "\xff\xe0\x00", 3);
    }
    char caption[96];
    std::snprintf(caption, sizeof caption, "%.2f ep %d fr %d %s %s", value, meta.episode, meta.frame,
                  phase_name(static_cast<Phase>(meta.phase)), row_kind_name(meta.kind));
    tiles.push_back(with_caption(tile, caption));
  }
  return hstack(tiles, 4);
}

}  // namespace vlascope
