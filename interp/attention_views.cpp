#include "interp/attention_views.h"

#include <algorithm>
#include <cstdio>

#include "common/error.h"

namespace vlascope {
namespace {

// One head of a captured map, or the fusion of its heads: a single-head pattern.
AttentionPattern one_head(const CapturedAttention& a, int head, HeadFusion fusion) {
  if (head < 0) return a.pattern.heads == 1 ? a.pattern : fuse_heads(a.pattern, fusion);
  for (size_t k = 0; k < a.heads.size(); ++k)
    if (a.heads[k] == head) return select_head(a.pattern, static_cast<int>(k));
  throw Error("attention view: head " + std::to_string(head) + " of " + a.point.name() + " was not captured");
}

// The query's row of a single-head pattern, over the first `keys` keys (the prefix).
std::vector<float> query_row(const CapturedAttention& a, const AttentionPattern& single, QueryChoice query,
                             const PrefixLayout& layout, int keys) {
  std::vector<float> row(static_cast<size_t>(keys), 0.f);
  std::vector<int> rows;
  if (a.point.stream == HookStream::kExpert || query == QueryChoice::kActions) {
    for (int r = 0; r < single.queries; ++r) rows.push_back(r);  // every action row (or the stored mean row)
  } else {
    const int target = query == QueryChoice::kState ? state_token(layout) : last_language_token(layout);
    for (size_t r = 0; r < a.query_positions.size(); ++r)
      if (a.query_positions[r] == target) rows.push_back(static_cast<int>(r));
    require(!rows.empty(), "attention view: the " + std::string(query_choice_name(query)) + " row (position " +
                               std::to_string(target) + ") of " + a.point.name() + " was not captured");
  }
  const int k = std::min(keys, single.keys);
  for (int r : rows) {
    const float* src = single.row(0, r);
    for (int i = 0; i < k; ++i) row[i] += src[i] / static_cast<float>(rows.size());
  }
  return row;
}

std::vector<int> captured_layers(const CapturedChunk& chunk, HookStream stream) {
  std::vector<int> layers;
  for (const CapturedAttention& a : chunk.maps)
    if (a.point.stream == stream && std::find(layers.begin(), layers.end(), a.point.layer) == layers.end())
      layers.push_back(a.point.layer);
  std::sort(layers.begin(), layers.end());
  return layers;
}

// The maps of one layer that a request uses (one step, or all captured steps).
std::vector<const CapturedAttention*> layer_maps(const CapturedChunk& chunk, HookStream stream, int layer, int step) {
  std::vector<const CapturedAttention*> out;
  for (const CapturedAttention* a : chunk.all(stream, layer))
    if (step < 0 || a->step == step) out.push_back(a);
  require(!out.empty(), "attention view: " + attn_pattern_point(stream, layer).name() +
                            (step >= 0 ? " at denoising step " + std::to_string(step) : std::string()) +
                            " was not captured");
  return out;
}

}  // namespace

const char* query_choice_name(QueryChoice q) {
  switch (q) {
    case QueryChoice::kLastWord: return "last-word";
    case QueryChoice::kState: return "state";
    case QueryChoice::kActions: return "actions";
  }
  return "?";
}

QueryChoice parse_query_choice(const std::string& name) {
  if (name == "last-word") return QueryChoice::kLastWord;
  if (name == "state") return QueryChoice::kState;
  if (name == "actions") return QueryChoice::kActions;
  throw Error("unknown query '" + name + "' (last-word, state, actions)");
}

std::string MapRequest::label() const {
  std::string s = stream_name(stream);
  if (layers.empty()) s += " all layers";
  else if (layers.size() == 1) s += " L" + std::to_string(layers[0]);
  else s += " L" + std::to_string(layers.front()) + "-" + std::to_string(layers.back());
  s += rollout ? " rollout" : "";
  s += head >= 0 ? " H" + std::to_string(head) : std::string(" ") + head_fusion_name(fusion);
  s += std::string(" ") + query_choice_name(stream == HookStream::kExpert ? QueryChoice::kActions : query);
  if (stream == HookStream::kExpert) s += step >= 0 ? " step " + std::to_string(step) : " all steps";
  return s;
}

AttentionView attention_view(const CapturedChunk& chunk, const MapRequest& request) {
  const PrefixLayout& layout = chunk.layout;
  const int lp = layout.prefix_len;
  std::vector<int> layers = request.layers.empty() ? captured_layers(chunk, request.stream) : request.layers;
  require(!layers.empty(), std::string("attention view: nothing of the ") + stream_name(request.stream) +
                               " stream was captured");
  AttentionView view;
  view.label = request.label();
  if (request.rollout) {
    require(request.stream == HookStream::kVlm, "attention view: rollout is for the VLM's self-attention");
    std::vector<AttentionPattern> stack;
    for (int l : layers) {
      const CapturedAttention* a = layer_maps(chunk, request.stream, l, -1).front();
      require(a->pattern.queries == a->pattern.keys,
              "attention view: rollout needs every row of " + a->point.name() + " (capture all VLM queries)");
      stack.push_back(one_head(*a, request.head, request.fusion));
    }
    const AttentionPattern r = attention_rollout(stack, HeadFusion::kMean);
    const int target = request.query == QueryChoice::kState ? state_token(layout) : last_language_token(layout);
    require(target >= 0 && target < r.queries, "attention view: no query row for rollout");
    view.row.assign(r.row(0, target), r.row(0, target) + std::min(lp, r.keys));
    view.row.resize(static_cast<size_t>(lp), 0.f);
  } else {
    view.row.assign(static_cast<size_t>(lp), 0.f);
    for (int l : layers) {
      const std::vector<const CapturedAttention*> maps = layer_maps(chunk, request.stream, l, request.step);
      for (const CapturedAttention* a : maps) {
        const std::vector<float> row =
            query_row(*a, one_head(*a, request.head, request.fusion), request.query, layout, lp);
        const float w = 1.f / static_cast<float>(maps.size() * layers.size());
        for (int i = 0; i < lp; ++i) view.row[i] += w * row[i];
      }
    }
  }
  for (int c = 0; c < static_cast<int>(layout.camera_names.size()); ++c)
    view.cameras.push_back(camera_attention(view.row, layout, c));
  view.words = language_attention(view.row, layout);
  return view;
}

std::vector<GridMap> head_maps(const CapturedChunk& chunk, HookStream stream, int layer, QueryChoice query,
                               int camera, int step) {
  const std::vector<const CapturedAttention*> maps = layer_maps(chunk, stream, layer, step);
  std::vector<GridMap> out;
  for (size_t h = 0; h < maps.front()->heads.size(); ++h) {
    std::vector<float> row(static_cast<size_t>(chunk.layout.prefix_len), 0.f);
    for (const CapturedAttention* a : maps) {
      const std::vector<float> r =
          query_row(*a, select_head(a->pattern, static_cast<int>(h)), query, chunk.layout, chunk.layout.prefix_len);
      for (size_t i = 0; i < row.size(); ++i) row[i] += r[i] / static_cast<float>(maps.size());
    }
    out.push_back(camera_attention(row, chunk.layout, camera).map);
  }
  return out;
}

AttentionScores score_attention(const CameraAttention& attention, const LabelImage& segmentation,
                                const PadGeometry& geometry) {
  AttentionScores s;
  const GridMap& map = attention.map;
  const int rows = map.rows, cols = map.cols;
  const GridMask cube = grid_mask(segmentation, {2}, geometry, rows, cols);
  s.cube = mask_mass(map, cube);
  s.gripper = mask_mass(map, grid_mask(segmentation, {3}, geometry, rows, cols));
  s.arm = mask_mass(map, grid_mask(segmentation, {4}, geometry, rows, cols));
  s.background = mask_mass(map, grid_mask(segmentation, {0, 1}, geometry, rows, cols));
  s.entropy = normalized_entropy(map.values);
  s.hoyer = hoyer_sparsity(map.values);
  s.pointing = pointing_game(map, cube);
  s.camera_ratio = attention.camera_ratio;
  s.image_ratio = attention.image_ratio;
  return s;
}

}  // namespace vlascope
