#include "interp/patching.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <utility>

#include "common/error.h"
#include "common/progress.h"
#include "dataset/dataset.h"
#include "interp/neurons.h"
#include "policy/policy.h"
#include "policy/smolvla.h"

namespace vlascope {
namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t end = text.find(sep, start);
    out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

int parse_int(const std::string& digits, const std::string& what) {
  require(!digits.empty() && digits.size() <= 6 &&
              std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }),
          what + ": '" + digits + "' is not a non-negative integer");
  return std::stoi(digits);
}

// "0,1,5-9" → {0, 1, 5, 6, 7, 8, 9}
std::vector<int> parse_steps(const std::string& list, const std::string& what) {
  std::vector<int> steps;
  for (const std::string& item : split(list, ',')) {
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      steps.push_back(parse_int(item, what));
      continue;
    }
    const int a = parse_int(item.substr(0, dash), what), b = parse_int(item.substr(dash + 1), what);
    require(a <= b, what + ": '" + item + "' runs backwards");
    for (int s = a; s <= b; ++s) steps.push_back(s);
  }
  std::sort(steps.begin(), steps.end());
  steps.erase(std::unique(steps.begin(), steps.end()), steps.end());
  return steps;
}

int stream_layers(const SmolVLAConfig& c, HookStream stream) {
  return stream == HookStream::kVlm ? c.num_vlm_layers : c.num_expert_layers;
}

// Rows [begin, begin + length) of the source go to rows [target_begin, target_begin + length) of the target.
struct RowBlock {
  int64_t source_begin = 0, target_begin = 0, length = 0;
};

// Where a pass's kinds of token are (HookContext's prefix fields) and how long its sequence is.
struct PassRows {
  int words_begin = -1, words_end = -1, state_index = -1;
  int64_t length = 0;
};
PassRows pass_rows(const HookContext& ctx, const at::Tensor& act) {
  return {ctx.words_begin, ctx.words_end, ctx.state_index, act.size(1)};
}

}  // namespace

PatchSpec parse_patch_spec(const std::string& text) {
  const std::string what = "patch spec '" + text + "'";
  PatchSpec spec;
  spec.text = text;
  const std::vector<std::string> parts = split(text, '@');
  spec.point = parse_hook_point(parts[0]);
  require(spec.point.stream != HookStream::kVision,
          what + ": the vision tower's rows are per camera image; patch vlm.embed@images or a VLM layer instead");
  require(spec.point.site != HookSite::kAttnPattern,
          what + ": attn.pattern is not one row per token; patch attn.out (the attention's output) instead");
  bool have_rows = false;
  for (size_t i = 1; i < parts.size(); ++i) {
    const std::string& part = parts[i];
    if (part.compare(0, 5, "head:") == 0) {
      require(spec.head < 0, what + ": head given twice");
      spec.head = parse_int(part.substr(5), what + " head");
      continue;
    }
    if (part.compare(0, 6, "steps:") == 0) {
      require(spec.steps.empty(), what + ": steps given twice");
      spec.steps = parse_steps(part.substr(6), what + " steps");
      continue;
    }
    require(!have_rows, what + ": rows given twice ('" + part + "')");
    have_rows = true;
    if (part.compare(0, 5, "rows:") == 0) {
      const std::string range = part.substr(5);
      const size_t dash = range.find('-');
      require(dash != std::string::npos, what + ": rows must be rows:<begin>-<end>");
      spec.row_begin = parse_int(range.substr(0, dash), what + " rows");
      spec.row_end = parse_int(range.substr(dash + 1), what + " rows");
      require(spec.row_begin < spec.row_end, what + ": rows " + range + " are empty (the end is exclusive)");
      spec.tokens.clear();
      continue;
    }
    spec.tokens.clear();
    for (const std::string& kind : split(part, '+')) {
      std::string name = kind;
      const size_t colon = kind.find(':');
      if (colon != std::string::npos) {
        name = kind.substr(0, colon);
        require(name == "images", what + ": only images takes a camera ('" + kind + "')");
        spec.camera = kind.substr(colon + 1);
        require(!spec.camera.empty(), what + ": images: needs a camera name");
      }
      try {
        spec.tokens.push_back(parse_token_region(name));
      } catch (const Error&) {
        throw Error(what + ": unknown rows '" + kind +
                    "' (expected all, images, images:<camera>, words, last_word, state, rows:<begin>-<end>, or "
                    "kinds joined by '+')");
      }
    }
    require(spec.tokens.size() == 1 || std::find(spec.tokens.begin(), spec.tokens.end(), TokenRegion::kAll) ==
                                           spec.tokens.end(),
            what + ": 'all' already holds every kind of row");
  }
  return spec;
}

