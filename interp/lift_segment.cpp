#include "interp/lift_segment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"

namespace vlascope {

const char* lift_status_name(LiftStatus status) {
  switch (status) {
    case LiftStatus::kNoGrasp:
      return "no-grasp";
    case LiftStatus::kGraspNoLift:
      return "grasp-no-lift";
    case LiftStatus::kLifted:
      return "lifted";
  }
  return "?";
}

std::string LiftSegment::describe() const {
  char buffer[320];
  if (status != LiftStatus::kLifted) {
    std::snprintf(buffer, sizeof buffer, "%s (%zu closing%s, grasp index %d)", lift_status_name(status),
                  attempts.size(), attempts.size() == 1 ? "" : "s", grasp_index);
    return buffer;
  }
  std::snprintf(buffer, sizeof buffer,
                "lifted: grasp %.2f s, lift %.2f–%.2f s (%d steps), height mean %.3f max %.3f m (rise mean %.3f "
                "max %.3f m), %.4f m/step, %.3f m/s",
                grasp_time, lift_start_time, lift_end_time, steps, mean_height, max_height, mean_rise, max_rise,
                mean_step_displacement, mean_speed);
  return buffer;
}

std::vector<double> moving_median(const std::vector<double>& time, const std::vector<double>& values, double window_s) {
  require(time.size() == values.size(), "moving_median: time and values differ in length");
  const size_t n = values.size();
  std::vector<double> out(n), window;
  size_t lo = 0, hi = 0;  // samples [lo, hi) lie within ±window/2 of sample i
  for (size_t i = 0; i < n; ++i) {
    while (time[lo] < time[i] - window_s / 2) ++lo;
    while (hi < n && time[hi] <= time[i] + window_s / 2) ++hi;
    window.assign(values.begin() + static_cast<long>(lo), values.begin() + static_cast<long>(hi));
    const size_t mid = window.size() / 2;
    std::nth_element(window.begin(), window.begin() + static_cast<long>(mid), window.end());
    double median = window[mid];
    if (window.size() % 2 == 0) {
      const double below = *std::max_element(window.begin(), window.begin() + static_cast<long>(mid));
      median = 0.5 * (median + below);
    }
    out[i] = median;
  }
  return out;
}

std::vector<double> moving_average(const std::vector<double>& time, const std::vector<double>& values,
                                   double window_s) {
  require(time.size() == values.size(), "moving_average: time and values differ in length");
  const size_t n = values.size();
  std::vector<double> out(n);
  size_t lo = 0, hi = 0;
  double sum = 0;  // of values[lo, hi)
  for (size_t i = 0; i < n; ++i) {
    while (hi < n && time[hi] <= time[i] + window_s / 2) sum += values[hi++];
    while (time[lo] < time[i] - window_s / 2) sum -= values[lo++];
    out[i] = sum / static_cast<double>(hi - lo);
  }
  return out;
}

namespace {

void validate(const EeTrajectory& t, const LiftOptions& o) {
  const size_t n = t.time.size();
  require(n >= 2, "find_lift_segment: the trajectory needs at least 2 samples, has " + std::to_string(n));
  require(t.ee.size() == n && t.gripper.size() == n, "find_lift_segment: time has " + std::to_string(n) +
                                                         " samples but ee has " + std::to_string(t.ee.size()) +
                                                         " and gripper " + std::to_string(t.gripper.size()));
  for (size_t i = 0; i < n; ++i) {
    const std::string at = " at sample " + std::to_string(i);
    require(std::isfinite(t.time[i]), "find_lift_segment: time is not finite" + at);
    require(i == 0 || t.time[i] > t.time[i - 1], "find_lift_segment: time does not increase" + at);
    require(std::isfinite(t.gripper[i]), "find_lift_segment: gripper is not finite" + at);
    for (int k = 0; k < 3; ++k) require(std::isfinite(t.ee[i][k]), "find_lift_segment: ee position is not finite" + at);
  }
  require(o.smooth_window_s >= 0 && o.average_window_s >= 0 && o.min_close_drop > 0 && o.reopen_rise > 0 &&
              o.min_hold_s >= 0 && o.min_lift_rise > 0 && o.start_band >= 0 && o.start_band < o.min_lift_rise &&
              o.plateau_rise > 0 && o.plateau_window_s > 0 && o.end_fraction > 0 && o.end_fraction <= 1,
          "find_lift_segment: LiftOptions out of range (thresholds must be positive, start_band < min_lift_rise, "
          "0 < end_fraction <= 1)");
}

double median_of(std::vector<double> v) {
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<long>(mid), v.end());
  return v[mid];
}

// Every closing of the gripper: the opening falls min_close_drop below the level it was opened to.
std::vector<GraspAttempt> find_closings(const std::vector<double>& time, const std::vector<double>& g,
                                        const LiftOptions& o) {
  std::vector<GraspAttempt> attempts;
  const int n = static_cast<int>(g.size());
  int peak_index = 0;
  for (int i = 1; i < n; ++i) {
    if (g[i] > g[peak_index]) peak_index = i;
    const double peak = g[peak_index];
    if (g[i] > peak - o.min_close_drop) continue;
    // Closed at i. Follow it until it reopens (rises reopen_rise above the lowest opening seen since).
    int reopen = -1;
    double lowest = g[i];
    for (int j = i + 1; j < n; ++j) {
      lowest = std::min(lowest, g[j]);
      if (g[j] >= lowest + o.reopen_rise) {
        reopen = j;
        break;
      }
    }
    const int closed_end = reopen < 0 ? n : reopen;
    GraspAttempt a;
    a.closed_opening = median_of(std::vector<double>(g.begin() + i, g.begin() + closed_end));
    const double level = peak - 0.9 * (peak - a.closed_opening);
    a.close_index = peak_index;
    while (a.close_index < closed_end - 1 && g[a.close_index] > level) ++a.close_index;
    a.reopen_index = reopen;
    a.hold_s = time[static_cast<size_t>(closed_end - 1)] - time[static_cast<size_t>(a.close_index)];
    a.empty = o.empty_closed_below >= 0 && a.closed_opening < o.empty_closed_below;
    a.held = a.hold_s >= o.min_hold_s && !a.empty;
    attempts.push_back(a);
    if (reopen < 0) break;
    peak_index = reopen;
    i = reopen;
  }
  return attempts;
}

struct Lift {
  int start = -1, end = -1;
  double top = 0;  // smoothed height of the plateau
};

// The lift while attempt a holds: rise ≥ min_lift_rise, start where the EE left the grasp band, end at the
// first plateau (or the release, or the end of the data).
Lift find_lift(const std::vector<double>& time, const std::vector<double>& z, const GraspAttempt& a,
               const LiftOptions& o) {
  Lift lift;
  const int g = a.close_index;
  const int last = (a.reopen_index < 0 ? static_cast<int>(z.size()) : a.reopen_index) - 1;
  const double reference = z[static_cast<size_t>(g)];
  int crossing = -1;
  for (int i = g; i <= last && crossing < 0; ++i)
    if (z[static_cast<size_t>(i)] >= reference + o.min_lift_rise) crossing = i;
  if (crossing < 0) return lift;
  lift.start = g;
  for (int i = crossing; i >= g; --i)
    if (z[static_cast<size_t>(i)] <= reference + o.start_band) {
      lift.start = i;
      break;
    }
  // The plateau: the first sample after which the height gains less than plateau_rise within the window.
  auto window_end = [&](int e) {  // last sample within the window after e (at least e + 1, at most last)
    int j = std::min(e + 1, last);
    while (j < last && time[static_cast<size_t>(j + 1)] <= time[static_cast<size_t>(e)] + o.plateau_window_s) ++j;
    return j;
  };
  double highest = *std::max_element(z.begin() + g, z.begin() + crossing + 1);
  int plateau = last;
  for (int e = crossing; e < last; ++e) {
    highest = std::max(highest, z[static_cast<size_t>(e)]);
    const double ahead = *std::max_element(z.begin() + e + 1, z.begin() + window_end(e) + 1);
    if (ahead < highest + o.plateau_rise) {
      plateau = e;
      break;
    }
  }
  lift.top = *std::max_element(z.begin() + g, z.begin() + window_end(plateau) + 1);
  const double target = reference + o.end_fraction * (lift.top - reference);
  lift.end = plateau;
  for (int i = lift.start + 1; i <= plateau; ++i)
    if (z[static_cast<size_t>(i)] >= target) {
      lift.end = i;
      break;
    }
  return lift;
}

}  // namespace

