// A fixed set of threads that runs one function over numbered lanes, lane l always on thread l % threads (thread 0
// is the caller). Batched rollouts step one simulator per lane in lock step: a simulator's OpenGL context belongs to
// the thread that made it, so a lane must never move to another thread, which a work-stealing pool would do.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vlascope {

class LanePool {
 public:
  explicit LanePool(int threads);  // ≥ 1; threads − 1 workers are started
  ~LanePool();
  LanePool(const LanePool&) = delete;
  LanePool& operator=(const LanePool&) = delete;

  int threads() const { return threads_; }
  // Runs fn(l) for every l in [0, lanes), l on thread l % threads, and returns when all are done. If any call threw,
  // the first exception (by lane) is rethrown here after every lane has finished.
  void run(int lanes, const std::function<void(int lane)>& fn);

 private:
  void work(int thread);
  void run_own(int thread);

  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_, finished_;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool quit_ = false;
  int lanes_ = 0;
  const std::function<void(int)>* fn_ = nullptr;
  std::vector<std::exception_ptr> errors_;  // per lane
};

}  // namespace vlascope
