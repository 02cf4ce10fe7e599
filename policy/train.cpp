#include "policy/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "common/json_io.h"
#include "common/plot.h"
#include "common/progress.h"
#include "dataset/dataset.h"
#include "policy/captions.h"
#include "policy/checkpoint.h"
#include "policy/preprocess.h"
#include "policy/tokenizer.h"

namespace vlascope {

double lr_multiplier(int step, int total_steps, int warmup_steps, int decay_steps, double peak_lr, double floor_lr) {
  if (total_steps > 0 && total_steps < decay_steps) {
    warmup_steps = static_cast<int>(warmup_steps * (static_cast<double>(total_steps) / decay_steps));
    decay_steps = total_steps;
  }
  if (step < warmup_steps) {
    if (step <= 0) return 1.0 / (warmup_steps + 1);
    const double frac = 1.0 - static_cast<double>(step) / warmup_steps;
    return (1.0 / (warmup_steps + 1) - 1.0) * frac + 1.0;
  }
  const double s = std::min(step, decay_steps);
  const double cosine = 0.5 * (1 + std::cos(M_PI * s / decay_steps));
  const double alpha = floor_lr / peak_lr;
  return (1 - alpha) * cosine + alpha;
}

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;
constexpr int kStateDims = 6;

// ---------------------------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------------------------

struct Split {
  std::vector<int> train, eval;  // episode indices
  std::vector<std::pair<int, int>> train_frames;  // (episode, frame), for uniform frame sampling
};

Split split_episodes(const DatasetReader& reader, double holdout, uint64_t seed) {
  std::vector<int> episodes;
  for (int e = 0; e < reader.num_episodes(); ++e)
    if (reader.info(e).success) episodes.push_back(e);
  require(episodes.size() >= 2, "training needs at least two successful episodes in the dataset");
  std::mt19937_64 rng(seed ^ 0x5eedULL);
  std::shuffle(episodes.begin(), episodes.end(), rng);
  const size_t n_eval = std::max<size_t>(1, static_cast<size_t>(std::lround(holdout * episodes.size())));
  Split s;
  s.eval.assign(episodes.begin(), episodes.begin() + static_cast<long>(n_eval));
  s.train.assign(episodes.begin() + static_cast<long>(n_eval), episodes.end());
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.eval.begin(), s.eval.end());
  for (int e : s.train)
    for (int f = 0; f < reader.num_frames(e); ++f) s.train_frames.push_back({e, f});
  return s;
}

// Mean / std / min / max of state and action over every frame of the training episodes.
NormalizationStats dataset_stats(const DatasetReader& reader, const std::vector<int>& episodes) {
  std::vector<double> sum_s(kStateDims), sq_s(kStateDims), sum_a(kStateDims), sq_a(kStateDims);
  std::vector<float> min_s(kStateDims, 1e30f), max_s(kStateDims, -1e30f), min_a(kStateDims, 1e30f),
      max_a(kStateDims, -1e30f);
  int64_t n = 0;
  for (int e : episodes) {
    for (const Frame& f : reader.trajectory(e)) {
      for (int i = 0; i < kStateDims; ++i) {
        sum_s[i] += f.state[i], sq_s[i] += double(f.state[i]) * f.state[i];
        sum_a[i] += f.action[i], sq_a[i] += double(f.action[i]) * f.action[i];
        min_s[i] = std::min(min_s[i], f.state[i]), max_s[i] = std::max(max_s[i], f.state[i]);
        min_a[i] = std::min(min_a[i], f.action[i]), max_a[i] = std::max(max_a[i], f.action[i]);
      }
      ++n;
    }
  }
  NormalizationStats stats;
  auto fill = [&](FeatureStats& f, const std::vector<double>& sum, const std::vector<double>& sq,
                  const std::vector<float>& lo, const std::vector<float>& hi) {
    for (int i = 0; i < kStateDims; ++i) {
      const double mean = sum[i] / n;
      f.mean.push_back(static_cast<float>(mean));
      f.std.push_back(static_cast<float>(std::sqrt(std::max(0.0, sq[i] / n - mean * mean))));
    }
    f.min = lo;
    f.max = hi;
  };
  fill(stats.features["observation.state"], sum_s, sq_s, min_s, max_s);
  fill(stats.features["action"], sum_a, sq_a, min_a, max_a);
  stats.source = "dataset statistics";
  return stats;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Produces batches on a background thread (HDF5 reads and PNG-free image decoding overlap the training step).
// Batch k depends only on (seed, k), so a resumed run sees the same batches.
template <typename Batch>
class Prefetcher {
 public:
  Prefetcher(std::function<Batch(int64_t)> make, int64_t first, int depth = 2)
      : make_(std::move(make)), next_(first), depth_(depth), thread_([this] { run(); }) {}
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Batch next() {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [&] { return !queue_.empty() || error_; });
    if (error_) std::rethrow_exception(error_);
    Batch b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return b;
  }

 private:
  void run() {
    torch::NoGradGuard no_grad;  // not InferenceMode: the batches feed autograd
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || static_cast<int>(queue_.size()) < depth_; });
        if (stop_) return;
      }
      try {
        Batch b = make_(next_++);
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back(std::move(b));
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = std::current_exception();
        cv_.notify_all();
        return;
      }
      cv_.notify_all();
    }
  }
  std::function<Batch(int64_t)> make_;
  int64_t next_;
  int depth_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;
};