LiftSegment find_lift_segment(const EeTrajectory& t, const LiftOptions& o) {
  validate(t, o);
  const size_t n = t.time.size();
  LiftSegment s;
  s.episode_steps = static_cast<int>(n);
  s.episode_duration_s = t.time.back() - t.time.front();

  const std::vector<double> gripper = moving_median(t.time, t.gripper, o.smooth_window_s);
  std::vector<std::vector<double>> position(3, std::vector<double>(n));
  for (int k = 0; k < 3; ++k) {
    for (size_t i = 0; i < n; ++i) position[k][i] = t.ee[i][k];
    position[k] = moving_average(t.time, moving_median(t.time, position[k], o.smooth_window_s), o.average_window_s);
  }
  const std::vector<double>& z = position[2];

  s.attempts = find_closings(t.time, gripper, o);
  Lift lift;
  for (size_t k = 0; k < s.attempts.size(); ++k) {
    GraspAttempt& a = s.attempts[k];
    if (!a.held) continue;
    const Lift candidate = find_lift(t.time, z, a, o);
    a.lifted = candidate.start >= 0;
    if (a.lifted && s.chosen_attempt < 0) {
      s.chosen_attempt = static_cast<int>(k);
      lift = candidate;
    }
  }
  if (s.chosen_attempt < 0)
    for (size_t k = 0; k < s.attempts.size(); ++k)
      if (s.attempts[k].held) s.chosen_attempt = static_cast<int>(k);
  if (s.chosen_attempt < 0) return s;

  const GraspAttempt& a = s.attempts[static_cast<size_t>(s.chosen_attempt)];
  s.grasp_index = a.close_index;
  s.grasp_time = t.time[static_cast<size_t>(a.close_index)];
  s.grasp_height = z[static_cast<size_t>(a.close_index)];
  if (lift.start < 0) {
    s.status = LiftStatus::kGraspNoLift;
    return s;
  }
  s.status = LiftStatus::kLifted;
  s.lift_start_index = lift.start;
  s.lift_end_index = lift.end;
  s.lift_start_time = t.time[static_cast<size_t>(lift.start)];
  s.lift_end_time = t.time[static_cast<size_t>(lift.end)];
  s.duration_s = s.lift_end_time - s.lift_start_time;
  s.steps = lift.end - lift.start + 1;

  std::vector<double> heights;
  for (int i = lift.start; i <= lift.end; ++i) heights.push_back(t.ee[static_cast<size_t>(i)][2]);
  double sum = 0;
  for (double h : heights) sum += h;
  s.mean_height = sum / static_cast<double>(heights.size());
  s.max_height = *std::max_element(heights.begin(), heights.end());
  std::sort(heights.begin(), heights.end());
  const double rank = 0.95 * static_cast<double>(heights.size() - 1);
  const size_t below = static_cast<size_t>(rank);
  s.p95_height = below + 1 < heights.size()
                     ? heights[below] + (rank - static_cast<double>(below)) * (heights[below + 1] - heights[below])
                     : heights.back();
  s.mean_rise = s.mean_height - s.grasp_height;
  s.max_rise = s.max_height - s.grasp_height;
  s.top_height = lift.top;
  s.top_rise = lift.top - s.grasp_height;

  double path = 0;
  for (int i = lift.start; i < lift.end; ++i) {
    double d2 = 0;
    for (int k = 0; k < 3; ++k) {
      const double d = position[k][static_cast<size_t>(i + 1)] - position[k][static_cast<size_t>(i)];
      d2 += d * d;
    }
    path += std::sqrt(d2);
  }
  s.mean_step_displacement = path / (lift.end - lift.start);
  s.mean_speed = path / s.duration_s;
  s.mean_vertical_speed = (z[static_cast<size_t>(lift.end)] - z[static_cast<size_t>(lift.start)]) / s.duration_s;
  return s;
}

}  // namespace vlascope
