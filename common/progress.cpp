#include "common/progress.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace vlascope {

namespace {
std::atomic<bool> g_enabled{true};

std::string format_duration(double seconds) {
  char buffer[32];
  int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600)
    std::snprintf(buffer, sizeof buffer, "%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buffer, sizeof buffer, "%02d:%02d", s / 60, s % 60);
  return buffer;
}
}  // namespace

void ProgressBar::set_enabled(bool enabled) { g_enabled = enabled; }

ProgressBar::ProgressBar(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(std::max<int64_t>(total, 0)) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
  tty_ = isatty(STDERR_FILENO) != 0;
  draw(true);
}

ProgressBar::~ProgressBar() { finish(); }

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressBar::rate() const {
  double elapsed = elapsed_seconds();
  return elapsed > 0 ? (done_ - skipped_) / elapsed : 0.0;
}

void ProgressBar::advance(int64_t n) {
  done_ += n;
  draw(false);
}

void ProgressBar::skip(int64_t n) {
  done_ += n;
  skipped_ += n;
  draw(false);
}

void ProgressBar::set_status(const std::string& status) {
  status_ = status;
  draw(false);
}

void ProgressBar::finish() {
  if (finished_) return;
  draw(true);
  finished_ = true;
  if (g_enabled && tty_) std::fputc('\n', stderr);
}

void ProgressBar::draw(bool force) {
  if (!g_enabled || finished_) return;
  auto now = std::chrono::steady_clock::now();
  double fraction = total_ > 0 ? std::min(1.0, static_cast<double>(done_) / total_) : 0.0;
  if (tty_) {
    if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  } else {
    // Logs get one line per tenth of the work, and the final line only if it says something new.
    int decile = static_cast<int>(fraction * 10);
    if (decile == last_decile_ && (!force || done_ == last_drawn_done_)) return;
    last_decile_ = decile;
  }
  last_drawn_done_ = done_;
  last_draw_ = now;

  double elapsed = elapsed_seconds();
  double rate = this->rate();
  std::string eta = (rate > 0 && total_ > done_) ? format_duration((total_ - done_) / rate) : "--:--";
  constexpr int kWidth = 24;
  int filled = static_cast<int>(fraction * kWidth);
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '.');
  std::fprintf(stderr, "%s%s [%s] %lld/%lld %s  %.1f %s/s  %s<%s  %s%s", tty_ ? "\r\033[K" : "", label_.c_str(),
               bar.c_str(), static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(), rate,
               unit_.c_str(), format_duration(elapsed).c_str(), eta.c_str(), status_.c_str(), tty_ ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace vlascope
