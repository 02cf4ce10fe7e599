#include "hardware/stop_signal.h"

#include <atomic>
#include <csignal>

namespace vlascope {

namespace {
std::atomic<bool> g_stop{false};
std::atomic<bool> g_installed{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_stop_signal(int) { g_stop.store(true); }

void arm_handler() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;  // a second signal gets the default action: the program ends
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}
}  // namespace

void install_stop_signal_handler() {
  if (g_installed.exchange(true)) return;
  arm_handler();
}

bool stop_requested() { return g_stop.load(); }

void clear_stop_request() {
  g_stop.store(false);
  if (g_installed.load()) arm_handler();
}

void request_stop() { g_stop.store(true); }

}  // namespace vlascope
