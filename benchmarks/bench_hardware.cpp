// One SO-100 control tick (SYNC READ of six positions + unit conversion + safety chain + SYNC WRITE of six
// goals), measured four ways so the driver's own cost is separated from the transfer:
//
//   BM_DriverOnly        the driver with canned servo replies: no I/O, no twin. Pure driver CPU per tick.
//   BM_RawPtyExchange    the same bytes through the pseudo-terminal and the twin, without the driver
//                        (hand-built packets, blocking reads): the transport + twin baseline.
//   BM_TickOverPty       the full driver tick over the pty against the twin (what `observe+act` cost).
//   BM_TickOverPtyWire   the same with the twin holding each reply for its time on a 1 Mbps wire
//                        (so100.md §2.5: the host waits for the 14-byte SYNC READ and six 8-byte replies,
//                        62 bytes ≈ 0.62 ms; the 26-byte SYNC WRITE gets no reply: 88 bytes ≈ 0.88 ms in all).
//
// Driver overhead beyond the wire = BM_TickOverPty − BM_RawPtyExchange (≈ BM_DriverOnly); the target is
// < 1 ms. Each benchmark reports p50/p90/p99/max wall time per tick and the calling thread's CPU time.
#include <benchmark/benchmark.h>
#include <time.h>

#include <algorithm>
#include <deque>
#include <vector>

#include "hardware/feetech_protocol.h"
#include "hardware/servo_twin.h"
#include "hardware/so100_follower.h"

namespace vlascope {
namespace {

using namespace feetech;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// Forwards to a loopback twin while the follower connects; then answers every SYNC READ with the last
// real reply it saw, instantly, and swallows writes: the driver runs with no I/O at all.
class CannedTransport : public Transport {
 public:
  explicit CannedTransport(std::shared_ptr<ServoBusTwin> twin) : inner_(std::move(twin), "canned") {}
  void go_canned() { canned_ = true; }
  const std::string& name() const override { return inner_.name(); }
  void write(const uint8_t* data, size_t size) override {
    const bool sync_read = size > 4 && data[4] == static_cast<uint8_t>(Instruction::sync_read);
    if (!canned_) {
      recording_ = sync_read;
      if (recording_) recorded_.clear();
      inner_.write(data, size);
      return;
    }
    if (sync_read) queue_.insert(queue_.end(), recorded_.begin(), recorded_.end());
  }
  size_t read(uint8_t* data, size_t capacity, double timeout_s) override {
    if (!canned_) {
      size_t n = inner_.read(data, capacity, timeout_s);
      if (recording_) recorded_.insert(recorded_.end(), data, data + n);
      return n;
    }
    const size_t n = std::min(capacity, queue_.size());
    std::copy(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n), data);
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  void flush_input() override {
    if (!canned_) inner_.flush_input();
  }
  void set_baud_rate(int baud) override { inner_.set_baud_rate(baud); }
  int baud_rate() const override { return inner_.baud_rate(); }

