#include "apps/attention_figures.h"

#include <algorithm>

#include "common/image_io.h"
#include "policy/config.h"
#include "sim/simulator.h"

namespace vlascope {

SegmentationSource simulator_segmentation(Robot& robot) {
  auto* sim = dynamic_cast<Simulator*>(&robot);
  if (!sim) return {};
  return [sim](const Observation&) {
    std::map<std::string, LabelImage> out;
    for (const std::string& cam : sim->camera_names()) {
      RenderRequest request;
      request.rgb = false;
      request.segmentation = true;
      const RenderOutput r = sim->render(cam, sim->options().image_width, sim->options().image_height, request);
      LabelImage labels(r.segmentation.width, r.segmentation.height);
      for (size_t i = 0; i < labels.labels.size(); ++i) labels.labels[i] = r.segmentation.pixels[i];
      out[cam] = std::move(labels);
    }
    return out;
  };
}

FigureMaps::FigureMaps() {
  vlm.stream = HookStream::kVlm;
  vlm.query = QueryChoice::kLastWord;
  expert.stream = HookStream::kExpert;
  expert.query = QueryChoice::kActions;
}

MapRequest expert_request(const FigureMaps& maps, const CapturedChunk& chunk, const SmolVLAConfig& config) {
  MapRequest r = maps.expert;
  if (!r.layers.empty()) return r;
  for (int j = config.num_expert_layers - 1; j >= 0; --j) {
    if (config.expert_layer_is_cross(j) && chunk.find(HookStream::kExpert, j)) {
      r.layers = {j};
      break;
    }
  }
  return r;
}

namespace {

const Image* frame_of(const Observation& obs, const std::string& camera) {
  auto it = obs.images.find(camera);
  return it == obs.images.end() ? nullptr : &it->second;
}

// Frames are small (128²): show them at 192 px.
Image big(const Image& img) { return resize(img, 192, 192 * img.height / img.width); }

}  // namespace

Image chunk_figure(const CapturedChunk& chunk, const Observation& obs, const SmolVLAConfig& config,
                   const std::string& title, const FigureMaps& maps) {
  const auto [iw, ih] = config.input_image_size();
  const AttentionView vlm = maps.draw_vlm() ? attention_view(chunk, maps.vlm) : AttentionView{};
  const MapRequest er = expert_request(maps, chunk, config);
  const bool has_expert = !er.layers.empty();
  const AttentionView expert = has_expert ? attention_view(chunk, er) : AttentionView{};
  std::vector<Image> rows;
  for (size_t cam = 0; cam < chunk.layout.camera_names.size(); ++cam) {
    const Image* frame = frame_of(obs, chunk.layout.camera_names[cam]);
    if (!frame) continue;
    const Image f = big(*frame);
    const PadGeometry g = resize_with_pad_geometry(f.width, f.height, iw, ih);
    std::vector<Image> panels;
    if (maps.draw_vlm())
      panels.push_back(
          camera_figure(f, vlm.cameras[cam].map, g, &vlm.words, {}, chunk.layout.camera_names[cam] + ": " + vlm.label));
    if (has_expert)
      panels.push_back(camera_figure(f, expert.cameras[cam].map, g, nullptr, {},
                                     chunk.layout.camera_names[cam] + ": " + expert.label));
    if (!panels.empty()) rows.push_back(panel_row(panels));
  }
  return with_caption(vstack(rows, 6), title);
}

Image layers_heads_figure(const CapturedChunk& chunk, const Observation& obs, const SmolVLAConfig& config,
                          HookStream stream, int camera, const FigureMaps& request) {
  const auto [iw, ih] = config.input_image_size();
  const Image* frame = frame_of(obs, chunk.layout.camera_names.at(static_cast<size_t>(camera)));
  const MapRequest& r = stream == HookStream::kVlm ? request.vlm : request.expert;
  std::vector<std::vector<GridMap>> maps;
  std::vector<std::string> labels;
  const int layers = stream == HookStream::kVlm ? config.num_vlm_layers : config.num_expert_layers;
  for (int l = 0; l < layers; ++l) {
    if (!chunk.find(stream, l)) continue;
    if (!r.layers.empty() && std::find(r.layers.begin(), r.layers.end(), l) == r.layers.end()) continue;
    maps.push_back(head_maps(chunk, stream, l, stream == HookStream::kVlm ? r.query : QueryChoice::kActions, camera,
                             stream == HookStream::kVlm ? -1 : r.step));
    std::string label = "L" + std::to_string(l);
    if (stream == HookStream::kExpert) label += config.expert_layer_is_cross(l) ? " x" : " j";
    labels.push_back(label);
  }
  if (maps.empty()) return Image(8, 8);
  const PadGeometry g =
      frame ? resize_with_pad_geometry(frame->width, frame->height, iw, ih) : resize_with_pad_geometry(iw, ih, iw, ih);
  HeatStyle style;
  std::vector<GridMap> all;
  for (const auto& row : maps) all.insert(all.end(), row.begin(), row.end());
  style.range = shared_range(all, 99);
  return with_caption(layer_head_grid(maps, frame, g, style, 96, labels),
                      std::string(stream_name(stream)) + " attention, layers × heads, camera " +
                          chunk.layout.camera_names[static_cast<size_t>(camera)] +
                          (stream == HookStream::kExpert ? " (j joint, x cross)" : ""));
}

Image overlay_strip(const CapturedChunk* chunk, const Observation& obs, const SmolVLAConfig& config,
                    const std::string& caption, const FigureMaps& maps) {
  const auto [iw, ih] = config.input_image_size();
  std::vector<Image> columns;
  AttentionView vlm, expert;
  bool has_expert = false;
  if (chunk) {
    if (maps.draw_vlm()) vlm = attention_view(*chunk, maps.vlm);
    const MapRequest er = expert_request(maps, *chunk, config);
    has_expert = !er.layers.empty();
    if (has_expert) expert = attention_view(*chunk, er);
  }
  const std::vector<std::string> cameras = chunk ? chunk->layout.camera_names : std::vector<std::string>{};
  for (const auto& [name, image] : obs.images) {
    const Image f = big(image);
    const PadGeometry g = resize_with_pad_geometry(f.width, f.height, iw, ih);
    auto it = std::find(cameras.begin(), cameras.end(), name);
    if (!chunk || it == cameras.end()) {
      columns.push_back(maps.draw_vlm() ? vstack({f, f}, 2) : f);
      continue;
    }
    const size_t cam = static_cast<size_t>(it - cameras.begin());
    Image bottom = has_expert ? heat_overlay(f, expert.cameras[cam].map, g) : f;
    put_text(bottom, "expert", 4, 12);
    if (!maps.draw_vlm()) {
      columns.push_back(bottom);
      continue;
    }
    Image top = heat_overlay(f, vlm.cameras[cam].map, g);
    put_text(top, "VLM", 4, 12);
    columns.push_back(vstack({top, bottom}, 2));
  }
  return with_caption(hstack(columns, 4), caption);
}

}  // namespace vlascope
