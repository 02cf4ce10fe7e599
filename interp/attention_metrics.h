// Attention maps as plain data, and the numbers researchers compute from them (interpretability.md §4):
// head fusion and rollout over layers, restricting a query's row to one camera's image tokens, converting
// segmentation images into per-cell masks through LeRobot's resize_with_pad geometry, and scoring maps
// against those masks (mass on the mask vs chance, pointing game, top-k% IoU, entropy, Hoyer sparsity).
//
// Nothing here knows about tensors: capture code copies a hook's [B, heads, Lq, Lk] probabilities for one
// batch element into an AttentionPattern, and the PrefixLayout that travels with it says what the keys are.
//
//   AttentionPattern p = …;                                  // vlm.layers.8.attn.pattern, batch 0
//   AttentionPattern fused = fuse_heads(p, HeadFusion::kMean);
//   std::vector<float> row = mean_rows(fused, {last_language_token(layout)});
//   CameraAttention cam = camera_attention(row, layout, /*camera=*/0);
//   GridMask cube = grid_mask(segmentation, {cube_id}, resize_with_pad_geometry(640, 480), 8, 8);
//   MaskMass m = mask_mass(cam.map, cube);                   // m.mass vs m.chance
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/layout.h"

namespace vlascope {

// ---- plain data ----------------------------------------------------------------------------------------

// Attention probabilities of one layer for one batch element: [heads, queries, keys], row-major. For the
// VLM prefix pass queries and keys are prefix positions; for the action expert the queries are the chunk's
// action indices and the keys are prefix positions (cross-attention) or prefix + suffix (joint layers).
struct AttentionPattern {
  int heads = 0, queries = 0, keys = 0;
  std::vector<float> p;  // heads * queries * keys

  AttentionPattern() = default;
  AttentionPattern(int h, int q, int k, float fill = 0)
      : heads(h), queries(q), keys(k), p(static_cast<size_t>(h) * q * k, fill) {}
  float& at(int h, int q, int k) { return p[(static_cast<size_t>(h) * queries + q) * keys + k]; }
  float at(int h, int q, int k) const { return p[(static_cast<size_t>(h) * queries + q) * keys + k]; }
  const float* row(int h, int q) const { return &p[(static_cast<size_t>(h) * queries + q) * keys]; }
};
// Throws Error naming `what` if the sizes are inconsistent or a value is negative / not finite.
void validate_pattern(const AttentionPattern& a, const std::string& what);

// A value per cell of one camera's token grid, row-major (rows × cols), row 0 at the top of the image.
struct GridMap {
  int rows = 0, cols = 0;
  std::vector<float> values;

  GridMap() = default;
  GridMap(int r, int c, float fill = 0) : rows(r), cols(c), values(static_cast<size_t>(r) * c, fill) {}
  float& at(int r, int c) { return values[static_cast<size_t>(r) * cols + c]; }
  float at(int r, int c) const { return values[static_cast<size_t>(r) * cols + c]; }
  int size() const { return rows * cols; }
};

// A per-pixel class-id image (e.g. the simulator's segmentation, or a hand-drawn mask on the real arm),
// in camera-frame pixels, row-major, top row first.
struct LabelImage {
  int width = 0, height = 0;
  std::vector<int32_t> labels;  // width * height

  LabelImage() = default;
  LabelImage(int w, int h, int32_t fill = 0) : width(w), height(h), labels(static_cast<size_t>(w) * h, fill) {}
  int32_t& at(int x, int y) { return labels[static_cast<size_t>(y) * width + x]; }
  int32_t at(int x, int y) const { return labels[static_cast<size_t>(y) * width + x]; }
};

// ---- preprocessing geometry ----------------------------------------------------------------------------

// LeRobot's resize_with_pad (smolvla.md §4.1): the frame is resized keeping its aspect ratio so it fits
// input_width × input_height, then padded on the LEFT and TOP. The token grid covers the padded input, so a
// grid cell may lie partly (or wholly) in the padding.
struct PadGeometry {
  int frame_width = 0, frame_height = 0;      // camera frame
  int input_width = 0, input_height = 0;      // model input (512 × 512 for SmolVLA)
  int resized_width = 0, resized_height = 0;  // the frame inside the input
  int pad_left = 0, pad_top = 0;