// Camera frames of one dataset frame as model inputs [1, 3, h, w] each, in the config's camera order; with `shift`
// > 0 each one moved by a random offset of up to that many pixels, drawn from `rng`.
std::vector<torch::Tensor> frame_images(const Frame& f, const SmolVLAConfig& config,
                                        const std::vector<std::string>& cameras, int shift = 0,
                                        std::mt19937_64* rng = nullptr) {
  std::vector<torch::Tensor> out;
  for (const std::string& cam : cameras) {
    auto it = f.images.find(cam);
    require(it != f.images.end(), "training: a dataset frame has no '" + cam + "' image");
    torch::Tensor image = model_image(it->second, config);
    if (shift > 0 && rng) {
      std::uniform_int_distribution<int> offset(-shift, shift);
      const int dx = offset(*rng), dy = offset(*rng);
      image = shift_image(image, dx, dy);
    }
    out.push_back(image);
  }
  return out;
}

// Robot camera names of the config's camera features ("observation.images.scene" → "scene").
std::vector<std::string> config_cameras(const SmolVLAConfig& c) {
  std::vector<std::string> out;
  for (const std::string& key : c.camera_keys()) out.push_back(key.substr(key.rfind('.') + 1));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// The training loop shared by both stages
// ---------------------------------------------------------------------------------------------------------------

struct LogRow {
  int step;
  double loss, lr, eval_loss, seconds;
};

void write_loss_files(const fs::path& dir, const std::vector<LogRow>& rows, const std::string& title) {
  std::ofstream csv(dir / "loss.csv", std::ios::trunc);
  csv << "step,loss,lr,eval_loss,seconds\n";
  for (const LogRow& r : rows) {
    csv << r.step << "," << r.loss << "," << r.lr << ",";
    if (!std::isnan(r.eval_loss)) csv << r.eval_loss;
    csv << "," << r.seconds << "\n";
  }
  LinePlot plot{title, "step", "loss"};
  std::vector<double> x, y, ex, ey;
  double smooth = NAN;
  for (const LogRow& r : rows) {
    smooth = std::isnan(smooth) ? r.loss : 0.95 * smooth + 0.05 * r.loss;
    x.push_back(r.step), y.push_back(smooth);
    if (!std::isnan(r.eval_loss)) ex.push_back(r.step), ey.push_back(r.eval_loss);
  }
  if (x.size() >= 2) {
    plot.add("train (smoothed)", x, y);
    if (!ex.empty()) plot.add("held-out", ex, ey).points = ex.size() < 3;
    plot.save((dir / "loss.png").string());
  }
}

// The moving average of the trained tensors. Its decay ramps up as (1 + n) / (10 + n) over the first steps, so the
// average does not remember the random start. swap() exchanges the live weights with the average (twice: back).
class WeightAverage {
 public:
  WeightAverage(const std::vector<torch::Tensor>& params, double decay) : params_(params), decay_(decay) {
    torch::NoGradGuard no_grad;
    if (decay_ > 0)
      for (const torch::Tensor& p : params_) average_.push_back(p.detach().clone());
  }
  bool active() const { return decay_ > 0; }
  void update(int step) {
    if (!active()) return;
    torch::NoGradGuard no_grad;
    const double d = std::min(decay_, (1.0 + step) / (10.0 + step));
    for (size_t i = 0; i < params_.size(); ++i) average_[i].mul_(d).add_(params_[i].detach(), 1 - d);
  }
  void swap() {
    if (!active()) return;
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      const torch::Tensor live = params_[i].detach().clone();
      params_[i].detach().copy_(average_[i]);
      average_[i].copy_(live);
    }
  }
  void save(const fs::path& path) const {
    if (!active()) return;
    torch::serialize::OutputArchive archive;
    // What the average is of, so a resume with another --ema or another set of trained tensors is caught.
    archive.write("decay", torch::tensor(decay_, torch::kFloat64));
    archive.write("count", torch::tensor(static_cast<int64_t>(average_.size())));
    for (size_t i = 0; i < average_.size(); ++i) archive.write("w" + std::to_string(i), average_[i]);
    archive.save_to(path.string() + ".tmp");
    fs::rename(path.string() + ".tmp", path);
  }
  void load(const fs::path& path) {
    if (!active()) return;
    require(fs::exists(path), "resume: " + path.string() + " is missing (the run had no --ema, or it was removed)");
    torch::serialize::InputArchive archive;
    archive.load_from(path.string());
    torch::NoGradGuard no_grad;
    torch::Tensor decay, count;
    require(archive.try_read("decay", decay) && archive.try_read("count", count),
            "resume: " + path.string() + " has no decay or tensor count (written by an older vlascope)");
    require(decay.item<double>() == decay_, "resume: " + path.string() + " averages with --ema " +
                                                std::to_string(decay.item<double>()) + ", this run asks for " +
                                                std::to_string(decay_));
    require(count.item<int64_t>() == static_cast<int64_t>(average_.size()),
            "resume: " + path.string() + " averages " + std::to_string(count.item<int64_t>()) +
                " tensors, this run trains " + std::to_string(average_.size()) + " (was --frozen-vlm changed?)");
    for (size_t i = 0; i < average_.size(); ++i) {
      torch::Tensor t;
      archive.read("w" + std::to_string(i), t);
      require(t.sizes() == average_[i].sizes(), "resume: " + path.string() + " does not fit this model");
      average_[i].copy_(t);
    }
  }

 private:
  std::vector<torch::Tensor> params_;
  std::vector<torch::Tensor> average_;
  double decay_;
};

