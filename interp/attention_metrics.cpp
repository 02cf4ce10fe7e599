#include "interp/attention_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"

namespace vlascope {

namespace {

std::string shape_of(const AttentionPattern& a) {
  return "[" + std::to_string(a.heads) + ", " + std::to_string(a.queries) + ", " + std::to_string(a.keys) + "]";
}

// Sum of a map that must be a (unnormalised) distribution.
double mass_of(const std::vector<float>& p, const char* where) {
  require(!p.empty(), std::string(where) + ": the map is empty");
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    require(std::isfinite(p[i]) && p[i] >= 0, std::string(where) + ": value " + std::to_string(i) + " (" +
                                                  std::to_string(p[i]) + ") is negative or not finite");
    sum += p[i];
  }
  require(sum > 0, std::string(where) + ": the map has no mass (all zero)");
  return sum;
}

void require_same_grid(const GridMap& map, int rows, int cols, const char* where) {
  require(map.rows > 0 && map.cols > 0 && map.values.size() == static_cast<size_t>(map.rows) * map.cols,
          std::string(where) + ": the map's values do not match its " + std::to_string(map.rows) + "x" +
              std::to_string(map.cols) + " grid");
  require(map.rows == rows && map.cols == cols, std::string(where) + ": the map is " + std::to_string(map.rows) + "x" +
                                                    std::to_string(map.cols) + " but the other operand is " +
                                                    std::to_string(rows) + "x" + std::to_string(cols));
}

void require_mask(const GridMask& mask, const char* where) {
  require(mask.coverage.size() == static_cast<size_t>(mask.rows) * mask.cols && mask.rows > 0 && mask.cols > 0,
          std::string(where) + ": the mask's coverage does not match its grid");
}

const std::vector<LayoutToken>& tokens_of(const PrefixLayout& layout, int batch, const char* where) {
  require(batch >= 0 && static_cast<size_t>(batch) < layout.tokens.size(),
          std::string(where) + ": batch element " + std::to_string(batch) + " is not in the layout (" +
              std::to_string(layout.tokens.size()) + " elements)");
  return layout.tokens[static_cast<size_t>(batch)];
}

// Overlap of [a0, a1) with pixel k = [k, k + 1), for every pixel the interval touches.
struct Span {
  int first = 0;
  std::vector<double> weight;
};
Span pixel_overlaps(double a0, double a1, int pixels) {
  Span s;
  a0 = std::max(a0, 0.0);
  a1 = std::min(a1, static_cast<double>(pixels));
  if (a1 <= a0) return s;
  s.first = static_cast<int>(std::floor(a0));
  const int last = std::min(pixels - 1, static_cast<int>(std::ceil(a1)) - 1);
  for (int k = s.first; k <= last; ++k)
    s.weight.push_back(std::max(0.0, std::min(a1, k + 1.0) - std::max(a0, static_cast<double>(k))));
  return s;
}

}  // namespace

void validate_pattern(const AttentionPattern& a, const std::string& what) {
  require(a.heads > 0 && a.queries > 0 && a.keys > 0, what + ": attention pattern has an empty shape " + shape_of(a));
  require(a.p.size() == static_cast<size_t>(a.heads) * a.queries * a.keys,
          what + ": attention pattern holds " + std::to_string(a.p.size()) + " values, shape " + shape_of(a) +
              " needs " + std::to_string(static_cast<size_t>(a.heads) * a.queries * a.keys));
  for (size_t i = 0; i < a.p.size(); ++i)
    require(std::isfinite(a.p[i]) && a.p[i] >= 0,
            what + ": attention probability " + std::to_string(i) + " is negative or not finite");
}

// ---- geometry ------------------------------------------------------------------------------------------

PadGeometry resize_with_pad_geometry(int frame_width, int frame_height, int input_width, int input_height) {
  require(frame_width > 0 && frame_height > 0 && input_width > 0 && input_height > 0,
          "resize_with_pad_geometry: sizes must be positive (frame " + std::to_string(frame_width) + "x" +
              std::to_string(frame_height) + ", input " + std::to_string(input_width) + "x" +
              std::to_string(input_height) + ")");
  PadGeometry g;
  g.frame_width = frame_width;
  g.frame_height = frame_height;
  g.input_width = input_width;
  g.input_height = input_height;
  // As LeRobot computes it, in double precision with truncation.
  const double ratio =
      std::max(static_cast<double>(frame_width) / input_width, static_cast<double>(frame_height) / input_height);
  g.resized_width = std::max(1, static_cast<int>(frame_width / ratio));
  g.resized_height = std::max(1, static_cast<int>(frame_height / ratio));
  g.pad_left = std::max(0, input_width - g.resized_width);
  g.pad_top = std::max(0, input_height - g.resized_height);
  return g;
}