void validate_patch_spec(const PatchSpec& spec, const Policy& policy) {
  const std::string what = "patch spec '" + spec.text + "'";
  const SmolVLAConfig& c = policy.config();
  const HookPoint& p = spec.point;
  require(p.stream == HookStream::kVlm || p.stream == HookStream::kExpert, what + ": patches VLM or expert points");
  if (p.layer >= 0) {
    const int n = stream_layers(c, p.stream);
    require(p.layer < n, what + ": layer " + std::to_string(p.layer) + " is out of range (the model's " +
                             stream_name(p.stream) + " has " + std::to_string(n) + " layers)");
  }
  const bool vlm = p.stream == HookStream::kVlm;
  const bool all_rows = spec.row_begin < 0 && spec.tokens == std::vector<TokenRegion>{TokenRegion::kAll};
  require(vlm || all_rows, what + ": rows are chosen in the VLM prefix; the expert's rows are its action tokens, all "
                                  "of them");
  if (!spec.camera.empty()) {
    const auto& cams = policy.cameras();
    std::string names;
    for (const std::string& cam : cams) names += (names.empty() ? "" : ", ") + cam;
    require(std::find(cams.begin(), cams.end(), spec.camera) != cams.end(),
            what + ": the policy has no camera '" + spec.camera + "' (it has " + names + ")");
  }
  require(vlm || spec.steps.empty() || spec.steps.back() < c.num_steps,
          what + ": step " + (spec.steps.empty() ? std::string() : std::to_string(spec.steps.back())) +
              " is out of range (the model denoises in " + std::to_string(c.num_steps) + " steps)");
  require(!vlm || spec.steps.empty(),
          what + ": steps are the expert's denoising steps; the VLM runs once per chunk");
  if (spec.head >= 0) {
    require(p.site == HookSite::kAttnHeads, what + ": a head is chosen at attn.heads (each head's output, before o_proj)");
    require(spec.head < c.text.heads, what + ": head " + std::to_string(spec.head) + " is out of range (" +
                                          std::to_string(c.text.heads) + " heads)");
  }
}

void check_patch_between(Policy& policy, const std::vector<PatchSpec>& specs, const std::string& source_task,
                         const std::string& target_task) {
  PolicyInput blank;
  const auto [width, height] = policy.config().input_image_size();
  for (const std::string& camera : policy.cameras()) blank.images[camera] = Image(width, height, 3, 0);
  blank.state.assign(static_cast<size_t>(policy.config().state_dim()), 0.f);
  ActivationPatcher patcher(policy, specs);
  blank.task = source_task;
  patcher.record();
  policy.predict_chunk(blank, 0, 0);
  blank.task = target_task;
  patcher.patch();
  policy.predict_chunk(blank, 0, 0);
}

std::vector<PatchSpec> layer_patch_specs(const Policy& policy, const std::vector<std::string>& streams, HookSite site,
                                         const std::string& vlm_rows) {
  std::vector<PatchSpec> out;
  for (const std::string& s : streams) {
    require(s == "vlm" || s == "expert", "layers: unknown stream '" + s + "' (expected vlm or expert)");
    const HookStream stream = s == "vlm" ? HookStream::kVlm : HookStream::kExpert;
    for (int l = 0; l < stream_layers(policy.config(), stream); ++l) {
      std::string text = HookPoint{stream, l, site}.name();
      if (stream == HookStream::kVlm && !vlm_rows.empty() && vlm_rows != "all") text += "@" + vlm_rows;
      out.push_back(parse_patch_spec(text));
    }
  }
  return out;
}

std::vector<PatchSpec> step_patch_specs(const Policy& policy, HookSite site) {
  std::vector<PatchSpec> out;
  const SmolVLAConfig& c = policy.config();
  for (int l = 0; l < c.num_expert_layers; ++l)
    for (int s = 0; s < c.num_steps; ++s)
      out.push_back(parse_patch_spec(HookPoint{HookStream::kExpert, l, site}.name() + "@steps:" + std::to_string(s)));
  return out;
}

// ---- the patcher ----------------------------------------------------------------------------------------------

