// Attention figures: a camera's grid map upsampled onto the frame (undoing resize_with_pad, so a cell lands
// on the camera pixels it saw), the raw grid view with the image's extent outlined, language-token bars,
// a layers × heads grid of thumbnails, a colour bar, and captioned panels. Everything returns an Image;
// write it with write_png or feed it to a VideoWriter.
//
//   HeatStyle style;                              // bilinear, per-map scale, alpha 0.45
//   style.range = shared_range({map_t0, map_t1});  // same colours for both frames
//   Image fig = camera_figure(frame, cam.map, geometry, language_attention(row, layout), style, "L8 mean");
#pragma once

#include <string>
#include <vector>

#include "common/image.h"
#include "interp/attention_metrics.h"

namespace vlascope {

// Colour scale of a heatmap. lo == hi: each map uses its own min … max.
struct HeatRange {
  float lo = 0, hi = 0;
  bool per_map() const { return lo == hi; }
};
// One range for several maps (to compare frames, heads or models): their global min … the given
// percentile of all values (100 = the max; lower clips a few hot cells).
HeatRange shared_range(const std::vector<GridMap>& maps, double clip_percentile = 100);

enum class Upsample { kBilinear, kNearest };

struct HeatStyle {
  Upsample upsample = Upsample::kBilinear;  // nearest shows honest patch blocks
  HeatRange range;                          // default: per map
  double alpha = 0.45;                      // heat opacity over the frame
  bool jet = true;                          // turbo colours; false = viridis
};

// The grid map as a value per camera-frame pixel (frame_width × frame_height, row-major): each pixel samples
// the grid at the input-space position it was resized to. Bilinear interpolates between cell centres.
std::vector<float> upsample_to_frame(const GridMap& map, const PadGeometry& geometry, Upsample upsample);

// The heatmap alpha-blended over the frame. The frame must have the geometry's frame size.
Image heat_overlay(const Image& frame, const GridMap& map, const PadGeometry& geometry, const HeatStyle& style = {});

// The raw grid over the padded model input (cell_px pixels per cell, nearest blocks), with the camera image's
// extent outlined in white so cells in the padding are visible as such.
Image grid_view(const GridMap& map, const PadGeometry& geometry, int cell_px = 24, const HeatStyle& style = {});

// Horizontal bars, one per language token, labelled with the token's piece and weight. Non-printable or
// non-ASCII characters are shown as '?', a newline as "\n".
Image token_bars(const TokenWeights& tokens, int width = 260, int row_height = 14, const std::string& title = "");

// Thumbnails for maps[layer][head] (rows = layers, columns = heads), labelled with row_labels / col_labels
// (default "L<i>" / "H<j>"). With a frame and its geometry each thumbnail is an overlay on the frame;
// otherwise the raw grid. thumb_px is the thumbnail's larger side.
Image layer_head_grid(const std::vector<std::vector<GridMap>>& maps, const Image* frame, const PadGeometry& geometry,
                      const HeatStyle& style = {}, int thumb_px = 96, std::vector<std::string> row_labels = {},
                      std::vector<std::string> col_labels = {});

// A vertical colour bar for a range, with its ends labelled.
Image colour_bar(const HeatRange& range, int height, bool jet = true, int width = 56);

// Images side by side, each with a caption strip above it (empty caption = no strip), heights padded.
Image panel_row(const std::vector<Image>& images, const std::vector<std::string>& captions = {}, int gap = 6);

// The standard figure for one camera and one query: overlay | raw grid | language bars (when given), with a
// colour bar when the range is shared, and a title strip.
Image camera_figure(const Image& frame, const GridMap& map, const PadGeometry& geometry, const TokenWeights* tokens,
                    const HeatStyle& style = {}, const std::string& title = "");

}  // namespace vlascope