GridMask grid_mask(const LabelImage& labels, const std::vector<int32_t>& class_ids, const PadGeometry& g, int rows,
                   int cols) {
  require(rows > 0 && cols > 0, "grid_mask: the grid must have rows and columns");
  require(!class_ids.empty(), "grid_mask: no class ids of interest given");
  require(labels.labels.size() == static_cast<size_t>(labels.width) * labels.height,
          "grid_mask: the label image's pixels do not match its size");
  require(labels.width == g.frame_width && labels.height == g.frame_height,
          "grid_mask: the label image is " + std::to_string(labels.width) + "x" + std::to_string(labels.height) +
              " but the geometry's camera frame is " + std::to_string(g.frame_width) + "x" +
              std::to_string(g.frame_height));
  std::vector<uint8_t> in_mask(labels.labels.size());
  for (size_t i = 0; i < in_mask.size(); ++i)
    in_mask[i] = std::find(class_ids.begin(), class_ids.end(), labels.labels[i]) != class_ids.end();

  GridMask m;
  m.rows = rows;
  m.cols = cols;
  m.coverage.assign(static_cast<size_t>(rows) * cols, 0);
  m.inside.assign(static_cast<size_t>(rows) * cols, 0);
  const double cell_w = static_cast<double>(g.input_width) / cols, cell_h = static_cast<double>(g.input_height) / rows;
  for (int r = 0; r < rows; ++r) {
    // The cell's extent in frame pixels (continuous); the part outside [0, frame) is padding.
    const double y0 = g.frame_y(r * cell_h), y1 = g.frame_y((r + 1) * cell_h);
    const Span ys = pixel_overlaps(y0, y1, g.frame_height);
    for (int c = 0; c < cols; ++c) {
      const double x0 = g.frame_x(c * cell_w), x1 = g.frame_x((c + 1) * cell_w);
      const Span xs = pixel_overlaps(x0, x1, g.frame_width);
      const double area = (x1 - x0) * (y1 - y0);
      double inside = 0, covered = 0;
      for (size_t j = 0; j < ys.weight.size(); ++j) {
        const size_t y = static_cast<size_t>(ys.first) + j;
        for (size_t i = 0; i < xs.weight.size(); ++i) {
          const double w = ys.weight[j] * xs.weight[i];
          inside += w;
          if (in_mask[y * static_cast<size_t>(g.frame_width) + static_cast<size_t>(xs.first) + i]) covered += w;
        }
      }
      m.inside[static_cast<size_t>(r) * cols + c] = static_cast<float>(inside / area);
      m.coverage[static_cast<size_t>(r) * cols + c] = static_cast<float>(covered / area);
    }
  }
  return m;
}

// ---- heads, layers, queries ----------------------------------------------------------------------------

const char* head_fusion_name(HeadFusion fusion) {
  switch (fusion) {
    case HeadFusion::kMean:
      return "mean";
    case HeadFusion::kMax:
      return "max";
    case HeadFusion::kMin:
      return "min";
  }
  return "?";
}

HeadFusion parse_head_fusion(const std::string& name) {
  if (name == "mean") return HeadFusion::kMean;
  if (name == "max") return HeadFusion::kMax;
  if (name == "min") return HeadFusion::kMin;
  throw Error("head fusion '" + name + "' is not one of mean, max, min");
}

AttentionPattern select_head(const AttentionPattern& a, int head) {
  validate_pattern(a, "select_head");
  require(head >= 0 && head < a.heads,
          "select_head: head " + std::to_string(head) + " is out of range (" + std::to_string(a.heads) + " heads)");
  AttentionPattern out(1, a.queries, a.keys);
  const size_t n = static_cast<size_t>(a.queries) * a.keys;
  std::copy(a.p.begin() + static_cast<long>(n * head), a.p.begin() + static_cast<long>(n * (head + 1)), out.p.begin());
  return out;
}

