#include "policy/hooks.h"

#include <algorithm>
#include <cstdlib>

#include "common/error.h"

namespace vlascope {
namespace {

constexpr int kMaxLayers = 256;
constexpr int kSites = static_cast<int>(HookSite::kCount);
constexpr int kStreams = 3;

struct SiteName {
  HookSite site;
  const char* name;
};
constexpr SiteName kLayerSites[] = {
    {HookSite::kAttnPattern, "attn.pattern"}, {HookSite::kAttnHeads, "attn.heads"},
    {HookSite::kAttnOut, "attn.out"},         {HookSite::kResidMid, "resid.mid"},
    {HookSite::kMlpPost, "mlp.post"},         {HookSite::kMlpOut, "mlp.out"},   {HookSite::kResidPost, "resid.post"},
};

bool layer_site_allowed(HookStream stream, HookSite site) {
  if (site == HookSite::kEmbed || site == HookSite::kVelocity) return false;
  // The vision tower has no separate attn.out / resid.mid / mlp.out points.
  if (stream == HookStream::kVision)
    return site == HookSite::kAttnPattern || site == HookSite::kMlpPost || site == HookSite::kResidPost;
  return true;
}

}  // namespace

const char* stream_name(HookStream stream) {
  switch (stream) {
    case HookStream::kVision: return "vision";
    case HookStream::kVlm: return "vlm";
    case HookStream::kExpert: return "expert";
  }
  return "?";
}

const char* site_name(HookSite site) {
  switch (site) {
    case HookSite::kEmbed: return "embed";
    case HookSite::kVelocity: return "velocity";
    default:
      for (const SiteName& s : kLayerSites)
        if (s.site == site) return s.name;
  }
  return "?";
}

const char* pass_name(ForwardPass pass) {
  switch (pass) {
    case ForwardPass::kPrefix: return "prefix";
    case ForwardPass::kDenoise: return "denoise";
    case ForwardPass::kTrain: return "train";
  }
  return "?";
}

std::string HookPoint::name() const {
  std::string s = stream_name(stream);
  if (layer < 0) return s + "." + site_name(site);
  return s + ".layers." + std::to_string(layer) + "." + site_name(site);
}

HookPoint parse_hook_point(const std::string& name) {
  const std::string bad = "unknown hook point '" + name +
                          "' (expected e.g. vlm.layers.3.mlp.post, expert.layers.1.attn.pattern, vlm.embed; "
                          "see policy/hooks.h)";
  HookPoint p;
  std::string rest;
  for (HookStream s : {HookStream::kVision, HookStream::kVlm, HookStream::kExpert}) {
    const std::string prefix = std::string(stream_name(s)) + ".";
    if (name.compare(0, prefix.size(), prefix) == 0) {
      p.stream = s;
      rest = name.substr(prefix.size());
      break;
    }
  }
  require(!rest.empty(), bad);
  if (rest == "embed" && p.stream != HookStream::kVision) return {p.stream, -1, HookSite::kEmbed};
  if (rest == "velocity" && p.stream == HookStream::kExpert) return {p.stream, -1, HookSite::kVelocity};
  const std::string layers = "layers.";
  require(rest.compare(0, layers.size(), layers) == 0, bad);
  rest = rest.substr(layers.size());
  const size_t dot = rest.find('.');
  require(dot != std::string::npos && dot > 0 && dot <= 3, bad);
  const std::string digits = rest.substr(0, dot);
  require(std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }), bad);
  p.layer = std::atoi(digits.c_str());
  require(p.layer < kMaxLayers, bad);
  const std::string site = rest.substr(dot + 1);
  for (const SiteName& s : kLayerSites) {
    if (site == s.name && layer_site_allowed(p.stream, s.site)) {
      p.site = s.site;
      return p;
    }
  }
  throw Error(bad);
}

HookPoint mlp_post_point(HookStream stream, int layer) { return {stream, layer, HookSite::kMlpPost}; }
HookPoint attn_pattern_point(HookStream stream, int layer) { return {stream, layer, HookSite::kAttnPattern}; }

Hooks::Hooks() : active_(static_cast<size_t>(kStreams) * (kMaxLayers + 1) * kSites, 0) {}

int Hooks::slot(HookStream stream, int layer, HookSite site) {
  return (static_cast<int>(stream) * (kMaxLayers + 1) + (layer + 1)) * kSites + static_cast<int>(site);
}

HookHandle::HookHandle(HookHandle&& other) noexcept : hooks_(other.hooks_), id_(other.id_) { other.hooks_ = nullptr; }

HookHandle& HookHandle::operator=(HookHandle&& other) noexcept {
  if (this != &other) {
    reset();
    hooks_ = other.hooks_;
    id_ = other.id_;
    other.hooks_ = nullptr;
  }
  return *this;
}

void HookHandle::reset() {
  if (hooks_) hooks_->remove(id_);
  hooks_ = nullptr;
}

HookHandle Hooks::add(const std::string& name, HookFn fn) { return add(parse_hook_point(name), std::move(fn)); }

HookHandle Hooks::add(const HookPoint& point, HookFn fn) {
  require(point.layer >= -1 && point.layer < kMaxLayers, "hook point " + point.name() + ": layer out of range");
  require(static_cast<bool>(fn), "hook point " + point.name() + ": empty hook function");
  const int id = next_handle_++;
  entries_.push_back({id, point, std::move(fn)});
  rebuild();
  return HookHandle(this, id);
}

void Hooks::remove(int id) {
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.handle == id; }),
                 entries_.end());
  rebuild();
}

void Hooks::clear() {
  entries_.clear();
  rebuild();
}

std::vector<HookPoint> Hooks::points() const {
  std::vector<HookPoint> out;
  for (const Entry& e : entries_)
    if (std::find(out.begin(), out.end(), e.point) == out.end()) out.push_back(e.point);
  return out;
}

void Hooks::rebuild() {
  std::fill(active_.begin(), active_.end(), 0);
  for (const Entry& e : entries_) active_[slot(e.point.stream, e.point.layer, e.point.site)] = 1;
}

bool Hooks::active(HookStream stream, int layer, HookSite site) const {
  if (layer < -1 || layer >= kMaxLayers) return false;
  return active_[slot(stream, layer, site)] != 0;
}

void Hooks::run(HookStream stream, int layer, HookSite site, const HookContext& context,
                at::Tensor& activation) const {
  if (!active(stream, layer, site)) return;
  const HookPoint point{stream, layer, site};
  for (const Entry& e : entries_)
    if (e.point == point) e.fn(context, activation);
}

}  // namespace vlascope