 private:
  LoopbackTransport inner_;
  bool canned_ = false, recording_ = false;
  std::vector<uint8_t> recorded_;
  std::deque<uint8_t> queue_;
};

So100Config bench_config(const ServoBusTwin& twin, const std::string& port) {
  So100Config c;
  c.bus.port = port;
  c.handle_ctrl_c = false;
  c.watchdog_timeout_s = 0;
  c.calibration = twin.expected_calibration();
  return c;
}

// Runs `tick` per iteration; reports wall-time percentiles and thread CPU per tick.
template <class F>
void measure(benchmark::State& state, F tick) {
  std::vector<double> wall;
  wall.reserve(1 << 16);
  const double cpu0 = thread_cpu_seconds();
  for (auto _ : state) {
    const double t0 = steady_seconds();
    tick();
    wall.push_back(steady_seconds() - t0);
  }
  const double cpu = thread_cpu_seconds() - cpu0;
  std::sort(wall.begin(), wall.end());
  auto pct = [&](double p) { return wall[std::min(wall.size() - 1, static_cast<size_t>(p * wall.size()))] * 1e6; };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p90_us"] = pct(0.90);
  state.counters["p99_us"] = pct(0.99);
  state.counters["max_us"] = wall.back() * 1e6;
  state.counters["cpu_us"] = cpu / wall.size() * 1e6;
}

JointVector wiggle(const JointVector& centre, int64_t k) {
  JointVector t = centre;
  for (int j = 0; j < kNumJoints; ++j) t[j] += 0.05 * ((k + j) % 5 - 2) / 2.0;
  return t;
}

void BM_DriverOnly(benchmark::State& state) {
  auto twin = ServoBusTwin::first_order(TwinOptions{{1, 2, 3, 4, 5, 6}, default_so100_mounting(), true});
  auto transport = std::make_unique<CannedTransport>(twin);
  CannedTransport* canned = transport.get();
  So100Follower arm(std::move(transport), bench_config(*twin, "canned"));
  arm.read_joint_positions();  // records a real SYNC READ reply
  canned->go_canned();
  const JointVector centre = twin->options().mounting.reference_rad;
  int64_t k = 0;
  measure(state, [&] {
    arm.read_joint_positions();
    arm.write_joint_targets(wiggle(centre, k++));
  });
  if (arm.bus_stats().failures) state.SkipWithError("bus failures");
}
BENCHMARK(BM_DriverOnly)->Unit(benchmark::kMicrosecond);

void BM_UnitConversion(benchmark::State& state) {
  const ArmCalibration cal = lerobot_calibration_of(default_so100_mounting(), {1, 2, 3, 4, 5, 6});
  const UnitMapping units;
  TickVector ticks{2047, 2100, 1900, 2500, 1000, 2200};
  for (auto _ : state) {
    JointVector q = from_lerobot(ticks_to_lerobot(ticks, cal), units);
    ticks = lerobot_to_ticks(to_lerobot(q, units), cal);
    benchmark::DoNotOptimize(ticks);
  }
}
BENCHMARK(BM_UnitConversion)->Unit(benchmark::kNanosecond);

void BM_RawPtyExchange(benchmark::State& state) {
  auto twin = ServoBusTwin::first_order(TwinOptions{{1, 2, 3, 4, 5, 6}, default_so100_mounting(), true});
  PtyServoTwin pty(twin);
  PosixSerialTransport port(pty.device_path(), 1000000);
  const std::vector<uint8_t> read_all = sync_read_packet(56, 2, {1, 2, 3, 4, 5, 6});
  std::vector<std::pair<uint8_t, std::vector<uint8_t>>> goals;
  for (uint8_t id = 1; id <= 6; ++id) goals.push_back({id, encode_value(reg::Goal_Position, 2047)});
  const std::vector<uint8_t> write_all = sync_write_packet(42, 2, goals);
  const size_t expected = 6 * status_packet_size(2);
  uint8_t buffer[256];
  measure(state, [&] {
    port.write(read_all.data(), read_all.size());
    size_t got = 0;
    while (got < expected) {
      const size_t n = port.read(buffer, sizeof buffer, 0.05);
      if (n == 0) break;
      got += n;
    }
    port.write(write_all.data(), write_all.size());
  });
}
BENCHMARK(BM_RawPtyExchange)->Unit(benchmark::kMicrosecond)->MinTime(2.0);

void tick_over_pty(benchmark::State& state, double wire_baud) {
  TwinOptions options{{1, 2, 3, 4, 5, 6}, default_so100_mounting(), true};
  options.wire_baud = wire_baud;
  auto twin = ServoBusTwin::first_order(options);
  PtyServoTwin pty(twin);
  So100Follower arm(bench_config(*twin, pty.device_path()));
  const JointVector centre = twin->options().mounting.reference_rad;
  int64_t k = 0;
  measure(state, [&] {
    arm.read_joint_positions();
    arm.write_joint_targets(wiggle(centre, k++));
  });
  state.counters["retries"] = static_cast<double>(arm.bus_stats().retries);
  if (arm.bus_stats().failures) state.SkipWithError("bus failures");
}

void BM_TickOverPty(benchmark::State& state) { tick_over_pty(state, 0); }
BENCHMARK(BM_TickOverPty)->Unit(benchmark::kMicrosecond)->MinTime(2.0);

void BM_TickOverPtyWire(benchmark::State& state) { tick_over_pty(state, 1e6); }
BENCHMARK(BM_TickOverPtyWire)->Unit(benchmark::kMicrosecond)->MinTime(2.0);

}  // namespace
}  // namespace vlascope

BENCHMARK_MAIN();