AttentionPattern fuse_heads(const AttentionPattern& a, HeadFusion fusion) {
  validate_pattern(a, "fuse_heads");
  AttentionPattern out(1, a.queries, a.keys);
  const size_t n = static_cast<size_t>(a.queries) * a.keys;
  for (size_t i = 0; i < n; ++i) {
    float v = a.p[i];
    for (int h = 1; h < a.heads; ++h) {
      const float x = a.p[static_cast<size_t>(h) * n + i];
      v = fusion == HeadFusion::kMean ? v + x : fusion == HeadFusion::kMax ? std::max(v, x) : std::min(v, x);
    }
    out.p[i] = fusion == HeadFusion::kMean ? v / static_cast<float>(a.heads) : v;
  }
  return out;
}

AttentionPattern mean_patterns(const std::vector<AttentionPattern>& patterns) {
  require(!patterns.empty(), "mean_patterns: no patterns given");
  const AttentionPattern& first = patterns.front();
  validate_pattern(first, "mean_patterns (pattern 0)");
  std::vector<double> sum(first.p.size(), 0.0);
  for (size_t k = 0; k < patterns.size(); ++k) {
    const AttentionPattern& a = patterns[k];
    require(a.heads == first.heads && a.queries == first.queries && a.keys == first.keys,
            "mean_patterns: pattern " + std::to_string(k) + " has shape " + shape_of(a) + ", pattern 0 has " +
                shape_of(first));
    validate_pattern(a, "mean_patterns (pattern " + std::to_string(k) + ")");
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += a.p[i];
  }
  AttentionPattern out(first.heads, first.queries, first.keys);
  for (size_t i = 0; i < sum.size(); ++i) out.p[i] = static_cast<float>(sum[i] / static_cast<double>(patterns.size()));
  return out;
}

std::vector<float> mean_rows(const AttentionPattern& a, const std::vector<int>& queries) {
  validate_pattern(a, "mean_rows");
  require(a.heads == 1, "mean_rows: the pattern has " + std::to_string(a.heads) + " heads; select or fuse heads first");
  std::vector<int> rows = queries;
  if (rows.empty()) {
    rows.resize(static_cast<size_t>(a.queries));
    std::iota(rows.begin(), rows.end(), 0);
  }
  std::vector<double> sum(static_cast<size_t>(a.keys), 0.0);
  for (int q : rows) {
    require(q >= 0 && q < a.queries,
            "mean_rows: query " + std::to_string(q) + " is out of range (" + std::to_string(a.queries) + " queries)");
    const float* r = a.row(0, q);
    for (int k = 0; k < a.keys; ++k) sum[static_cast<size_t>(k)] += r[k];
  }
  std::vector<float> out(sum.size());
  for (size_t k = 0; k < sum.size(); ++k) out[k] = static_cast<float>(sum[k] / static_cast<double>(rows.size()));
  return out;
}

AttentionPattern attention_rollout(const std::vector<AttentionPattern>& layers, HeadFusion fusion) {
  require(!layers.empty(), "attention_rollout: no layers given");
  const int n = layers.front().queries;
  std::vector<double> rollout, layer(static_cast<size_t>(n) * n), product(static_cast<size_t>(n) * n);
  for (size_t l = 0; l < layers.size(); ++l) {
    const std::string what = "attention_rollout (layer " + std::to_string(l) + ")";
    require(layers[l].queries == n && layers[l].keys == n,
            what + ": needs square patterns of size " + std::to_string(n) + ", got " + shape_of(layers[l]));
    const AttentionPattern fused = fuse_heads(layers[l], fusion);
    // Â = (A + I)/2, each row divided by its own sum.
    for (int q = 0; q < n; ++q) {
      double row_sum = 0;
      for (int k = 0; k < n; ++k) {
        double v = 0.5 * fused.at(0, q, k) + (q == k ? 0.5 : 0.0);
        layer[static_cast<size_t>(q) * n + k] = v;
        row_sum += v;
      }
      for (int k = 0; k < n; ++k) layer[static_cast<size_t>(q) * n + k] /= row_sum;
    }
    if (l == 0) {
      rollout = layer;
      continue;
    }
    // R ← Â_l · R
    std::fill(product.begin(), product.end(), 0.0);
    for (int q = 0; q < n; ++q)
      for (int m = 0; m < n; ++m) {
        const double w = layer[static_cast<size_t>(q) * n + m];
        if (w == 0) continue;
        const double* src = &rollout[static_cast<size_t>(m) * n];
        double* dst = &product[static_cast<size_t>(q) * n];
        for (int k = 0; k < n; ++k) dst[k] += w * src[k];
      }
    rollout.swap(product);
  }
  AttentionPattern out(1, n, n);
  for (size_t i = 0; i < rollout.size(); ++i) out.p[i] = static_cast<float>(rollout[i]);
  return out;
}