struct Stage {
  std::string name;
  // One step's loss on batch `index` (training mode); the returned scalar is backpropagated.
  std::function<torch::Tensor(int64_t index)> loss;
  // The held-out loss (no gradients) and optional extra metrics.
  std::function<double(std::vector<double>* metrics)> eval;
};

TrainResult run_training(const TrainCommon& o, SmolVLA& model, const std::vector<torch::Tensor>& params,
                         double peak_lr, int warmup, const SmolVLAConfig& schedule_config, const Stage& stage,
                         const std::function<void(const fs::path&)>& save) {
  const auto [image_width, image_height] = model.config().input_image_size();
  require(o.augment_shift < std::min(image_width, image_height),
          "--augment-shift " + std::to_string(o.augment_shift) + ": the model's images are " +
              std::to_string(image_width) + "x" + std::to_string(image_height) + " pixels");
  const fs::path out(o.out), training = out / "training", state = training / "state";
  fs::create_directories(training);
  torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(peak_lr)
                                            .betas({schedule_config.optimizer_betas[0],
                                                    schedule_config.optimizer_betas[1]})
                                            .eps(schedule_config.optimizer_eps)
                                            .weight_decay(schedule_config.optimizer_weight_decay));
  std::vector<LogRow> log;
  WeightAverage average(params, o.ema);
  int start = 0;
  if (o.resume && fs::exists(state / "step.json")) {
    const std::string step_file = (state / "step.json").string();
    const Json j = read_json_object(step_file);
    require(j.contains("step") && j.at("step").is_number_integer(), step_file + ": field 'step' must be an integer");
    start = j.at("step").get<int>();
    torch::serialize::InputArchive archive;
    archive.load_from((state / "optimizer.pt").string());
    optimizer.load(archive);
    average.load(state / "ema.pt");
    // The weights the run had reached: --init only says where it started. Copied into the tensors the optimiser
    // holds, not swapped for new ones.
    SmolVLA reached(model.config(), model.precision(), model.device());
    load_weights(reached, (state / "model.safetensors").string());
    std::vector<WeightEntry> live = model.weight_table(), saved = reached.weight_table();
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < live.size(); ++i) live[i].tensor->copy_(*saved[i].tensor);
    std::ifstream csv(training / "loss.csv");
    std::string line;
    std::getline(csv, line);  // header
    while (std::getline(csv, line)) {
      std::vector<std::string> f;
      std::stringstream fields(line);
      for (std::string x; std::getline(fields, x, ',');) f.push_back(x);
      if (f.size() != 5) continue;
      const LogRow r{std::stoi(f[0]), std::stod(f[1]), std::stod(f[2]), f[3].empty() ? NAN : std::stod(f[3]),
                     std::stod(f[4])};
      if (r.step < start) log.push_back(r);
    }
    std::fprintf(stderr, "%s: resuming at step %d of %d\n", stage.name.c_str(), start, o.steps);
  }

  TrainResult result;
  const auto t0 = std::chrono::steady_clock::now();
  const double offset_seconds = log.empty() ? 0.0 : log.back().seconds;
  ProgressBar bar(stage.name, o.steps, "steps");
  if (o.quiet) ProgressBar::set_enabled(false);
  bar.skip(start);
  double recent = 0;
  int recent_n = 0;
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int step = start;
  for (; step < o.steps; ++step) {
    const double lr = peak_lr * lr_multiplier(step, o.steps, warmup, schedule_config.scheduler_decay_steps,
                                              peak_lr, schedule_config.scheduler_decay_lr);
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    optimizer.zero_grad();
    const torch::Tensor loss = stage.loss(step);
    require(std::isfinite(loss.item<double>()), stage.name + ": the loss became " +
                                                    std::to_string(loss.item<double>()) + " at step " +
                                                    std::to_string(step));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(params, schedule_config.optimizer_grad_clip_norm);
    optimizer.step();
    average.update(step);

    const double l = loss.item<double>();
    if (step - start < 20) result.first_loss += l / std::min(20, o.steps - start);
    recent = recent_n < 20 ? (recent * recent_n + l) / (recent_n + 1) : 0.95 * recent + 0.05 * l;
    ++recent_n;
    LogRow row{step, l, lr, NAN, offset_seconds + elapsed()};
    const bool last = step + 1 == o.steps;
    const bool over_budget = o.max_minutes > 0 && elapsed() > o.max_minutes * 60;
    if ((o.eval_every > 0 && (step + 1) % o.eval_every == 0) || last || over_budget) {
      torch::NoGradGuard no_grad;
      result.eval_metric.clear();
      average.swap();  // the held-out loss of the weights that get saved
      row.eval_loss = result.eval_loss = stage.eval(&result.eval_metric);
      average.swap();
    }
    log.push_back(row);
    const double rate = (step + 1 - start) * o.batch_size / std::max(1e-9, elapsed());
    char status[160];
    std::snprintf(status, sizeof status, "loss %.4f lr %.2e | %.1f samples/s", recent, lr, rate);
    bar.set_status(status);
    bar.advance();
    if ((o.save_every > 0 && (step + 1) % o.save_every == 0) || last || over_budget) {
      fs::create_directories(state);
      save(state);  // the live weights: a resumed run continues from them
      average.save(state / "ema.pt");
      torch::serialize::OutputArchive archive;
      optimizer.save(archive);
      archive.save_to((state / "optimizer.pt.tmp").string());
      fs::rename(state / "optimizer.pt.tmp", state / "optimizer.pt");
      std::ofstream(state / "step.json.tmp") << Json{{"step", step + 1}, {"seed", o.seed}}.dump() << "\n";
      fs::rename(state / "step.json.tmp", state / "step.json");
      write_loss_files(training, log, stage.name + " loss");
    }
    if (over_budget && !last) {
      result.stopped_by_budget = true;
      ++step;
      break;
    }
  }
  bar.finish();
  result.steps_done = step;
  result.seconds = offset_seconds + elapsed();
  result.samples_per_second = (step - start) * o.batch_size / std::max(1e-9, elapsed());
  result.final_loss = recent;
  average.swap();
  save(out);  // the checkpoint users load: <out>/config.json, model.safetensors, … (the average, with --ema)
  average.swap();
  write_loss_files(training, log, stage.name + " loss");
  return result;
}

