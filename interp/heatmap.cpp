#include "interp/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "common/image_io.h"

namespace vlascope {

namespace {

void require_grid(const GridMap& map, const char* where) {
  require(map.rows > 0 && map.cols > 0 && map.values.size() == static_cast<size_t>(map.rows) * map.cols,
          std::string(where) + ": the map's values do not match its " + std::to_string(map.rows) + "x" +
              std::to_string(map.cols) + " grid");
  for (float v : map.values) require(std::isfinite(v), std::string(where) + ": the map holds a non-finite value");
}

void require_frame(const Image& frame, const PadGeometry& g, const char* where) {
  require(!frame.empty() && frame.pixels.size() == static_cast<size_t>(frame.width) * frame.height * frame.channels,
          std::string(where) + ": the frame is empty or its pixels do not match its size");
  require(frame.width == g.frame_width && frame.height == g.frame_height,
          std::string(where) + ": the frame is " + std::to_string(frame.width) + "x" + std::to_string(frame.height) +
              " but the geometry expects " + std::to_string(g.frame_width) + "x" + std::to_string(g.frame_height));
}

// The colour range a map is drawn with: the style's shared range, or the map's own min … max.
HeatRange range_for(const GridMap& map, const HeatRange& range) {
  if (!range.per_map()) return range;
  const auto [lo, hi] = std::minmax_element(map.values.begin(), map.values.end());
  return HeatRange{*lo, *hi > *lo ? *hi : *lo + 1e-12f};
}

// Sampling positions along one axis: for each frame pixel, the two cells it blends and the weight of the second.
struct AxisSamples {
  std::vector<int> first, second;
  std::vector<float> weight;
};

AxisSamples axis_samples(int pixels, int cells, double input_size, double (*to_input)(const PadGeometry&, double),
                         const PadGeometry& g, Upsample upsample) {
  AxisSamples s;
  const double cell = input_size / cells;
  for (int p = 0; p < pixels; ++p) {
    const double u = to_input(g, p + 0.5) / cell;  // in cell units; cell k spans [k, k + 1)
    if (upsample == Upsample::kNearest) {
      const int k = std::clamp(static_cast<int>(std::floor(u)), 0, cells - 1);
      s.first.push_back(k);
      s.second.push_back(k);
      s.weight.push_back(0);
      continue;
    }
    const double centre = u - 0.5;  // cell centres at integers
    const int k0 = static_cast<int>(std::floor(centre));
    const double f = centre - k0;
    s.first.push_back(std::clamp(k0, 0, cells - 1));
    s.second.push_back(std::clamp(k0 + 1, 0, cells - 1));
    s.weight.push_back(static_cast<float>(f));
  }
  return s;
}

double input_x_of(const PadGeometry& g, double x) { return g.input_x(x); }
double input_y_of(const PadGeometry& g, double y) { return g.input_y(y); }

void draw_rect(Image& image, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
  auto plot = [&](int x, int y) {
    if (x < 0 || y < 0 || x >= image.width || y >= image.height) return;
    uint8_t* p = image.at(x, y);
    for (int c = 0; c < std::min(3, image.channels); ++c) p[c] = rgb[c];
  };
  for (int x = x0; x <= x1; ++x) {
    plot(x, y0);
    plot(x, y1);
  }
  for (int y = y0; y <= y1; ++y) {
    plot(x0, y);
    plot(x1, y);
  }
}

void fill_rect(Image& image, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
  for (int y = std::max(0, y0); y <= std::min(image.height - 1, y1); ++y)
    for (int x = std::max(0, x0); x <= std::min(image.width - 1, x1); ++x) {
      uint8_t* p = image.at(x, y);
      for (int c = 0; c < std::min(3, image.channels); ++c) p[c] = rgb[c];
    }
}

std::string printable(const std::string& piece, size_t max_chars) {
  std::string out;
  for (size_t i = 0; i < piece.size(); ++i) {
    const unsigned char ch = static_cast<unsigned char>(piece[i]);
    if (ch == '\n')
      out += "\\n";
    else if (ch == '\t')
      out += "\\t";
    else if (ch == ' ')
      out += '_';
    else if (ch == 0xC4 && i + 1 < piece.size() && static_cast<unsigned char>(piece[i + 1]) == 0xA0) {
      out += '_';  // byte-level BPE's visible space 'Ġ'
      ++i;
    } else if (ch >= 0x80) {
      if ((ch & 0xC0) != 0x80) out += '?';  // one '?' per UTF-8 character, not per byte
    } else if (ch < 0x20 || ch == 0x7F)
      out += '?';
    else
      out += static_cast<char>(ch);
  }
  if (out.size() > max_chars) out = out.substr(0, max_chars - 1) + "~";
  return out;
}

std::string format_value(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.3g", v);
  return buffer;
}

const uint8_t kWhite[3] = {255, 255, 255};
const uint8_t kDark[3] = {30, 30, 30};
const uint8_t kGridLine[3] = {45, 45, 45};
const uint8_t kBar[3] = {240, 150, 40};
const uint8_t kLabel[3] = {220, 220, 220};

}  // namespace

HeatRange shared_range(const std::vector<GridMap>& maps, double clip_percentile) {
  require(!maps.empty(), "shared_range: no maps given");
  require(clip_percentile > 0 && clip_percentile <= 100,
          "shared_range: clip percentile must be in (0, 100], got " + std::to_string(clip_percentile));
  std::vector<float> all;
  for (const GridMap& m : maps) {
    require_grid(m, "shared_range");
    all.insert(all.end(), m.values.begin(), m.values.end());
  }
  std::sort(all.begin(), all.end());
  HeatRange r;
  r.lo = all.front();
  const double rank = clip_percentile / 100.0 * static_cast<double>(all.size() - 1);
  const size_t below = static_cast<size_t>(rank);
  r.hi = below + 1 < all.size()
             ? static_cast<float>(all[below] + (rank - static_cast<double>(below)) * (all[below + 1] - all[below]))
             : all.back();
  if (r.hi <= r.lo) r.hi = r.lo + std::max(1e-12f, std::fabs(r.lo) * 1e-6f);  // keep a shared (not per-map) range
  return r;
}

std::vector<float> upsample_to_frame(const GridMap& map, const PadGeometry& g, Upsample upsample) {
  require_grid(map, "upsample_to_frame");
  require(g.frame_width > 0 && g.frame_height > 0 && g.resized_width > 0 && g.resized_height > 0,
          "upsample_to_frame: the geometry is empty");
  const AxisSamples xs = axis_samples(g.frame_width, map.cols, g.input_width, input_x_of, g, upsample);
  const AxisSamples ys = axis_samples(g.frame_height, map.rows, g.input_height, input_y_of, g, upsample);
  std::vector<float> out(static_cast<size_t>(g.frame_width) * g.frame_height);
  for (int y = 0; y < g.frame_height; ++y) {
    const float wy = ys.weight[static_cast<size_t>(y)];
    const int r0 = ys.first[static_cast<size_t>(y)], r1 = ys.second[static_cast<size_t>(y)];
    for (int x = 0; x < g.frame_width; ++x) {
      const float wx = xs.weight[static_cast<size_t>(x)];
      const int c0 = xs.first[static_cast<size_t>(x)], c1 = xs.second[static_cast<size_t>(x)];
      const float top = (1 - wx) * map.at(r0, c0) + wx * map.at(r0, c1);
      const float bottom = (1 - wx) * map.at(r1, c0) + wx * map.at(r1, c1);
      out[static_cast<size_t>(y) * g.frame_width + x] = (1 - wy) * top + wy * bottom;
    }
  }
  return out;
}

Image heat_overlay(const Image& frame, const GridMap& map, const PadGeometry& g, const HeatStyle& style) {
  require_frame(frame, g, "heat_overlay");
  const HeatRange range = range_for(map, style.range);
  const std::vector<float> field = upsample_to_frame(map, g, style.upsample);
  const Image heat = colormap(field, g.frame_width, g.frame_height, range.lo, range.hi, style.jet);
  return overlay(frame, heat, style.alpha);
}

Image grid_view(const GridMap& map, const PadGeometry& g, int cell_px, const HeatStyle& style) {
  require_grid(map, "grid_view");
  require(cell_px >= 1, "grid_view: cell size must be at least 1 pixel");
  const HeatRange range = range_for(map, style.range);
  const Image cells = colormap(map.values, map.cols, map.rows, range.lo, range.hi, style.jet);
  Image out = resize(cells, map.cols * cell_px, map.rows * cell_px, /*nearest=*/true);
  if (cell_px >= 8) {
    for (int c = 1; c < map.cols; ++c)
      for (int y = 0; y < out.height; ++y) std::copy(kGridLine, kGridLine + 3, out.at(c * cell_px, y));
    for (int r = 1; r < map.rows; ++r)
      for (int x = 0; x < out.width; ++x) std::copy(kGridLine, kGridLine + 3, out.at(x, r * cell_px));
  }
  if (g.input_width > 0 && g.input_height > 0) {
    const double sx = static_cast<double>(out.width) / g.input_width,
                 sy = static_cast<double>(out.height) / g.input_height;
    draw_rect(out, static_cast<int>(std::lround(g.pad_left * sx)), static_cast<int>(std::lround(g.pad_top * sy)),
              out.width - 1, out.height - 1, kWhite);
  }
  return out;
}

Image token_bars(const TokenWeights& tokens, int width, int row_height, const std::string& title) {
  require(width >= 120 && row_height >= 10, "token_bars: needs width ≥ 120 and row height ≥ 10 pixels");
  require(tokens.pieces.size() == tokens.weights.size(), "token_bars: pieces and weights differ in length");
  const int label_w = 86, value_w = 44, top = title.empty() ? 4 : 20;
  const int rows = std::max<int>(1, static_cast<int>(tokens.weights.size()));
  Image out(width, top + rows * row_height + 4, 3, kDark[0]);
  if (!title.empty()) put_text(out, title, 4, 14, 0.4);
  if (tokens.weights.empty()) {
    put_text(out, "no language tokens", 4, top + row_height - 3, 0.35, kLabel);
    return out;
  }
  float peak = 0;
  for (float w : tokens.weights) peak = std::max(peak, w);
  const int bar_w = width - label_w - value_w;
  for (size_t i = 0; i < tokens.weights.size(); ++i) {
    const int y = top + static_cast<int>(i) * row_height;
    put_text(out, printable(tokens.pieces[i], 12), 3, y + row_height - 3, 0.33, kLabel);
    const int length = peak > 0 ? static_cast<int>(std::lround(tokens.weights[i] / peak * bar_w)) : 0;
    if (length > 0) fill_rect(out, label_w, y + 2, label_w + length - 1, y + row_height - 3, kBar);
    put_text(out, format_value(tokens.weights[i]), width - value_w + 2, y + row_height - 3, 0.3, kLabel);
  }
  return out;
}

Image layer_head_grid(const std::vector<std::vector<GridMap>>& maps, const Image* frame, const PadGeometry& g,
                      const HeatStyle& style, int thumb_px, std::vector<std::string> row_labels,
                      std::vector<std::string> col_labels) {
  require(!maps.empty() && !maps.front().empty(), "layer_head_grid: no maps given");
  require(thumb_px >= 8, "layer_head_grid: thumbnails need at least 8 pixels");
  const size_t heads = maps.front().size();
  for (size_t l = 0; l < maps.size(); ++l)
    require(maps[l].size() == heads, "layer_head_grid: row " + std::to_string(l) + " has " +
                                         std::to_string(maps[l].size()) + " maps, row 0 has " + std::to_string(heads));
  while (row_labels.size() < maps.size()) row_labels.push_back("L" + std::to_string(row_labels.size()));
  while (col_labels.size() < heads) col_labels.push_back("H" + std::to_string(col_labels.size()));

  int tw = thumb_px, th = thumb_px;
  Image small;
  PadGeometry thumb_geometry = g;
  const GridMap& first = maps.front().front();
  require_grid(first, "layer_head_grid");
  const int cell_px = std::max(1, thumb_px / std::max(first.rows, first.cols));
  if (!frame) {
    tw = first.cols * cell_px;
    th = first.rows * cell_px;
  } else {
    require_frame(*frame, g, "layer_head_grid");
    if (frame->width >= frame->height)
      th = std::max(1, thumb_px * frame->height / frame->width);
    else
      tw = std::max(1, thumb_px * frame->width / frame->height);
    small = resize(*frame, tw, th);
    thumb_geometry.frame_width = tw;  // same mapping, fewer pixels
    thumb_geometry.frame_height = th;
  }
  const int label_w = 34, label_h = 16, gap = 2;
  Image out(label_w + static_cast<int>(heads) * (tw + gap), label_h + static_cast<int>(maps.size()) * (th + gap), 3,
            kDark[0]);
  for (size_t h = 0; h < heads; ++h)
    put_text(out, col_labels[h], label_w + static_cast<int>(h) * (tw + gap) + 2, 12, 0.35);
  for (size_t l = 0; l < maps.size(); ++l) {
    const int y0 = label_h + static_cast<int>(l) * (th + gap);
    put_text(out, row_labels[l], 2, y0 + th / 2 + 4, 0.35);
    for (size_t h = 0; h < heads; ++h) {
      const GridMap& m = maps[l][h];
      require(m.rows == first.rows && m.cols == first.cols,
              "layer_head_grid: map [" + std::to_string(l) + "][" + std::to_string(h) + "] is " +
                  std::to_string(m.rows) + "x" + std::to_string(m.cols) + ", map [0][0] is " +
                  std::to_string(first.rows) + "x" + std::to_string(first.cols));
      Image thumb = frame ? heat_overlay(small, m, thumb_geometry, style) : grid_view(m, g, cell_px, style);
      const int x0 = label_w + static_cast<int>(h) * (tw + gap);
      for (int y = 0; y < thumb.height; ++y)
        std::copy(thumb.at(0, y), thumb.at(0, y) + thumb.width * 3, out.at(x0, y0 + y));
    }
  }
  return out;
}

Image colour_bar(const HeatRange& range, int height, bool jet, int width) {
  require(height >= 20 && width >= 20, "colour_bar: needs at least 20 × 20 pixels");
  const int strip = 12, top = 8, bottom = 8, span = height - top - bottom;
  std::vector<float> ramp(static_cast<size_t>(span));
  for (int i = 0; i < span; ++i) ramp[static_cast<size_t>(i)] = 1.0f - static_cast<float>(i) / std::max(1, span - 1);
  const Image bar = colormap(ramp, 1, span, 0, 1, jet);
  Image out(width, height, 3, kDark[0]);
  for (int y = 0; y < span; ++y)
    for (int x = 0; x < strip; ++x) std::copy(bar.at(0, y), bar.at(0, y) + 3, out.at(2 + x, top + y));
  if (range.per_map()) {
    put_text(out, "max", strip + 4, top + 8, 0.3);
    put_text(out, "min", strip + 4, height - bottom, 0.3);
  } else {
    put_text(out, format_value(range.hi), strip + 4, top + 8, 0.3);
    put_text(out, format_value(range.lo), strip + 4, height - bottom, 0.3);
  }
  return out;
}

Image panel_row(const std::vector<Image>& images, const std::vector<std::string>& captions, int gap) {
  require(!images.empty(), "panel_row: no images given");
  require(
      captions.empty() || captions.size() == images.size(),
      "panel_row: " + std::to_string(captions.size()) + " captions for " + std::to_string(images.size()) + " images");
  std::vector<Image> panels;
  for (size_t i = 0; i < images.size(); ++i) {
    require(!images[i].empty(), "panel_row: image " + std::to_string(i) + " is empty");
    panels.push_back(captions.empty() || captions[i].empty() ? images[i] : with_caption(images[i], captions[i]));
  }
  return hstack(panels, gap);
}

Image camera_figure(const Image& frame, const GridMap& map, const PadGeometry& g, const TokenWeights* tokens,
                    const HeatStyle& style, const std::string& title) {
  std::vector<Image> images{heat_overlay(frame, map, g, style),
                            grid_view(map, g, std::max(4, frame.height / std::max(1, map.rows)), style)};
  std::vector<std::string> captions{
      "overlay", "grid over the " + std::to_string(g.input_width) + "x" + std::to_string(g.input_height) + " input"};
  if (!style.range.per_map()) {
    images.push_back(colour_bar(style.range, frame.height, style.jet));
    captions.push_back("scale");
  }
  if (tokens) {
    images.push_back(token_bars(*tokens));
    char share[48];
    std::snprintf(share, sizeof share, "words (%.1f%% of row)", 100.0 * tokens->total);
    captions.push_back(share);
  }
  Image row = panel_row(images, captions);
  return title.empty() ? row : with_caption(row, title);
}

}  // namespace vlascope
