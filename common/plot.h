// Plots as PNG images: line plots with optional mean ± band, scatter points, and grouped bar charts with
// error bars. Enough for loss curves, height-over-time per condition, dose-response sweeps and metric
// comparisons; no interactive features.
//
//   LinePlot p{"End-effector height", "step", "height (m)"};
//   p.add("high", x, mean, lo, hi);   // band from lo to hi
//   p.save("height.png");
#pragma once

#include <array>
#include <string>
#include <vector>

#include "common/image.h"

namespace vlascope {

using Rgb = std::array<uint8_t, 3>;
Rgb palette(int index);  // distinct, colour-blind-friendly colours

struct Series {
  std::string label;
  std::vector<double> x, y;
  std::vector<double> band_lo, band_hi;  // empty, or one per point: shaded region
  Rgb colour{0, 0, 0};
  bool points = false;  // draw markers instead of a line
  bool dashed = false;
};

struct LinePlot {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  double xmin = 0, xmax = 0, ymin = 0, ymax = 0;  // equal → fit to data
  std::vector<std::pair<double, std::string>> hlines;  // horizontal reference lines with labels

  Series& add(const std::string& label, std::vector<double> x, std::vector<double> y);
  Series& add(const std::string& label, std::vector<double> x, std::vector<double> y, std::vector<double> lo,
              std::vector<double> hi);
  Image render(int width = 800, int height = 480) const;
  void save(const std::string& path, int width = 800, int height = 480) const;
};

struct BarChart {
  std::string title, ylabel;
  std::vector<std::string> categories;  // x-axis groups
  struct Group {
    std::string label;
    std::vector<double> values;  // one per category
    std::vector<double> errors;  // half-width of the error bar, or empty
  };
  std::vector<Group> groups;

  Image render(int width = 800, int height = 480) const;
  void save(const std::string& path, int width = 800, int height = 480) const;
};

}  // namespace vlascope