int last_language_token(const PrefixLayout& layout, int batch) {
  const std::vector<LayoutToken>& tokens = tokens_of(layout, batch, "last_language_token");
  for (int i = static_cast<int>(tokens.size()) - 1; i >= 0; --i)
    if (tokens[static_cast<size_t>(i)].kind == TokenKind::kLanguage && !tokens[static_cast<size_t>(i)].padding)
      return i;
  return -1;
}

int state_token(const PrefixLayout& layout, int batch) {
  const std::vector<LayoutToken>& tokens = tokens_of(layout, batch, "state_token");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i].kind == TokenKind::kState) return static_cast<int>(i);
  return -1;
}

// ---- restricting a row ---------------------------------------------------------------------------------

CameraAttention camera_attention(const std::vector<float>& row, const PrefixLayout& layout, int camera, int batch,
                                 const std::vector<int>& excluded_cells) {
  const std::vector<LayoutToken>& tokens = tokens_of(layout, batch, "camera_attention");
  require(row.size() <= tokens.size(), "camera_attention: the row has " + std::to_string(row.size()) +
                                           " keys but the layout describes only " + std::to_string(tokens.size()) +
                                           " positions");
  require(layout.grid_rows > 0 && layout.grid_cols > 0, "camera_attention: the layout has no image grid");
  require(camera >= 0 && camera < static_cast<int>(layout.camera_names.size()),
          "camera_attention: camera " + std::to_string(camera) + " is not in the layout (" +
              std::to_string(layout.camera_names.size()) + " cameras)");
  CameraAttention out;
  out.map = GridMap(layout.grid_rows, layout.grid_cols);
  std::vector<uint8_t> excluded(static_cast<size_t>(out.map.size()), 0);
  for (int cell : excluded_cells) {
    require(cell >= 0 && cell < out.map.size(), "camera_attention: excluded cell " + std::to_string(cell) +
                                                    " is outside the " + std::to_string(out.map.rows) + "x" +
                                                    std::to_string(out.map.cols) + " grid");
    excluded[static_cast<size_t>(cell)] = 1;
  }
  double camera_mass = 0, image_mass = 0;
  for (size_t k = 0; k < row.size(); ++k) {
    require(std::isfinite(row[k]) && row[k] >= 0,
            "camera_attention: key " + std::to_string(k) + " has a negative or non-finite weight");
    out.row_total += row[k];
    const LayoutToken& t = tokens[k];
    if (t.kind != TokenKind::kImage || t.padding) continue;
    image_mass += row[k];
    if (t.camera != camera) continue;
    require(t.row >= 0 && t.row < out.map.rows && t.col >= 0 && t.col < out.map.cols,
            "camera_attention: layout position " + std::to_string(k) + " names grid cell (" + std::to_string(t.row) +
                ", " + std::to_string(t.col) + ") outside the grid");
    const size_t cell = static_cast<size_t>(t.row) * out.map.cols + t.col;
    if (excluded[cell]) continue;
    out.map.values[cell] += row[k];
    camera_mass += row[k];
  }
  if (out.row_total > 0) {
    out.camera_ratio = camera_mass / out.row_total;
    out.image_ratio = image_mass / out.row_total;
  }
  if (camera_mass > 0)
    for (float& v : out.map.values) v = static_cast<float>(v / camera_mass);
  return out;
}

TokenWeights language_attention(const std::vector<float>& row, const PrefixLayout& layout, int batch) {
  const std::vector<LayoutToken>& tokens = tokens_of(layout, batch, "language_attention");
  require(row.size() <= tokens.size(), "language_attention: the row has " + std::to_string(row.size()) +
                                           " keys but the layout describes only " + std::to_string(tokens.size()) +
                                           " positions");
  TokenWeights out;
  for (size_t k = 0; k < row.size(); ++k) {
    const LayoutToken& t = tokens[k];
    if (t.kind != TokenKind::kLanguage || t.padding) continue;
    out.positions.push_back(static_cast<int>(k));
    out.pieces.push_back(t.piece.empty() ? "#" + std::to_string(t.token_id) : t.piece);
    out.weights.push_back(row[k]);
    out.total += row[k];
  }
  return out;
}