void set_threads(int threads) {
  at::set_num_threads(threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

// ---------------------------------------------------------------------------------------------------------------
// Stage 1: captions
// ---------------------------------------------------------------------------------------------------------------

struct CaptionBatch {
  std::vector<torch::Tensor> images, masks;  // per camera [B, 3, h, w], [B]
  torch::Tensor tokens, token_masks;         // [B, L] with [BOS] … [EOS]
};

}  // namespace

TrainResult pretrain_vlm(const PretrainOptions& o) {
  set_threads(o.threads);
  torch::manual_seed(o.seed);
  const DatasetReader reader(o.datasets);
  const Split split = split_episodes(reader, o.holdout, o.seed);
  const std::string tokenizer_json = word_level_tokenizer_json(caption_vocabulary());
  const Tokenizer tokenizer = Tokenizer::from_json(tokenizer_json, "caption tokenizer");
  const int64_t bos = *tokenizer.id("[BOS]"), eos = *tokenizer.id("[EOS]"), pad = tokenizer.pad_id();

  std::shared_ptr<SmolVLA> model;
  if (!o.init.empty()) {
    model = std::shared_ptr<SmolVLA>(std::move(load_checkpoint(o.init).model));
  } else {
    SmolVLAConfig c = preset_config(o.preset);
    c.text.vocab_size = static_cast<int>(tokenizer.vocab_size());
    c.text.tie_word_embeddings = o.tie_embeddings;
    // Cameras and image size from the dataset.
    const EpisodeInfo& info = reader.info(split.train[0]);
    const Frame first = reader.frame(split.train[0], 0);
    std::vector<Feature> inputs = {{"observation.state", "STATE", {kStateDims}}};
    for (const std::string& cam : info.cameras) {
      const Image& img = first.images.at(cam);
      inputs.push_back({"observation.images." + cam, "VISUAL", {3, img.height, img.width}});
    }
    c.input_features = inputs;
    c.output_features = {{"action", "ACTION", {kStateDims}}};
    c.resize_imgs_with_padding = {c.vision.image_size, c.vision.image_size};  // frames meet the tower at its size
    model = std::make_shared<SmolVLA>(c);
    model->init_random(o.seed);
  }
  SmolVLA& m = *model;
  const SmolVLAConfig& c = m.config();
  require(c.text.vocab_size >= tokenizer.vocab_size(),
          "pretrain: the model's vocabulary (" + std::to_string(c.text.vocab_size) +
              ") is smaller than the caption tokenizer's (" + std::to_string(tokenizer.vocab_size()) + ")");
  const std::vector<std::string> cameras = config_cameras(c);
  const NormalizationStats stats = dataset_stats(reader, split.train);

  // Trained: vision, connector, embeddings, text layers, final norm, lm_head. Not the expert or projections.
  std::vector<torch::Tensor> params;
  for (WeightEntry& e : m.weight_table()) {
    const bool vlm = e.group != WeightGroup::kExpert && e.group != WeightGroup::kProjection &&
                     !(e.group == WeightGroup::kLmHead && c.text.tie_word_embeddings);  // a tied head is the embedding
    e.tensor->set_requires_grad(vlm);
    if (vlm) params.push_back(*e.tensor);
  }

  // `paraphrase_base` + k picks the wording of sample k's caption, and whether it is paraphrased at all.
  auto paraphrased = [&](uint64_t draw) {
    if (o.paraphrase_fraction >= 1) return true;
    if (o.paraphrase_fraction <= 0) return false;
    std::mt19937_64 rng(draw * 0xD1B54A32D192ED03ULL + 0x8CB92BA72F3D8DD7ULL);
    return std::uniform_real_distribution<double>(0, 1)(rng) < o.paraphrase_fraction;
  };
  auto make_batch = [&](const std::vector<std::pair<int, int>>& frames, uint64_t paraphrase_base, int shift) {
    CaptionBatch b;
    std::vector<std::vector<torch::Tensor>> per_camera(cameras.size());
    std::vector<std::vector<int64_t>> ids;
    size_t longest = 0;
    std::mt19937_64 shifts(paraphrase_base ^ 0x51F7ULL);
    for (size_t sample = 0; sample < frames.size(); ++sample) {
      const auto [e, i] = frames[sample];
      const Frame f = reader.frame(e, i);
      const std::vector<torch::Tensor> imgs = frame_images(f, c, cameras, shift, &shifts);
      for (size_t k = 0; k < cameras.size(); ++k) per_camera[k].push_back(imgs[k]);
      std::vector<int64_t> t = {bos};
      const uint64_t paraphrase = paraphrased(paraphrase_base + sample) ? paraphrase_base + sample : 0;
      for (int64_t id : tokenizer.encode(caption_frame(reader.info(e), reader.trajectory(e), i, {}, paraphrase), false))
        t.push_back(id);
      t.push_back(eos);
      longest = std::max(longest, t.size());
      ids.push_back(std::move(t));
    }
    const int64_t n = static_cast<int64_t>(frames.size());
    for (size_t k = 0; k < cameras.size(); ++k) {
      b.images.push_back(torch::cat(per_camera[k], 0));
      b.masks.push_back(torch::ones({n}, torch::kBool));
    }
    b.tokens = torch::full({n, static_cast<int64_t>(longest)}, pad, torch::kInt64);
    b.token_masks = torch::zeros({n, static_cast<int64_t>(longest)}, torch::kBool);
    for (int64_t r = 0; r < n; ++r)
      for (size_t t = 0; t < ids[r].size(); ++t) {
        b.tokens[r][static_cast<int64_t>(t)] = ids[r][t];
        b.token_masks[r][static_cast<int64_t>(t)] = true;
      }
    return b;
  };
  auto sample_frames = [&](int64_t index) {
    std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(index));
    std::uniform_int_distribution<size_t> pick(0, split.train_frames.size() - 1);
    std::vector<std::pair<int, int>> frames;
    for (int k = 0; k < o.batch_size; ++k) frames.push_back(split.train_frames[pick(rng)]);
    return make_batch(frames, 1 + static_cast<uint64_t>(index) * 4096, o.augment_shift);
  };
  // The held-out batch: evenly spaced frames of the held-out episodes.
  std::vector<std::pair<int, int>> eval_frames;
  for (int e : split.eval)
    for (int i = 0; i < reader.num_frames(e); i += std::max(1, reader.num_frames(e) / 16)) eval_frames.push_back({e, i});
  if (eval_frames.size() > 64) eval_frames.resize(64);
  const CaptionBatch eval_batch = [&] {
    torch::NoGradGuard no_grad;
    // Fixed wordings drawn like the training ones (so the held-out loss of a paraphrasing run is not comparable with
    // a canonical run's); not shifted.
    return make_batch(eval_frames, 0x5eed0000ULL, 0);
  }();

  // Next-token cross-entropy over the caption words (and [EOS]), images as the prefix.
  auto caption_loss = [&](const CaptionBatch& b, double* accuracy) {
    const int64_t l = b.tokens.size(1);
    const torch::Tensor input = b.tokens.narrow(1, 0, l - 1), input_mask = b.token_masks.narrow(1, 0, l - 1);
    const torch::Tensor target = b.tokens.narrow(1, 1, l - 1), target_mask = b.token_masks.narrow(1, 1, l - 1);
    const torch::Tensor logits = m.caption_logits(b.images, b.masks, input, input_mask);  // [B, L−1, V]
    const torch::Tensor flat = logits.reshape({-1, logits.size(-1)});
    const torch::Tensor per_token = torch::nn::functional::cross_entropy(
        flat, target.reshape({-1}), torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    const torch::Tensor valid = target_mask.reshape({-1}).to(torch::kFloat32);
    if (accuracy)
      *accuracy = ((flat.argmax(-1) == target.reshape({-1})).to(torch::kFloat32) * valid).sum().item<double>() /
                  valid.sum().item<double>();
    return (per_token * valid).sum() / valid.sum();
  };

  // Batches come in step order from a prefetcher started at the first step run (later than 0 when resuming).
  std::unique_ptr<Prefetcher<CaptionBatch>> prefetch;
  Stage stage;
  stage.name = "pretrain-vlm";
  stage.loss = [&](int64_t index) {
    if (!prefetch) prefetch = std::make_unique<Prefetcher<CaptionBatch>>(sample_frames, index);
    return caption_loss(prefetch->next(), nullptr);
  };
  stage.eval = [&](std::vector<double>* metrics) {
    double acc = 0;
    const double loss = caption_loss(eval_batch, &acc).item<double>();
    metrics->push_back(acc);
    return loss;
  };
  auto save = [&](const fs::path& dir) {
    torch::NoGradGuard no_grad;
    save_checkpoint(dir.string(), m, stats, SaveDtypes::kAsModel, tokenizer_json);
  };
  SmolVLAConfig schedule = c;
  schedule.scheduler_decay_lr = o.lr * 0.025;
  schedule.scheduler_decay_steps = o.steps;
  return run_training(o, m, params, o.lr, o.warmup_steps, schedule, stage, save);
}

// ---------------------------------------------------------------------------------------------------------------
// Stage 2: flow matching
// ---------------------------------------------------------------------------------------------------------------

namespace {

struct VlaBatch {
  ModelInputs inputs;
  torch::Tensor actions;     // [B, T, A] normalised, padded dims zero
  torch::Tensor action_pad;  // [B, T] true where the chunk ran past the episode's end
  torch::Tensor noise, time;
};

}  // namespace

TrainResult train_vla(const VlaOptions& o) {
  require(!o.init.empty(), "train: --init must name the checkpoint to start from (the pre-trained VLM)");
  set_threads(o.threads);
  torch::manual_seed(o.seed);
  const DatasetReader reader(o.datasets);
  const Split split = split_episodes(reader, o.holdout, o.seed);
  LoadedCheckpoint ckpt = load_checkpoint(o.init);
  SmolVLA& m = *ckpt.model;
  SmolVLAConfig c = m.config();
  c.train_expert_only = o.train_expert_only;
  c.freeze_vision_encoder = o.freeze_vision_encoder;
  c.train_state_proj = o.train_state_proj;
  const std::string tokenizer_path = (fs::path(o.init) / "tokenizer.json").string();
  require(fs::exists(tokenizer_path), "train: " + o.init + " has no tokenizer.json");
  const std::string tokenizer_json = read_text(tokenizer_path);
  const Tokenizer tokenizer = Tokenizer::from_json(tokenizer_json, tokenizer_path);
  const std::vector<std::string> cameras = config_cameras(c);
  const NormalizationStats stats = dataset_stats(reader, split.train);
  const FeatureStats& s_state = stats.features.at("observation.state");
  const FeatureStats& s_action = stats.features.at("action");
  const int64_t chunk = c.chunk_size, a_dim = c.max_action_dim, s_dim = c.max_state_dim;

  // What learns (LeRobot's set_requires_grad): the vision tower is frozen unless asked; with train_expert_only
  // the whole VLM is; the expert and the projections always learn (state_proj unless train_state_proj is off).
  std::vector<torch::Tensor> params;
  for (WeightEntry& e : m.weight_table()) {
    bool trains = true;
    if (e.group == WeightGroup::kVision && c.freeze_vision_encoder) trains = false;
    if (c.train_expert_only && e.group != WeightGroup::kExpert && e.group != WeightGroup::kProjection) trains = false;
    if (e.key.find("state_proj") != std::string::npos && !c.train_state_proj) trains = false;
    if (e.group == WeightGroup::kLmHead) trains = false;  // the flow loss never reaches it
    e.tensor->set_requires_grad(trains);
    if (trains) params.push_back(*e.tensor);
  }

  auto make_batch = [&](const std::vector<std::pair<int, int>>& frames, uint64_t noise_seed, int shift) {
    VlaBatch b;
    std::mt19937_64 shifts(noise_seed ^ 0x51F7ULL);
    const int64_t n = static_cast<int64_t>(frames.size());
    std::vector<std::vector<torch::Tensor>> per_camera(cameras.size());
    b.inputs.state = torch::zeros({n, s_dim});
    b.actions = torch::zeros({n, chunk, a_dim});
    b.action_pad = torch::zeros({n, chunk}, torch::kBool);
    std::vector<std::vector<int64_t>> words;
    std::vector<std::vector<uint8_t>> word_masks;
    size_t longest = 0;
    auto state_acc = b.inputs.state.accessor<float, 2>();
    auto action_acc = b.actions.accessor<float, 3>();
    for (int64_t r = 0; r < n; ++r) {
      const auto [e, i] = frames[r];
      const Frame f = reader.frame(e, i);
      const std::vector<torch::Tensor> imgs = frame_images(f, c, cameras, shift, &shifts);
      for (size_t k = 0; k < cameras.size(); ++k) per_camera[k].push_back(imgs[k]);
      for (int d = 0; d < kStateDims; ++d)
        state_acc[r][d] = (f.state[d] - s_state.mean[d]) / (s_state.std[d] + 1e-8f);
      const std::vector<Frame> traj = reader.trajectory(e);
      const int frames_in_episode = static_cast<int>(traj.size());
      for (int64_t t = 0; t < chunk; ++t) {
        const int idx = std::min(frames_in_episode - 1, i + static_cast<int>(t));
        if (i + t >= frames_in_episode) b.action_pad[r][t] = true;
        for (int d = 0; d < kStateDims; ++d)
          action_acc[r][t][d] = (traj[idx].action[d] - s_action.mean[d]) / (s_action.std[d] + 1e-8f);
      }
      const EpisodeInfo& info = reader.info(e);
      const std::string task = !o.instruction.empty()       ? o.instruction
                               : o.mix.named_fraction > 0 ? training_instruction(info, o.mix, noise_seed + 7919 * r)
                                                          : info.instruction;
      TokenizedText text = tokenize_task(tokenizer, task, c.tokenizer_max_length, c.pad_language_to_max_length);
      longest = std::max(longest, text.ids.size());
      words.push_back(text.ids);
      word_masks.push_back(text.mask);
    }
    for (size_t k = 0; k < cameras.size(); ++k) {
      b.inputs.images.push_back(torch::cat(per_camera[k], 0));
      b.inputs.image_masks.push_back(torch::ones({n}, torch::kBool));
    }
    b.inputs.lang_tokens = torch::full({n, static_cast<int64_t>(longest)}, tokenizer.pad_id(), torch::kInt64);
    b.inputs.lang_masks = torch::zeros({n, static_cast<int64_t>(longest)}, torch::kBool);
    for (int64_t r = 0; r < n; ++r)
      for (size_t t = 0; t < words[r].size(); ++t) {
        b.inputs.lang_tokens[r][static_cast<int64_t>(t)] = words[r][t];
        b.inputs.lang_masks[r][static_cast<int64_t>(t)] = word_masks[r][t] != 0;
      }
    // Flow-matching noise and time: t = Beta(1.5, 1)·0.999 + 0.001 (smolvla.md §5.2).
    auto gen = at::make_generator<at::CPUGeneratorImpl>(noise_seed);
    b.noise = at::normal(0.0, 1.0, {n, chunk, a_dim}, gen);
    const torch::Tensor x = at::_standard_gamma(torch::full({n}, 1.5), gen);
    const torch::Tensor y = at::_standard_gamma(torch::full({n}, 1.0), gen);
    b.time = x / (x + y) * 0.999 + 0.001;
    return b;
  };
  auto sample = [&](int64_t index) {
    const uint64_t s = o.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(index);
    std::mt19937_64 rng(s);
    std::uniform_int_distribution<size_t> pick(0, split.train_frames.size() - 1);
    std::vector<std::pair<int, int>> frames;
    for (int k = 0; k < o.batch_size; ++k) frames.push_back(split.train_frames[pick(rng)]);
    return make_batch(frames, s ^ 0xA5A5A5A5ULL, o.augment_shift);
  };
  std::vector<std::pair<int, int>> eval_frames;
  for (int e : split.eval)
    for (int i = 0; i < reader.num_frames(e); i += std::max(1, reader.num_frames(e) / 16)) eval_frames.push_back({e, i});
  if (eval_frames.size() > 64) eval_frames.resize(64);
  const VlaBatch eval_batch = [&] {
    torch::NoGradGuard no_grad;
    return make_batch(eval_frames, o.seed + 12345, 0);
  }();

  // LeRobot's loss: elementwise MSE, cropped to the real action dims, padded steps masked out, mean of the rest.
  const int real_dims = c.action_dim();
  auto flow = [&](const VlaBatch& b) {
    const torch::Tensor per = m.flow_loss(b.inputs, b.actions, b.noise, b.time).narrow(2, 0, real_dims);
    const torch::Tensor keep = b.action_pad.logical_not().unsqueeze(-1).to(torch::kFloat32).expand_as(per);
    return (per * keep).sum() / keep.sum().clamp_min(1.0);
  };
  std::unique_ptr<Prefetcher<VlaBatch>> prefetch;
  Stage stage;
  stage.name = o.train_expert_only ? "train-vla (frozen VLM)" : "train-vla";
  stage.loss = [&](int64_t index) {
    if (!prefetch) prefetch = std::make_unique<Prefetcher<VlaBatch>>(sample, index);
    return flow(prefetch->next());
  };
  stage.eval = [&](std::vector<double>*) { return flow(eval_batch).item<double>(); };
  auto save = [&](const fs::path& dir) {
    torch::NoGradGuard no_grad;
    save_checkpoint(dir.string(), m, stats, SaveDtypes::kAsModel, tokenizer_json);
    write_lerobot_config(dir.string(), c);  // the config records how it was trained (frozen or not)
  };
  const double lr = o.lr > 0 ? o.lr : c.optimizer_lr;
  const int warmup = o.warmup_steps >= 0 ? o.warmup_steps : c.scheduler_warmup_steps;
  return run_training(o, m, params, lr, warmup, c, stage, save);
}

}  // namespace vlascope