  // Continuous pixel coordinates (edges at integers) between the two spaces.
  double input_x(double frame_x) const { return pad_left + frame_x * resized_width / frame_width; }
  double input_y(double frame_y) const { return pad_top + frame_y * resized_height / frame_height; }
  double frame_x(double input_x) const { return (input_x - pad_left) * frame_width / resized_width; }
  double frame_y(double input_y) const { return (input_y - pad_top) * frame_height / resized_height; }
};
PadGeometry resize_with_pad_geometry(int frame_width, int frame_height, int input_width = 512, int input_height = 512);

// Per-cell masks: coverage[i] = fraction of cell i's area covered by pixels whose class is one of the ids
// (the padding counts as uncovered area), inside[i] = fraction of cell i that is camera image, not padding.
struct GridMask {
  int rows = 0, cols = 0;
  std::vector<float> coverage;
  std::vector<float> inside;
  int size() const { return rows * cols; }
};
// labels must have the frame size of the geometry. Throws Error otherwise, or if class_ids is empty.
GridMask grid_mask(const LabelImage& labels, const std::vector<int32_t>& class_ids, const PadGeometry& geometry,
                   int rows, int cols);

// ---- heads, layers, queries ----------------------------------------------------------------------------

enum class HeadFusion { kMean, kMax, kMin };
const char* head_fusion_name(HeadFusion fusion);
HeadFusion parse_head_fusion(const std::string& name);  // "mean" | "max" | "min"; throws Error otherwise

AttentionPattern select_head(const AttentionPattern& a, int head);          // → heads = 1
AttentionPattern fuse_heads(const AttentionPattern& a, HeadFusion fusion);  // → heads = 1
// Element-wise mean of same-shaped patterns (a range of layers, or the denoising steps).
AttentionPattern mean_patterns(const std::vector<AttentionPattern>& patterns);
// Mean of the given query rows of a single-head pattern (fuse or select a head first). Empty = all rows.
std::vector<float> mean_rows(const AttentionPattern& a, const std::vector<int>& queries = {});

// Attention rollout (Abnar & Zuidema 2020): per layer, fuse heads, add the residual as (A + I)/2,
// normalise every ROW to sum 1 (keepdim semantics: each row by its own sum), and multiply through the
// layers: R = Â_L · … · Â_1. `layers` are in forward order and must be square (queries == keys) and the same
// size. Row q of the result says how much the top-layer token q draws from each input token.
AttentionPattern attention_rollout(const std::vector<AttentionPattern>& layers, HeadFusion fusion);

// The query rows researchers pick, as positions in the prefix (= rows of a VLM prefix pattern).
int last_language_token(const PrefixLayout& layout, int batch = 0);  // last non-padding word; −1 if none
int state_token(const PrefixLayout& layout, int batch = 0);

// ---- restricting a row ---------------------------------------------------------------------------------

struct CameraAttention {
  GridMap map;              // the camera's cells, renormalised to sum 1 (all zero when the mass is zero)
  double camera_ratio = 0;  // share of the row's total attention on this camera's (non-excluded) tokens
  double image_ratio = 0;   // share on all cameras' image tokens (FastV-style image-attention ratio)
  double row_total = 0;     // the row's sum (≈ 1 for a probability row)
};
// `row` is one query's attention over keys 0 … row.size()−1, which index the layout's token table. Cells in
// excluded_cells (row-major grid indices: sinks, high-norm artifact patches) are zeroed before
// renormalising. Padding tokens (a camera whose image mask is false) carry no mass.
CameraAttention camera_attention(const std::vector<float>& row, const PrefixLayout& layout, int camera, int batch = 0,
                                 const std::vector<int>& excluded_cells = {});

struct TokenWeights {
  std::vector<int> positions;       // sequence positions
  std::vector<std::string> pieces;  // LayoutToken::piece (or "#id" when the piece is unknown)
  std::vector<float> weights;       // attention on each, as in the row (not renormalised)
  double total = 0;                 // sum of weights: the language share of the row
};
// The row's attention on the (non-padding) language tokens, in order.
TokenWeights language_attention(const std::vector<float>& row, const PrefixLayout& layout, int batch = 0);

// ---- metrics -------------------------------------------------------------------------------------------
// Maps are treated as distributions after dividing by their sum; they must be non-negative, finite and have
// positive mass (Error otherwise).

double entropy(const std::vector<float>& p);             // nats
double normalized_entropy(const std::vector<float>& p);  // entropy / log N ∈ [0, 1]; 0 when N = 1
// Hoyer sparsity (√N − ‖p‖₁/‖p‖₂) / (√N − 1) ∈ [0, 1]: 0 uniform, 1 one-hot.
double hoyer_sparsity(const std::vector<float>& p);

struct MaskMass {
  double mass = 0;    // Σ p_i · coverage_i / Σ p_i: attention on the mask
  double chance = 0;  // Σ coverage_i / N: what uniform attention would put there (mask-area baseline)
  double ratio = 0;   // mass / chance (0 when the mask is empty)
};
MaskMass mask_mass(const GridMap& map, const GridMask& mask);

struct Pointing {
  bool hit = false;
  int row = -1, col = -1;  // the argmax cell (first in row-major order among ties)
  int ties = 0;            // other cells sharing the maximum (a flat map makes the game meaningless)
};
// Hit when a cell within `tolerance_cells` (Chebyshev distance) of the argmax has coverage > min_coverage.
Pointing pointing_game(const GridMap& map, const GridMask& mask, int tolerance_cells = 0, double min_coverage = 0);

// The ceil(fraction·N) highest cells (ties broken by lower index) as a 0/1 vector.
std::vector<uint8_t> top_cells(const GridMap& map, double fraction);
// IoU of the map's top cells with the mask's cells whose coverage ≥ mask_threshold.
double top_fraction_iou(const GridMap& map, const GridMask& mask, double fraction, double mask_threshold = 0.5);
// IoU of two maps' top cells (stability between frames, agreement between models).
double top_fraction_iou(const GridMap& a, const GridMap& b, double fraction);

}  // namespace vlascope
