#include "common/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "common/image_io.h"

namespace vlascope {

namespace {

constexpr int kLeft = 78, kRight = 24, kTop = 40, kBottom = 56;
const cv::Scalar kAxis(60, 60, 60), kGrid(228, 228, 228), kText(30, 30, 30);

cv::Scalar colour(const Rgb& rgb) { return cv::Scalar(rgb[0], rgb[1], rgb[2]); }

// "Nice" tick step: 1, 2 or 5 times a power of ten, giving about `target` ticks.
double tick_step(double span, int target) {
  double raw = span / std::max(1, target);
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw) return m * power;
  return 10 * power;
}

std::string tick_label(double v, double step) {
  char buffer[32];
  int decimals = step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(step) - 1e-9));
  std::snprintf(buffer, sizeof buffer, "%.*f", std::min(decimals, 6), std::abs(v) < step * 1e-6 ? 0.0 : v);
  return buffer;
}

void text(cv::Mat& m, const std::string& s, int x, int y, double scale = 0.42, int align = -1,
          cv::Scalar c = kText) {
  int base = 0;
  cv::Size size = cv::getTextSize(s, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &base);
  int x0 = align < 0 ? x : align == 0 ? x - size.width / 2 : x - size.width;
  cv::putText(m, s, cv::Point(x0, y), cv::FONT_HERSHEY_SIMPLEX, scale, c, 1, cv::LINE_AA);
}

