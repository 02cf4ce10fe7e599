// A progress bar on stderr for anything that runs longer than a few seconds.
//
//   ProgressBar bar("collect", episodes, "episodes");
//   for (...) { ...; bar.advance(); bar.set_status("success 97%"); }
//   bar.finish();
//
// On a terminal it redraws one line at most 10 times a second; when stderr is a file or a pipe (CI logs)
// it prints a plain line every 10% so logs stay short.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace vlascope {

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::string unit = "it");
  ~ProgressBar();
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void advance(int64_t n = 1);
  // Work a previous run already did (a resumed training): counted as done, but not in the rate or the ETA.
  void skip(int64_t n);
  void set_status(const std::string& status);  // shown after the counts, e.g. "loss 0.123"
  void finish();                                // final line with elapsed time; called by the destructor too

  double elapsed_seconds() const;
  double rate() const;  // units per second of this run (skipped work excluded)
  int64_t done() const { return done_; }

  // Silences every bar in this process (tests, benchmarks).
  static void set_enabled(bool enabled);

 private:
  void draw(bool force);

  std::string label_, unit_, status_;
  int64_t total_ = 0, done_ = 0, skipped_ = 0, last_drawn_done_ = -1;
  std::chrono::steady_clock::time_point start_, last_draw_;
  int last_decile_ = -1;
  bool tty_ = false, finished_ = false;
};

}  // namespace vlascope
