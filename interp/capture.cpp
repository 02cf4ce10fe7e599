#include "interp/capture.h"

#include <torch/torch.h>

#include <algorithm>
#include <tuple>

#include "common/error.h"
#include "policy/policy.h"
#include "policy/smolvla.h"

namespace vlascope {
namespace {

bool wanted(const std::vector<int>& list, int value) {
  return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}

HookStream hook_stream(Stream s) { return s == Stream::kVlm ? HookStream::kVlm : HookStream::kExpert; }

// [rows, keys] or [heads, rows, keys] float tensor → AttentionPattern.
AttentionPattern to_pattern(const torch::Tensor& t) {
  const torch::Tensor c = t.dim() == 2 ? t.unsqueeze(0).contiguous() : t.contiguous();
  const torch::Tensor f = c.to(torch::kCPU, torch::kFloat32).contiguous();
  AttentionPattern p(static_cast<int>(f.size(0)), static_cast<int>(f.size(1)), static_cast<int>(f.size(2)));
  std::copy(f.data_ptr<float>(), f.data_ptr<float>() + f.numel(), p.p.begin());
  return p;
}

std::vector<float> to_vector(const torch::Tensor& t) {
  const torch::Tensor f = t.to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
}

}  // namespace

ModelShape model_shape(const SmolVLAConfig& c) {
  return {StreamShape::contiguous(c.num_vlm_layers, c.text.intermediate, c.text.hidden),
          StreamShape::contiguous(c.num_expert_layers, c.expert_intermediate(), c.expert_hidden())};
}

const CapturedAttention* CapturedChunk::find(HookStream stream, int layer, int step) const {
  for (const CapturedAttention& a : maps)
    if (a.point.stream == stream && a.point.layer == layer && (step < 0 || a.step == step)) return &a;
  return nullptr;
}

std::vector<const CapturedAttention*> CapturedChunk::all(HookStream stream, int layer) const {
  std::vector<const CapturedAttention*> out;
  for (const CapturedAttention& a : maps)
    if (a.point.stream == stream && a.point.layer == layer) out.push_back(&a);
  return out;
}

// ---- attention ---------------------------------------------------------------------------------------------

AttentionRecorder::AttentionRecorder(Policy& policy, AttentionCaptureSpec spec)
    : policy_(policy), spec_(std::move(spec)) {
  require(spec_.max_chunks > 0, "attention capture: max_chunks must be > 0");
  Hooks& hooks = policy_.hooks();
  const SmolVLAConfig& c = policy_.config();
  // A new chunk starts with every prefix pass.
  handles_.push_back(
      hooks.add(HookPoint{HookStream::kVlm, -1, HookSite::kEmbed}, [this](const HookContext&, at::Tensor&) {
        if (paused_) return;
        CapturedChunk chunk;
        chunk.index = next_index_++;
        chunk.layout = policy_.layout();
        chunks_.push_back(std::move(chunk));
        while (static_cast<int>(chunks_.size()) > spec_.max_chunks) chunks_.pop_front();
      }));
  auto add = [&](HookStream stream, int layer) {
    handles_.push_back(hooks.add(
        attn_pattern_point(stream, layer),
        [this, stream, layer](const HookContext& ctx, at::Tensor& t) { on_pattern(stream, layer, ctx, &t); }));
  };
  if (spec_.vlm)
    for (int i = 0; i < c.num_vlm_layers; ++i)
      if (wanted(spec_.vlm_layers, i)) add(HookStream::kVlm, i);
  if (spec_.expert)
    for (int j = 0; j < c.num_expert_layers; ++j)
      if (wanted(spec_.expert_layers, j)) add(HookStream::kExpert, j);
  if (spec_.vision)
    for (int i = 0; i < c.vision.layers; ++i)
      if (wanted(spec_.vision_layers, i)) add(HookStream::kVision, i);
}

size_t AttentionRecorder::bytes() const {
  size_t n = 0;
  for (const CapturedChunk& c : chunks_)
    for (const CapturedAttention& a : c.maps) n += a.pattern.p.size() * sizeof(float);
  return n;
}

void AttentionRecorder::on_pattern(HookStream stream, int layer, const HookContext& ctx, const void* tensor) {
  if (chunks_.empty() || paused_) return;  // paused, or a forward outside a policy chunk (no layout)
  if (ctx.pass == ForwardPass::kDenoise && !wanted(spec_.steps, ctx.step)) return;
  CapturedChunk& chunk = chunks_.back();
  const torch::Tensor& full = *static_cast<const at::Tensor*>(tensor);
  torch::NoGradGuard no_grad;
  torch::Tensor p = full.select(0, 0).detach();  // [H, rows, keys], batch element 0
  CapturedAttention a;
  a.point = attn_pattern_point(stream, layer);
  a.pass = ctx.pass;
  a.step = ctx.pass == ForwardPass::kDenoise ? ctx.step : -1;
  a.time = ctx.time;
  if (!spec_.heads.empty()) {
    for (int h : spec_.heads)
      require(h >= 0 && h < p.size(0), "attention capture: head " + std::to_string(h) + " does not exist (" +
                                           std::to_string(p.size(0)) + " heads)");
    p = p.index_select(0, torch::tensor(std::vector<int64_t>(spec_.heads.begin(), spec_.heads.end())));
    a.heads = spec_.heads;
  } else {
    for (int h = 0; h < p.size(0); ++h) a.heads.push_back(h);
  }
  if (spec_.fuse_heads) {
    p = spec_.fusion == HeadFusion::kMean  ? p.mean(0, true)
        : spec_.fusion == HeadFusion::kMax ? std::get<0>(p.max(0, true))
                                           : std::get<0>(p.min(0, true));
    a.heads = {-1};
  }
  // Rows.
  if (stream == HookStream::kVlm && spec_.vlm_queries == AttentionCaptureSpec::VlmQueries::kLastWordAndState) {
    std::vector<int64_t> rows;
    const int last = last_language_token(chunk.layout), state = state_token(chunk.layout);
    for (int r : {last, state})
      if (r >= 0 && r < p.size(1)) rows.push_back(r), a.query_positions.push_back(r);
    p = p.index_select(1, torch::tensor(rows));
  } else if (stream == HookStream::kExpert && spec_.mean_over_actions) {
    p = p.mean(1, true);
    a.query_positions = {-1};
  } else {
    for (int r = 0; r < p.size(1); ++r) a.query_positions.push_back(ctx.query_begin + r);
  }
  a.pattern = to_pattern(p);
  if (stream == HookStream::kExpert && spec_.mean_over_steps) {
    for (CapturedAttention& old : chunk.maps) {
      if (old.point == a.point) {  // running mean over the steps
        const double k = old.steps_averaged;
        for (size_t i = 0; i < old.pattern.p.size(); ++i)
          old.pattern.p[i] = static_cast<float>((old.pattern.p[i] * k + a.pattern.p[i]) / (k + 1));
        old.steps_averaged += 1;
        return;
      }
    }
    a.step = -1;
  }
  chunk.maps.push_back(std::move(a));
}

// ---- activations -------------------------------------------------------------------------------------------

ActivationRecorder::ActivationRecorder(Policy& policy, bool vlm, bool expert, std::vector<int> vlm_layers,
                                       std::vector<int> expert_layers, ChannelSite site)
    : policy_(policy) {
  const HookSite hook_site = site == ChannelSite::kMlpPost ? HookSite::kMlpPost : HookSite::kResidPost;
  Hooks& hooks = policy_.hooks();
  const SmolVLAConfig& c = policy_.config();
  handles_.push_back(
      hooks.add(HookPoint{HookStream::kVlm, -1, HookSite::kEmbed}, [this](const HookContext&, at::Tensor&) {
        ChunkActivations a;
        a.index = static_cast<int>(chunks_.size());
        chunks_.push_back(std::move(a));
        expert_counts_.clear();
      }));
  if (vlm) {
    for (int i = 0; i < c.num_vlm_layers; ++i) {
      if (!wanted(vlm_layers, i)) continue;
      handles_.push_back(hooks.add(HookPoint{HookStream::kVlm, i, hook_site}, [this, i](const HookContext& ctx,
                                                                                        at::Tensor& t) {
        if (chunks_.empty() || ctx.pass != ForwardPass::kPrefix) return;
        torch::NoGradGuard no_grad;
        const PrefixLayout& layout = policy_.layout();
        const torch::Tensor x = t.select(0, 0).detach().to(torch::kFloat32);  // [Lp, channels]
        // Row weights: every valid row, the valid image rows, the valid word rows.
        std::vector<float> valid(static_cast<size_t>(x.size(0)), 1.f), images(valid.size(), 0.f), words(valid.size(), 0.f);
        int last_word = -1;
        for (int p = 0; p < x.size(0) && !layout.tokens.empty() && p < static_cast<int>(layout.tokens[0].size()); ++p) {
          const LayoutToken& token = layout.tokens[0][p];
          valid[p] = token.padding ? 0.f : 1.f;
          images[p] = token.kind == TokenKind::kImage ? valid[p] : 0.f;
          words[p] = token.kind == TokenKind::kLanguage ? valid[p] : 0.f;
          if (words[p] > 0) last_word = p;
        }
        auto mean_over = [&](const std::vector<float>& rows) {
          const torch::Tensor w = torch::tensor(rows).unsqueeze(1);
          return to_vector((x * w).sum(0) / w.sum().clamp_min(1));
        };
        chunks_.back().vlm_mean[i] = mean_over(valid);
        chunks_.back().vlm_images[i] = mean_over(images);
        chunks_.back().vlm_words[i] = mean_over(words);
        const int s = layout.state_index;
        if (s >= 0 && s < x.size(0)) chunks_.back().vlm_state[i] = to_vector(x.select(0, s));
        if (last_word >= 0) chunks_.back().vlm_last_word[i] = to_vector(x.select(0, last_word));
      }));
    }
  }
  if (expert) {
    for (int j = 0; j < c.num_expert_layers; ++j) {
      if (!wanted(expert_layers, j)) continue;
      handles_.push_back(hooks.add(HookPoint{HookStream::kExpert, j, hook_site}, [this, j](const HookContext& ctx,
                                                                                           at::Tensor& t) {
        if (chunks_.empty() || ctx.pass != ForwardPass::kDenoise) return;
        torch::NoGradGuard no_grad;
        const std::vector<float> m = to_vector(t.select(0, 0).detach().to(torch::kFloat32).mean(0));  // over actions
        std::vector<float>& acc = chunks_.back().expert_mean[j];
        int& n = expert_counts_[j];
        if (acc.empty()) acc.assign(m.size(), 0.f);
        for (size_t k = 0; k < m.size(); ++k) acc[k] = (acc[k] * n + m[k]) / (n + 1);  // mean over steps
        ++n;
      }));
    }
  }
}


// ---- steering ----------------------------------------------------------------------------------------------

Steering::Steering(SmolVLA& model, const std::vector<NeuronSet>& sets, const std::vector<Intervention>& interventions)
    : model_(model) {
  const ModelShape shape = model_shape(model.config());
  struct Entry {
    Intervention intervention;
    TokenRegion tokens;
    torch::Tensor index;  // [n] channels
    torch::Tensor alpha;  // [n] α × each channel's weight
  };
  std::map<std::tuple<int, int, ChannelSite>, std::vector<Entry>> by_layer;  // (stream, layer, site) → what to do
  for (const Intervention& iv : interventions) {
    validate_intervention(iv, sets, model.config().num_steps);
    const NeuronSet& set = find_neuron_set(sets, iv.set);
    validate_neuron_set(set, shape);
    // (stream, layer, site, token region) → channels and their α
    std::map<std::tuple<int, int, ChannelSite, TokenRegion>, std::pair<std::vector<int64_t>, std::vector<float>>>
        channels;
    for (const NeuronRef& n : set.neurons) {
      auto& [index, alpha] = channels[{static_cast<int>(n.stream), n.layer, n.site, n.tokens}];
      index.push_back(n.index);
      alpha.push_back(static_cast<float>(iv.alpha * n.weight));
    }
    for (const auto& [key, c] : channels)
      by_layer[{std::get<0>(key), std::get<1>(key), std::get<2>(key)}].push_back(
          {iv, std::get<3>(key), torch::tensor(c.first, torch::kInt64), torch::tensor(c.second)});
  }
  for (auto& [key, entries] : by_layer) {
    const auto [stream, layer, site] = key;
    const HookPoint point{hook_stream(static_cast<Stream>(stream)), layer,
                          site == ChannelSite::kMlpPost ? HookSite::kMlpPost : HookSite::kResidPost};
    handles_.push_back(model_.hooks().add(point, [entries = entries, gains = row_gains_](const HookContext& ctx,
                                                                                       at::Tensor& act) {
      const bool prefix = ctx.pass != ForwardPass::kDenoise;
      // [B, 1, 1] per-row gains of closed-loop steering, or none.
      torch::Tensor row_gain;
      if (!gains->empty()) {
        require(static_cast<int64_t>(gains->size()) == act.size(0),
                "steering: " + std::to_string(gains->size()) + " row gains for a batch of " +
                    std::to_string(act.size(0)));
        row_gain = torch::tensor(*gains).to(act.device(), act.scalar_type()).view({-1, 1, 1});
      }
      for (const Entry& e : entries) {
        if (!e.intervention.applies(prefix, ctx.step)) continue;
        // The rows of the entry's kind of token ([B, L, I] → [B, rows, I], a view written in place).
        torch::Tensor rows = act;
        if (e.tokens != TokenRegion::kAll) {
          require(ctx.words_begin >= 0 && ctx.state_index >= ctx.words_begin && ctx.state_index < act.size(1),
                  "steering '" + e.intervention.set + "': this pass does not say where its " +
                      token_region_name(e.tokens) + " rows are");
          int64_t begin = 0, end = 0;
          switch (e.tokens) {
            case TokenRegion::kImages:
              begin = 0, end = ctx.words_begin;
              break;
            case TokenRegion::kWords:
              begin = ctx.words_begin, end = ctx.state_index;
              break;
            case TokenRegion::kState:
              begin = ctx.state_index, end = ctx.state_index + 1;
              break;
            case TokenRegion::kLastWord:
              require(ctx.words_end > ctx.words_begin && ctx.words_end <= ctx.state_index,
                      "steering '" + e.intervention.set + "': this pass does not say where its last word is");
              begin = ctx.words_end - 1, end = ctx.words_end;
              break;
            case TokenRegion::kAll:
              break;
          }
          if (end <= begin) continue;
          rows = act.narrow(1, begin, end - begin);
        }
        const torch::Tensor idx = e.index.to(act.device());
        torch::Tensor alpha = e.alpha.to(act.device(), act.scalar_type());  // [n], broadcast over [B, L]
        if (row_gain.defined()) alpha = row_gain * alpha;                      // [B, 1, n]
        const torch::Tensor picked = rows.index_select(-1, idx);
        switch (e.intervention.op) {
          case InterventionOp::kSet:
            rows.index_copy_(-1, idx, alpha.expand_as(picked).contiguous());
            break;
          case InterventionOp::kAdd:
            rows.index_copy_(-1, idx, picked + alpha);
            break;
          case InterventionOp::kScale:
            rows.index_copy_(-1, idx, picked * alpha);
            break;
        }
      }
    }));
  }
}


}  // namespace vlascope