void vertical_text(cv::Mat& m, const std::string& s, int x, int y_centre) {
  int base = 0;
  cv::Size size = cv::getTextSize(s, cv::FONT_HERSHEY_SIMPLEX, 0.45, 1, &base);
  cv::Mat strip(size.height + base + 4, size.width + 4, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::putText(strip, s, cv::Point(2, size.height + 1), cv::FONT_HERSHEY_SIMPLEX, 0.45, kText, 1, cv::LINE_AA);
  cv::Mat rotated;
  cv::rotate(strip, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
  int y0 = std::max(0, y_centre - rotated.rows / 2);
  int x0 = std::max(0, x);
  cv::Rect roi(x0, y0, std::min(rotated.cols, m.cols - x0), std::min(rotated.rows, m.rows - y0));
  rotated(cv::Rect(0, 0, roi.width, roi.height)).copyTo(m(roi));
}

struct Axes {
  double x0, x1, y0, y1;
  int w, h;
  int px(double x) const { return kLeft + static_cast<int>(std::lround((x - x0) / (x1 - x0) * (w - kLeft - kRight))); }
  int py(double y) const { return h - kBottom - static_cast<int>(std::lround((y - y0) / (y1 - y0) * (h - kTop - kBottom))); }
};

void draw_frame(cv::Mat& m, const Axes& a, const std::string& title, const std::string& xlabel,
                const std::string& ylabel, bool x_ticks) {
  double ystep = tick_step(a.y1 - a.y0, 6);
  for (double y = std::ceil(a.y0 / ystep) * ystep; y <= a.y1 + ystep * 1e-9; y += ystep) {
    cv::line(m, {kLeft, a.py(y)}, {a.w - kRight, a.py(y)}, kGrid, 1);
    text(m, tick_label(y, ystep), kLeft - 6, a.py(y) + 4, 0.38, 1);
  }
  if (x_ticks) {
    double xstep = tick_step(a.x1 - a.x0, 8);
    for (double x = std::ceil(a.x0 / xstep) * xstep; x <= a.x1 + xstep * 1e-9; x += xstep) {
      cv::line(m, {a.px(x), kTop}, {a.px(x), a.h - kBottom}, kGrid, 1);
      text(m, tick_label(x, xstep), a.px(x), a.h - kBottom + 16, 0.38, 0);
    }
  }
  cv::rectangle(m, {kLeft, kTop}, {a.w - kRight, a.h - kBottom}, kAxis, 1);
  text(m, title, a.w / 2, 24, 0.55, 0);
  text(m, xlabel, (kLeft + a.w - kRight) / 2, a.h - 14, 0.45, 0);
  vertical_text(m, ylabel, 4, (kTop + a.h - kBottom) / 2);
}

void draw_legend(cv::Mat& m, const std::vector<std::pair<std::string, Rgb>>& entries, int right) {
  if (entries.empty()) return;
  const int y0 = kTop + 8;
  // As many rows as the image holds; the rest is counted on the last row ("+ 12 more").
  const int fit = std::max(1, (m.rows - y0 - 10) / 16);
  const size_t shown = entries.size() <= static_cast<size_t>(fit) ? entries.size() : static_cast<size_t>(fit - 1);
  const std::string more =
      shown < entries.size() ? "+ " + std::to_string(entries.size() - shown) + " more" : std::string();
  int width = 0, base = 0;
  for (size_t i = 0; i < shown; ++i)
    width = std::max(width, cv::getTextSize(entries[i].first, cv::FONT_HERSHEY_SIMPLEX, 0.4, 1, &base).width);
  width = std::max(width, cv::getTextSize(more, cv::FONT_HERSHEY_SIMPLEX, 0.4, 1, &base).width);
  const int rows = static_cast<int>(shown) + (more.empty() ? 0 : 1);
  const int x0 = std::max(4, right - width - 40);
  const cv::Rect box = cv::Rect(x0 - 4, y0 - 4, width + 38, rows * 16 + 6) & cv::Rect(0, 0, m.cols, m.rows);
  cv::Mat roi = m(box);
  cv::Mat white(roi.size(), roi.type(), cv::Scalar(255, 255, 255));
  cv::addWeighted(roi, 0.2, white, 0.8, 0, roi);
  for (size_t i = 0; i < shown; ++i) {
    int y = y0 + static_cast<int>(i) * 16 + 6;
    cv::line(m, {x0, y}, {x0 + 22, y}, colour(entries[i].second), 3, cv::LINE_AA);
    text(m, entries[i].first, x0 + 28, y + 4, 0.4);
  }
  if (!more.empty()) text(m, more, x0 + 28, y0 + static_cast<int>(shown) * 16 + 10, 0.4);
}

// Plots are drawn with RGB scalars, so the Mat's bytes are already RGB.
Image to_image(const cv::Mat& m) {
  Image image(m.cols, m.rows, 3);
  std::copy(m.data, m.data + image.pixels.size(), image.pixels.begin());
  return image;
}

}  // namespace

Rgb palette(int index) {
  // Okabe–Ito, reordered so the first two contrast strongly.
  static const Rgb colours[] = {{0, 114, 178},  {213, 94, 0},   {0, 158, 115}, {204, 121, 167},
                                {230, 159, 0},  {86, 180, 233}, {120, 120, 120}, {240, 228, 66}};
  return colours[index % 8];
}

Series& LinePlot::add(const std::string& label, std::vector<double> x, std::vector<double> y) {
  require(x.size() == y.size(), "plot '" + title + "': series '" + label + "' has different x and y lengths");
  Series s;
  s.label = label;
  s.x = std::move(x);
  s.y = std::move(y);
  s.colour = palette(static_cast<int>(series.size()));
  series.push_back(std::move(s));
  return series.back();
}

Series& LinePlot::add(const std::string& label, std::vector<double> x, std::vector<double> y, std::vector<double> lo,
                      std::vector<double> hi) {
  require(lo.size() == y.size() && hi.size() == y.size(),
          "plot '" + title + "': band of series '" + label + "' does not match its length");
  Series& s = add(label, std::move(x), std::move(y));
  s.band_lo = std::move(lo);
  s.band_hi = std::move(hi);
  return s;
}

Image LinePlot::render(int width, int height) const {
  double x0 = xmin, x1 = xmax, y0 = ymin, y1 = ymax;
  if (x0 == x1 || y0 == y1) {
    double ax = std::numeric_limits<double>::infinity(), bx = -ax, ay = ax, by = -ax;
    for (const Series& s : series)
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        ax = std::min(ax, s.x[i]);
        bx = std::max(bx, s.x[i]);
        double lo = s.band_lo.empty() ? s.y[i] : std::min(s.y[i], s.band_lo[i]);
        double hi = s.band_hi.empty() ? s.y[i] : std::max(s.y[i], s.band_hi[i]);
        ay = std::min(ay, lo);
        by = std::max(by, hi);
      }
    for (auto& [v, label] : hlines) {
      ay = std::min(ay, v);
      by = std::max(by, v);
    }
    if (!std::isfinite(ax)) ax = 0, bx = 1, ay = 0, by = 1;
    if (bx <= ax) bx = ax + 1;
    if (by <= ay) by = ay + 1, ay -= 1;
    double pad = 0.05 * (by - ay);
    if (x0 == x1) x0 = ax, x1 = bx;
    if (y0 == y1) y0 = ay - pad, y1 = by + pad;
  }
  Axes a{x0, x1, y0, y1, width, height};
  cv::Mat m(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  draw_frame(m, a, title, xlabel, ylabel, true);

  for (const Series& s : series) {
    if (s.band_lo.empty()) continue;
    std::vector<cv::Point> polygon;
    for (size_t i = 0; i < s.x.size(); ++i) polygon.push_back({a.px(s.x[i]), a.py(s.band_hi[i])});
    for (size_t i = s.x.size(); i-- > 0;) polygon.push_back({a.px(s.x[i]), a.py(s.band_lo[i])});
    cv::Mat layer = m.clone();
    cv::fillPoly(layer, std::vector<std::vector<cv::Point>>{polygon}, colour(s.colour), cv::LINE_AA);
    cv::addWeighted(layer, 0.22, m, 0.78, 0, m);
  }
  for (auto& [v, label] : hlines) {
    cv::line(m, {kLeft, a.py(v)}, {width - kRight, a.py(v)}, cv::Scalar(150, 150, 150), 1, cv::LINE_AA);
    text(m, label, kLeft + 4, a.py(v) - 4, 0.36, -1, cv::Scalar(110, 110, 110));
  }
  cv::Rect clip(kLeft, kTop, width - kLeft - kRight, height - kTop - kBottom);
  for (const Series& s : series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      cv::Point p{a.px(s.x[i]), a.py(s.y[i])};
      if (s.points) {
        if (clip.contains(p)) cv::circle(m, p, 3, colour(s.colour), cv::FILLED, cv::LINE_AA);
        continue;
      }
      if (i == 0 || !std::isfinite(s.y[i - 1])) continue;
      if (s.dashed && i % 2) continue;
      cv::Point q{a.px(s.x[i - 1]), a.py(s.y[i - 1])};
      if (cv::clipLine(clip, q, p)) cv::line(m, q, p, colour(s.colour), 2, cv::LINE_AA);
    }
  }
  std::vector<std::pair<std::string, Rgb>> legend;
  for (const Series& s : series)
    if (!s.label.empty()) legend.push_back({s.label, s.colour});
  draw_legend(m, legend, width - kRight);
  return to_image(m);
}

