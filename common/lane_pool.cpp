#include "common/lane_pool.h"

#include "common/error.h"

namespace vlascope {

LanePool::LanePool(int threads) : threads_(threads) {
  require(threads >= 1 && threads <= 256, "LanePool: threads must be 1..256, got " + std::to_string(threads));
  for (int t = 1; t < threads; ++t) workers_.emplace_back([this, t] { work(t); });
}

LanePool::~LanePool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    quit_ = true;
  }
  start_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void LanePool::run_own(int thread) {
  for (int lane = thread; lane < lanes_; lane += threads_) {
    try {
      (*fn_)(lane);
    } catch (...) {
      errors_[static_cast<size_t>(lane)] = std::current_exception();  // each lane writes only its own slot
    }
  }
}

void LanePool::work(int thread) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return quit_ || generation_ != seen; });
      if (quit_) return;
      seen = generation_;
    }
    run_own(thread);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) finished_.notify_one();
    }
  }
}

void LanePool::run(int lanes, const std::function<void(int)>& fn) {
  if (lanes <= 0) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    fn_ = &fn;
    lanes_ = lanes;
    errors_.assign(static_cast<size_t>(lanes), nullptr);
    pending_ = threads_ - 1;
    ++generation_;
  }
  start_.notify_all();
  run_own(0);
  {
    std::unique_lock<std::mutex> lock(mutex_);
    finished_.wait(lock, [&] { return pending_ == 0; });
    fn_ = nullptr;
  }
  for (const std::exception_ptr& e : errors_)
    if (e) std::rethrow_exception(e);
}

}  // namespace vlascope