struct ActivationPatcher::Impl {
  enum class Mode { kOff, kRecord, kPatch, kRandom, kZero, kRecordMean, kMean } mode = Mode::kOff;
  struct Kept {
    torch::Tensor value;  // the source's activation, [B, L, D]
    PassRows rows;
  };
  std::map<std::pair<int, int>, Kept> kept;  // (spec, denoising step or −1) → value
  std::map<std::pair<int, int>, torch::Tensor> mean_sum;  // (spec, step or −1) → Σ over batch rows and passes [L, D]
  std::map<std::pair<int, int>, int64_t> mean_count;       // …and how many batch rows were summed
  std::vector<at::Generator> row_generators;              // random control: one per batch row, or none
  int head_dim = 0;
  std::vector<bool> active;                  // specs patched in kPatch / kRandom
  std::vector<int> writes;
  std::vector<HookHandle> handles;
  at::Generator generator;
  int tokens_per_camera = 0;
  std::vector<std::string> cameras;
};

namespace {

// The source → target row blocks of one spec between two prefix passes (or the whole sequence for the expert).
std::vector<RowBlock> row_blocks(const PatchSpec& spec, const PassRows& src, const PassRows& tgt, bool prefix,
                                 int tokens_per_camera, int camera) {
  const std::string what = "patch '" + spec.text + "'";
  if (!prefix) {
    require(src.length == tgt.length, what + ": the source had " + std::to_string(src.length) + " action rows, the "
                                          "target " + std::to_string(tgt.length));
    return {{0, 0, tgt.length}};
  }
  if (spec.row_begin >= 0) {
    const int64_t shortest = std::min(src.length, tgt.length);
    require(spec.row_end <= shortest, what + ": rows " + std::to_string(spec.row_begin) + "-" +
                                          std::to_string(spec.row_end) + " lie outside the prefix (" +
                                          std::to_string(shortest) + " rows)");
    return {{spec.row_begin, spec.row_begin, spec.row_end - spec.row_begin}};
  }
  const bool all = spec.tokens == std::vector<TokenRegion>{TokenRegion::kAll};
  require(src.words_begin >= 0 && tgt.words_begin >= 0,
          what + ": this point does not say where its kinds of token are; use rows:<begin>-<end>");
  std::vector<RowBlock> blocks;
  for (TokenRegion r : all ? std::vector<TokenRegion>{TokenRegion::kImages, TokenRegion::kWords, TokenRegion::kState}
                           : spec.tokens) {
    switch (r) {
      case TokenRegion::kImages:
        require(src.words_begin == tgt.words_begin, what + ": the source has " + std::to_string(src.words_begin) +
                                                        " image rows, the target " + std::to_string(tgt.words_begin));
        if (camera >= 0)
          blocks.push_back({int64_t(camera) * tokens_per_camera, int64_t(camera) * tokens_per_camera, tokens_per_camera});
        else
          blocks.push_back({0, 0, tgt.words_begin});
        break;
      case TokenRegion::kWords: {
        const int ns = src.state_index - src.words_begin, nt = tgt.state_index - tgt.words_begin;
        const int real_s = src.words_end - src.words_begin, real_t = tgt.words_end - tgt.words_begin;
        require(ns == nt && real_s == real_t,
                what + ": the source prompt has " + std::to_string(real_s) + " tokens and the target " +
                    std::to_string(real_t) + ", so their words cannot be matched by position; patch last_word (with "
                    "images and state), or use prompts of the same length");
        blocks.push_back({src.words_begin, tgt.words_begin, nt});
        break;
      }
      case TokenRegion::kLastWord:
        require(src.words_end > src.words_begin && tgt.words_end > tgt.words_begin,
                what + ": a prompt without words has no last word");
        blocks.push_back({src.words_end - 1, tgt.words_end - 1, 1});
        break;
      case TokenRegion::kState:
        blocks.push_back({src.state_index, tgt.state_index, 1});
        break;
      case TokenRegion::kAll:
        break;
    }
  }
  // All of a prefix whose kinds of token matched: every row, the padding after the state token included (as a
  // steering of every row reaches it).
  if (all && src.length == tgt.length) return {{0, 0, tgt.length}};
  return blocks;
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> spec_rows(const PatchSpec& spec, const Policy& policy,
                                                   const HookContext& context, int64_t sequence_length) {
  const std::vector<std::string>& cameras = policy.cameras();
  const int camera = spec.camera.empty()
                         ? -1
                         : static_cast<int>(std::find(cameras.begin(), cameras.end(), spec.camera) - cameras.begin());
  const int grid = policy.config().image_grid();
  const PassRows rows{context.words_begin, context.words_end, context.state_index, sequence_length};
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const RowBlock& b : row_blocks(spec, rows, rows, spec.point.stream == HookStream::kVlm, grid * grid, camera))
    out.push_back({b.target_begin, b.length});
  return out;
}

ActivationPatcher::ActivationPatcher(Policy& policy, std::vector<PatchSpec> specs, uint64_t random_seed)
    : impl_(std::make_unique<Impl>()), specs_(std::move(specs)) {
  require(!specs_.empty(), "activation patching: no spec given");
  for (const PatchSpec& s : specs_) validate_patch_spec(s, policy);
  Impl& m = *impl_;
  m.generator = at::make_generator<at::CPUGeneratorImpl>(random_seed);
  m.writes.assign(specs_.size(), 0);
  m.active.assign(specs_.size(), false);
  m.cameras = policy.cameras();
  m.head_dim = policy.config().text.head_dim;
  const int grid = policy.config().image_grid();
  m.tokens_per_camera = grid * grid;
  Hooks& hooks = policy.hooks();
  for (size_t i = 0; i < specs_.size(); ++i) {
    const int index = static_cast<int>(i);
    const PatchSpec& spec = specs_[i];
    const int camera = spec.camera.empty()
                           ? -1
                           : static_cast<int>(std::find(m.cameras.begin(), m.cameras.end(), spec.camera) -
                                              m.cameras.begin());
    const bool expert = spec.point.stream == HookStream::kExpert;
    m.handles.push_back(hooks.add(spec.point, [this, index, camera, expert](const HookContext& ctx, at::Tensor& act) {
      Impl& m = *impl_;
      const PatchSpec& spec = specs_[static_cast<size_t>(index)];
      if (m.mode == Impl::Mode::kOff || ctx.pass == ForwardPass::kTrain) return;
      if (expert && !spec.steps.empty() && !std::binary_search(spec.steps.begin(), spec.steps.end(), ctx.step)) return;
      const std::pair<int, int> key{index, expert ? ctx.step : -1};
      // The spec's columns of a row block: one head's at attn.heads, else all.
      auto columns = [&](const torch::Tensor& rows) {
        return spec.head < 0 ? rows : rows.narrow(-1, int64_t(spec.head) * m.head_dim, m.head_dim);
      };
      if (m.mode == Impl::Mode::kRecord) {
        m.kept[key] = {act.detach().clone(), pass_rows(ctx, act)};
        return;
      }
      if (m.mode == Impl::Mode::kRecordMean) {
        // Per position (and step): Σ over the batch rows of the whole activation [L, D].
        const torch::Tensor sum = act.detach().to(torch::kFloat64).sum(0);
        torch::Tensor& kept = m.mean_sum[key];
        if (kept.defined()) {
          require(kept.sizes() == sum.sizes(), "ablation '" + spec.text + "': the frames' passes differ in length (" +
                                                   std::to_string(kept.size(0)) + " and " +
                                                   std::to_string(sum.size(0)) + " rows): one instruction, please");
          kept += sum;
        } else {
          kept = sum;
        }
        m.mean_count[key] += act.size(0);
        return;
      }
      if (m.mode == Impl::Mode::kZero || m.mode == Impl::Mode::kMean) {
        const size_t s = static_cast<size_t>(index);
        if (!m.active[s]) return;
        torch::Tensor mean;  // [L, D], this pass's rows' own means
        if (m.mode == Impl::Mode::kMean) {
          const auto found = m.mean_sum.find(key);
          require(found != m.mean_sum.end(),
                  "ablation '" + spec.text + "': no mean was recorded for " +
                      (expert ? "denoising step " + std::to_string(ctx.step) : "the prefix pass") +
                      " (record_mean first)");
          require(found->second.size(0) == act.size(1),
                  "ablation '" + spec.text + "': the mean was recorded over " + std::to_string(found->second.size(0)) +
                      " rows, this pass has " + std::to_string(act.size(1)) + " (another instruction?)");
          mean = (found->second / double(m.mean_count.at(key))).to(act.scalar_type());
        }
        // The pass's own rows: a block matched to itself.
        const PassRows own = pass_rows(ctx, act);
        for (const RowBlock& b : row_blocks(spec, own, own, !expert, m.tokens_per_camera, camera)) {
          if (b.length <= 0) continue;
          torch::Tensor target = columns(act.narrow(1, b.target_begin, b.length));
          if (m.mode == Impl::Mode::kZero)
            target.zero_();
          else
            target.copy_(columns(mean.narrow(0, b.target_begin, b.length)).expand_as(target));
        }
        m.writes[s] += 1;
        return;
      }
      if (!m.active[static_cast<size_t>(index)]) return;
      const auto found = m.kept.find(key);
      require(found != m.kept.end(), "patch '" + spec.text + "': the recording has no values for " +
                                         (expert ? "denoising step " + std::to_string(ctx.step) : "the prefix pass") +
                                         " (record the source first)");
      const torch::Tensor& source = found->second.value;
      require(source.size(0) == act.size(0) && source.size(-1) == act.size(-1),
              "patch '" + spec.text + "': the source was recorded with batch " + std::to_string(source.size(0)) +
                  " and width " + std::to_string(source.size(-1)) + ", the target has " +
                  std::to_string(act.size(0)) + " and " + std::to_string(act.size(-1)));
      for (const RowBlock& b : row_blocks(spec, found->second.rows, pass_rows(ctx, act), !expert, m.tokens_per_camera,
                                          camera)) {
        if (b.length <= 0) continue;
        torch::Tensor target = columns(act.narrow(1, b.target_begin, b.length));  // a view: written in place
        const torch::Tensor from = columns(source.narrow(1, b.source_begin, b.length)).to(act.scalar_type());
        if (m.mode == Impl::Mode::kPatch) {
          target.copy_(from);
        } else {
          // A random direction per row, scaled to that row's |source − target|.
          const torch::Tensor norm = (from - target).to(torch::kFloat32).norm(2, -1, true);
          torch::Tensor r;
          if (m.row_generators.empty()) {
            r = torch::randn(target.sizes(), m.generator, torch::kFloat32);
          } else {
            require(static_cast<int64_t>(m.row_generators.size()) == act.size(0),
                    "patch '" + spec.text + "': " + std::to_string(m.row_generators.size()) +
                        " random seeds for a batch of " + std::to_string(act.size(0)));
            std::vector<torch::Tensor> rows;
            for (size_t b = 0; b < m.row_generators.size(); ++b)
              rows.push_back(torch::randn(target[0].sizes(), m.row_generators[b], torch::kFloat32));
            r = torch::stack(rows);
          }
          r = r / r.norm(2, -1, true).clamp_min(1e-12) * norm;
          target.add_(r.to(act.scalar_type()));
        }
      }
      m.writes[static_cast<size_t>(index)] += 1;
    }));
  }
}

ActivationPatcher::~ActivationPatcher() = default;

namespace {
std::vector<bool> chosen(const std::vector<int>& which, size_t n) {
  std::vector<bool> active(n, which.empty());
  for (int w : which) {
    require(w >= 0 && static_cast<size_t>(w) < n, "activation patching: spec " + std::to_string(w) +
                                                      " does not exist (" + std::to_string(n) + " specs)");
    active[static_cast<size_t>(w)] = true;
  }
  return active;
}
}  // namespace

void ActivationPatcher::record() {
  impl_->kept.clear();
  std::fill(impl_->writes.begin(), impl_->writes.end(), 0);
  impl_->mode = Impl::Mode::kRecord;
}
void ActivationPatcher::patch(std::vector<int> which) {
  impl_->active = chosen(which, specs_.size());
  impl_->mode = Impl::Mode::kPatch;
}
void ActivationPatcher::random(std::vector<int> which) {
  impl_->active = chosen(which, specs_.size());
  impl_->mode = Impl::Mode::kRandom;
}
void ActivationPatcher::zero(std::vector<int> which) {
  impl_->active = chosen(which, specs_.size());
  impl_->mode = Impl::Mode::kZero;
}
void ActivationPatcher::record_mean() {
  impl_->mean_sum.clear();
  impl_->mean_count.clear();
  impl_->mode = Impl::Mode::kRecordMean;
}
void ActivationPatcher::mean(std::vector<int> which) {
  impl_->active = chosen(which, specs_.size());
  impl_->mode = Impl::Mode::kMean;
}
void ActivationPatcher::off() { impl_->mode = Impl::Mode::kOff; }
void ActivationPatcher::reseed(uint64_t seed) {
  impl_->generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  impl_->row_generators.clear();
}
void ActivationPatcher::reseed_rows(const std::vector<uint64_t>& seeds) {
  impl_->row_generators.clear();
  for (uint64_t s : seeds) impl_->row_generators.push_back(at::make_generator<at::CPUGeneratorImpl>(s));
}
const std::vector<int>& ActivationPatcher::writes() const { return impl_->writes; }
size_t ActivationPatcher::bytes() const {
  size_t n = 0;
  for (const auto& [key, kept] : impl_->kept) n += kept.value.numel() * kept.value.element_size();
  return n;
}

// ---- the open-loop study ------------------------------------------------------------------------------------

namespace {

std::vector<double> flatten(const std::vector<std::vector<float>>& chunk) {
  std::vector<double> out;
  for (const auto& row : chunk) out.insert(out.end(), row.begin(), row.end());
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

std::vector<double> minus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

// Σ numerator / Σ denominator over frames, and its percentile-bootstrap interval (frames resampled).
struct Ratio {
  double value = 0, low = 0, high = 0;
};
Ratio pooled_ratio(const std::vector<double>& num, const std::vector<double>& den, int resamples, uint64_t seed) {
  Ratio r;
  const double d = std::accumulate(den.begin(), den.end(), 0.0);
  r.value = d > 0 ? std::accumulate(num.begin(), num.end(), 0.0) / d : 0;
  r.low = r.high = r.value;
  if (num.size() < 2 || resamples <= 0) return r;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> pick(0, num.size() - 1);
  std::vector<double> values;
  for (int k = 0; k < resamples; ++k) {
    double n = 0, dd = 0;
    for (size_t i = 0; i < num.size(); ++i) {
      const size_t j = pick(rng);
      n += num[j], dd += den[j];
    }
    if (dd > 0) values.push_back(n / dd);
  }
  if (values.empty()) return r;
  std::sort(values.begin(), values.end());
  r.low = values[static_cast<size_t>(0.025 * (values.size() - 1))];
  r.high = values[static_cast<size_t>(0.975 * (values.size() - 1))];
  return r;
}

// Each frame's [first, last] index of its task phase (one span for a trajectory without phases).
std::vector<std::pair<int, int>> phase_spans(const std::vector<Frame>& frames) {
  std::map<Phase, std::pair<int, int>> span;
  for (int i = 0; i < static_cast<int>(frames.size()); ++i) {
    const auto [it, fresh] = span.try_emplace(frames[static_cast<size_t>(i)].phase, i, i);
    if (!fresh) it->second.second = i;
  }
  std::vector<std::pair<int, int>> out;
  for (const Frame& f : frames) out.push_back(span.at(f.phase));
  return out;
}

}  // namespace

std::vector<PatchFramePair> patch_frame_pairs(const DatasetReader& dataset, const PatchStudyOptions& o) {
  std::vector<PatchFramePair> pairs;
  if (o.source_variant.empty() && o.target_variant.empty()) {
    for (const std::pair<int, int>& f : successful_episode_frames(dataset, o.episodes, o.frame_stride, "patch study"))
      pairs.push_back({f, f});
    return pairs;
  }
  require(!o.source_variant.empty() && !o.target_variant.empty() && o.source_variant != o.target_variant,
          "patch study between episodes: needs two different variants (got '" + o.source_variant + "' and '" +
              o.target_variant + "')");
  auto episodes_of = [&](const std::string& variant) {
    const std::vector<int> out = successful_variant_episodes(dataset, variant, o.episodes);
    require(!out.empty(), "patch study: the dataset " + std::filesystem::path(dataset.path(0)).parent_path().string() +
                              " has no successful '" + variant + "' episode");
    return out;
  };
  const std::vector<int> sources = episodes_of(o.source_variant), targets = episodes_of(o.target_variant);
  for (size_t k = 0; k < std::min(sources.size(), targets.size()); ++k) {
    const std::vector<Frame> s = dataset.trajectory(sources[k]), t = dataset.trajectory(targets[k]);
    const std::vector<std::pair<int, int>> s_span = phase_spans(s), t_span = phase_spans(t);
    std::map<Phase, std::pair<int, int>> source_span;
    for (size_t i = 0; i < s.size(); ++i) source_span.emplace(s[i].phase, s_span[i]);
    for (int i = 0; i < static_cast<int>(t.size()); i += std::max(1, o.frame_stride)) {
      const auto found = source_span.find(t[static_cast<size_t>(i)].phase);
      if (found == source_span.end()) continue;  // a phase the source episode never reached
      const auto [tb, te] = t_span[static_cast<size_t>(i)];
      const auto [sb, se] = found->second;
      const double fraction = te > tb ? static_cast<double>(i - tb) / (te - tb) : 0.0;
      pairs.push_back({{sources[k], sb + static_cast<int>(std::lround(fraction * (se - sb)))}, {targets[k], i}});
    }
  }
  require(!pairs.empty(), "patch study: no frame of a '" + o.target_variant + "' episode has its phase in a '" +
                              o.source_variant + "' episode");
  return pairs;
}

PatchStudy run_patch_study(Policy& policy, const DatasetReader& dataset, const std::vector<PatchSpec>& specs,
                           const PatchStudyOptions& o) {
  const bool between_episodes = !o.source_variant.empty() || !o.target_variant.empty();
  require(between_episodes || (!o.source_task.empty() && !o.target_task.empty() && o.source_task != o.target_task),
          "patch study: needs two different prompts (got '" + o.source_task + "' and '" + o.target_task + "')");
  require(!o.target_task.empty(), "patch study: needs the target prompt");
  const std::vector<PatchFramePair> frame_pairs = patch_frame_pairs(dataset, o);
  const std::string& source_task = between_episodes ? o.target_task : o.source_task;
  ActivationPatcher patcher(policy, specs, o.seed ^ 0x9e3779b97f4a7c15ULL);
  const size_t n = specs.size();
  // Per spec and frame: (p − t)·(s − t), |p − s|², and the random control's projection; per frame |s − t|².
  std::vector<std::vector<double>> projected(n), remaining(n), random_projected(n);
  std::vector<double> distance_sq;
  std::vector<double> max_abs(n, 0);
  double distance_sum = 0;
  ProgressBar bar("patching", static_cast<int64_t>(frame_pairs.size()), "frames");
  int frame_number = 0;
  for (const PatchFramePair& pair : frame_pairs) {
    const int64_t chunk_id = frame_number;
    patcher.record();
    const std::vector<double> s = flatten(policy.predict_chunk(
        frame_input(dataset.frame(pair.source.first, pair.source.second), source_task), o.seed, chunk_id));
    patcher.off();
    const PolicyInput in = frame_input(dataset.frame(pair.target.first, pair.target.second), o.target_task);
    const std::vector<double> t = flatten(policy.predict_chunk(in, o.seed, chunk_id));
    const std::vector<double> st = minus(s, t);
    distance_sq.push_back(dot(st, st));
    distance_sum += std::sqrt(distance_sq.back());
    for (size_t k = 0; k < n; ++k) {
      patcher.patch({static_cast<int>(k)});
      const std::vector<double> p = flatten(policy.predict_chunk(in, o.seed, chunk_id));
      const std::vector<double> pt = minus(p, t), ps = minus(p, s);
      projected[k].push_back(dot(pt, st));
      remaining[k].push_back(dot(ps, ps));
      for (double v : ps) max_abs[k] = std::max(max_abs[k], std::abs(v));
      if (o.random_control) {
        patcher.random({static_cast<int>(k)});
        const std::vector<double> q = flatten(policy.predict_chunk(in, o.seed, chunk_id));
        random_projected[k].push_back(dot(minus(q, t), st));
      }
    }
    patcher.off();
    bar.advance();
    ++frame_number;
  }
  bar.finish();
  PatchStudy study;
  study.frames = frame_number;
  study.mean_distance = distance_sum / std::max(1, frame_number);
  for (size_t k = 0; k < n; ++k) {
    PatchEffect effect;
    effect.spec = specs[k].text;
    const Ratio moved = pooled_ratio(projected[k], distance_sq, o.bootstrap, o.seed + k);
    effect.moved = moved.value, effect.moved_low = moved.low, effect.moved_high = moved.high;
    if (o.random_control) {
      const Ratio r = pooled_ratio(random_projected[k], distance_sq, o.bootstrap, o.seed + 7919 + k);
      effect.random_moved = r.value, effect.random_low = r.low, effect.random_high = r.high;
    }
    effect.remaining = pooled_ratio(remaining[k], distance_sq, 0, 0).value;
    effect.max_abs_to_source = max_abs[k];
    study.effects.push_back(effect);
  }
  return study;
}

}  // namespace vlascope