void LinePlot::save(const std::string& path, int width, int height) const { write_png(path, render(width, height)); }

Image BarChart::render(int width, int height) const {
  double lo = 0, hi = 0;
  for (const Group& g : groups) {
    require(g.values.size() == categories.size(),
            "bar chart '" + title + "': group '" + g.label + "' has a different number of values than categories");
    for (size_t i = 0; i < g.values.size(); ++i) {
      double e = g.errors.empty() ? 0 : g.errors[i];
      lo = std::min(lo, g.values[i] - e);
      hi = std::max(hi, g.values[i] + e);
    }
  }
  if (hi <= lo) hi = lo + 1;
  double pad = 0.08 * (hi - lo);
  Axes a{0, 1, lo < 0 ? lo - pad : 0, hi + pad, width, height};
  cv::Mat m(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  draw_frame(m, a, title, "", ylabel, false);
  size_t n = categories.size(), k = std::max<size_t>(1, groups.size());
  double slot = n ? 1.0 / n : 1.0;
  for (size_t c = 0; c < n; ++c) {
    text(m, categories[c], a.px((c + 0.5) * slot), height - kBottom + 18, 0.4, 0);
    for (size_t g = 0; g < groups.size(); ++g) {
      double left = c * slot + slot * (0.1 + 0.8 * g / k), right = left + slot * 0.8 / k * 0.9;
      double v = groups[g].values[c];
      cv::rectangle(m, {a.px(left), a.py(0)}, {a.px(right), a.py(v)}, colour(palette(static_cast<int>(g))), cv::FILLED);
      if (!groups[g].errors.empty()) {
        int xc = (a.px(left) + a.px(right)) / 2;
        double e = groups[g].errors[c];
        cv::line(m, {xc, a.py(v - e)}, {xc, a.py(v + e)}, kAxis, 1, cv::LINE_AA);
        cv::line(m, {xc - 4, a.py(v - e)}, {xc + 4, a.py(v - e)}, kAxis, 1);
        cv::line(m, {xc - 4, a.py(v + e)}, {xc + 4, a.py(v + e)}, kAxis, 1);
      }
    }
  }
  cv::line(m, {kLeft, a.py(0)}, {width - kRight, a.py(0)}, kAxis, 1);
  std::vector<std::pair<std::string, Rgb>> legend;
  if (groups.size() > 1)
    for (size_t g = 0; g < groups.size(); ++g) legend.push_back({groups[g].label, palette(static_cast<int>(g))});
  draw_legend(m, legend, width - kRight);
  return to_image(m);
}

void BarChart::save(const std::string& path, int width, int height) const { write_png(path, render(width, height)); }

}  // namespace vlascope