// ---- metrics -------------------------------------------------------------------------------------------

double entropy(const std::vector<float>& p) {
  const double sum = mass_of(p, "entropy");
  double h = 0;
  for (float v : p)
    if (v > 0) {
      const double q = v / sum;
      h -= q * std::log(q);
    }
  return h;
}

double normalized_entropy(const std::vector<float>& p) {
  const double h = entropy(p);
  return p.size() > 1 ? h / std::log(static_cast<double>(p.size())) : 0.0;
}

double hoyer_sparsity(const std::vector<float>& p) {
  const double l1 = mass_of(p, "hoyer_sparsity");
  double l2 = 0;
  for (float v : p) l2 += static_cast<double>(v) * v;
  l2 = std::sqrt(l2);
  const double root_n = std::sqrt(static_cast<double>(p.size()));
  if (p.size() == 1) return 1;
  return std::clamp((root_n - l1 / l2) / (root_n - 1), 0.0, 1.0);
}

MaskMass mask_mass(const GridMap& map, const GridMask& mask) {
  require_mask(mask, "mask_mass");
  require_same_grid(map, mask.rows, mask.cols, "mask_mass");
  const double sum = mass_of(map.values, "mask_mass");
  MaskMass m;
  double covered = 0, area = 0;
  for (size_t i = 0; i < map.values.size(); ++i) {
    covered += static_cast<double>(map.values[i]) * mask.coverage[i];
    area += mask.coverage[i];
  }
  m.mass = covered / sum;
  m.chance = area / static_cast<double>(map.values.size());
  m.ratio = m.chance > 0 ? m.mass / m.chance : 0;
  return m;
}

Pointing pointing_game(const GridMap& map, const GridMask& mask, int tolerance_cells, double min_coverage) {
  require_mask(mask, "pointing_game");
  require_same_grid(map, mask.rows, mask.cols, "pointing_game");
  require(tolerance_cells >= 0, "pointing_game: tolerance must be ≥ 0 cells");
  mass_of(map.values, "pointing_game");
  Pointing result;
  const auto top = std::max_element(map.values.begin(), map.values.end());
  const int best = static_cast<int>(top - map.values.begin());
  result.row = best / map.cols;
  result.col = best % map.cols;
  result.ties = static_cast<int>(std::count(map.values.begin(), map.values.end(), *top)) - 1;
  for (int r = std::max(0, result.row - tolerance_cells); r <= std::min(map.rows - 1, result.row + tolerance_cells);
       ++r)
    for (int c = std::max(0, result.col - tolerance_cells); c <= std::min(map.cols - 1, result.col + tolerance_cells);
         ++c)
      if (mask.coverage[static_cast<size_t>(r) * map.cols + c] > min_coverage) result.hit = true;
  return result;
}

std::vector<uint8_t> top_cells(const GridMap& map, double fraction) {
  require_same_grid(map, map.rows, map.cols, "top_cells");
  require(fraction > 0 && fraction <= 1, "top_cells: fraction must be in (0, 1], got " + std::to_string(fraction));
  const size_t n = map.values.size();
  const size_t k = std::min(n, static_cast<size_t>(std::ceil(fraction * static_cast<double>(n) - 1e-9)));
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&map](size_t i, size_t j) { return map.values[i] > map.values[j]; });
  std::vector<uint8_t> chosen(n, 0);
  for (size_t i = 0; i < k; ++i) chosen[order[i]] = 1;
  return chosen;
}

namespace {
double iou(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  size_t both = 0, either = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    both += a[i] && b[i];
    either += a[i] || b[i];
  }
  return either > 0 ? static_cast<double>(both) / static_cast<double>(either) : 0.0;
}
}  // namespace

double top_fraction_iou(const GridMap& map, const GridMask& mask, double fraction, double mask_threshold) {
  require_mask(mask, "top_fraction_iou");
  require_same_grid(map, mask.rows, mask.cols, "top_fraction_iou");
  std::vector<uint8_t> on(mask.coverage.size());
  for (size_t i = 0; i < on.size(); ++i) on[i] = mask.coverage[i] >= mask_threshold;
  return iou(top_cells(map, fraction), on);
}

double top_fraction_iou(const GridMap& a, const GridMap& b, double fraction) {
  require_same_grid(a, b.rows, b.cols, "top_fraction_iou");
  return iou(top_cells(a, fraction), top_cells(b, fraction));
}

}  // namespace vlascope
