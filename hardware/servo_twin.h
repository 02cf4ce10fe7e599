// The servo-bus twin: six emulated STS3215 servos that answer the Feetech protocol like the real ones, so
// the real driver (and any other Feetech client) can be tested without an arm.
//
//   host ── bytes ──▶ ServoBusTwin ── goal angles ──▶ JointBackend (first-order model, or MuJoCo from apps/)
//        ◀─ status ──   (control tables)  ◀─ joint angles ──
//
// Layers, each usable on its own:
//   JointBackend        the physical arm: goal angles in, joint angles out, stepped in time. Radians in the
//                       simulator's convention, so a MuJoCo backend (apps/, built on sim/) plugs in directly.
//   ServoMounting       how each servo's encoder is mounted on its joint: ticks ↔ radians, mechanical stops.
//   ServoBusTwin        the servos: control tables with EEPROM/RAM/Lock semantics, homing offset, position
//                       limits, status packets and error bits, sync read/write, REG WRITE/ACTION, fault
//                       injection. Pure bytes-in/bytes-out with timestamps; thread-safe.
//   PtyServoTwin        serves a ServoBusTwin on a pseudo-terminal (posix_openpt) from a thread, so a
//                       client opens device_path() exactly as it would open /dev/ttyACM0.
//   LoopbackTransport   a Transport straight into a ServoBusTwin, no pty, no thread (unit tests, benchmarks).
#pragma once

#include <array>
#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "hardware/calibration.h"
#include "hardware/feetech_protocol.h"
#include "hardware/robot.h"
#include "hardware/serial_transport.h"

namespace vlascope {

// ---- the physical arm ---------------------------------------------------------------------------

class JointBackend {
 public:
  virtual ~JointBackend() = default;
  virtual std::string name() const = 0;
  // Motor commands for the next steps: a target angle per joint and whether its motor is powered.
  // Unpowered joints move only under outside forces (gravity in MuJoCo, the "hand" of the first-order model).
  virtual void set_targets(const JointVector& target_rad, const std::array<bool, kNumJoints>& powered) = 0;
  virtual void step(double dt) = 0;
  virtual JointVector positions() const = 0;          // radians
  virtual JointVector velocities() const = 0;         // radians per second
  virtual JointVector efforts() const { return {}; }  // motor effort as a fraction of its maximum, −1…1
  // The largest step the twin should take when catching up with wall-clock time.
  virtual double max_step() const { return 0.001; }
  // A person's hand moving the unpowered joints toward `pose` (posing the arm for calibration, moving a
  // leader); powered joints resist it. release_hand(): unpowered joints are left alone again.
  virtual void set_hand(const JointVector& pose) = 0;
  virtual void release_hand() = 0;
};

// Each powered joint approaches its target as a first-order lag with a speed limit, like a position servo
// with a stiff inner loop; positions stay within the mechanical stops. Unpowered joints stay where they are,
// unless a "hand" moves them (set_hand): a person posing the arm, a leader being moved, a calibration sweep.
struct FirstOrderOptions {
  double time_constant_s = 0.04;  // 63 % of a small step in this time
  double max_speed = 5.4;         // rad/s: STS3215 no-load speed at 7.4 V (0.192 s / 60°)
  double hand_speed = 3.0;        // rad/s with which the hand moves unpowered joints
};

class FirstOrderJointBackend : public JointBackend {
 public:
  FirstOrderJointBackend(const JointVector& initial, const JointLimits& stops, FirstOrderOptions options = {});

  std::string name() const override { return "first-order"; }
  void set_targets(const JointVector& target_rad, const std::array<bool, kNumJoints>& powered) override;
  void step(double dt) override;
  JointVector positions() const override { return q_; }
  JointVector velocities() const override { return v_; }
  JointVector efforts() const override;

  void set_hand(const JointVector& pose) override;
  void release_hand() override;
  bool hand_arrived(double tolerance = 1e-3) const;  // every unpowered joint is at the hand pose
  void teleport(const JointVector& q);

 private:
  JointVector q_{}, v_{}, target_{}, hand_{};
  std::array<bool, kNumJoints> powered_{};
  bool hand_active_ = false;
  JointLimits stops_;
  FirstOrderOptions options_;
};

// ---- servo mounting -----------------------------------------------------------------------------

// actual encoder ticks = tick_at_reference + direction · (q − reference) · 4096 / 2π
struct ServoMounting {
  JointVector reference_rad{};  // the pose a user holds for "middle of the range"
  std::array<int, kNumJoints> tick_at_reference{};
  JointVector direction{};  // ±1
  JointLimits stops;        // mechanical hard stops, radians
  double ticks(int joint, double q) const;
  double radians(int joint, double ticks) const;
};

// An SO-100 twin consistent with the default UnitMapping (units.h): after LeRobot's calibration procedure
// (mid pose = reference_rad, full sweeps between the stops) its LeRobot degrees map to the simulator's
// radians through the default sign/offset. The stops are symmetric about each arm joint's LeRobot zero
// (the menagerie joint range, widened where it is lopsided) so that the calibrated mid-range is that zero;
// the encoder zero positions are deliberately scattered so calibration has real offsets to find.
ServoMounting default_so100_mounting();

// The calibration LeRobot's procedure produces on a twin with this mounting (mid pose = reference,
// sweeps to the stops, wrist_roll 0…4095): the ground truth `vlascope calibrate` must find.
ArmCalibration lerobot_calibration_of(const ServoMounting& mounting, const std::array<int, kNumJoints>& ids);

// ---- the servos ---------------------------------------------------------------------------------

struct TwinFaults {
  double drop_rate = 0;      // probability that any byte (either direction) is lost
  double corrupt_rate = 0;   // probability that any byte (either direction) has random bits flipped
  std::set<int> silent;      // servos that stop answering and obeying (a cut cable)
  double reply_delay_s = 0;  // every reply leaves this late (slow servo / adapter)
  std::set<int> overload;    // servos that report the overload error bit (status ERR and register 65)
  // Deterministic faults, for tests that need exactly one: the next this-many status replies are lost, or
  // arrive with their checksum byte flipped. Each reply they take counts them down (faults() shows the rest).
  int drop_next_replies = 0;
  int garble_next_replies = 0;
  bool operator==(const TwinFaults& o) const {
    return drop_rate == o.drop_rate && corrupt_rate == o.corrupt_rate && silent == o.silent &&
           reply_delay_s == o.reply_delay_s && overload == o.overload && drop_next_replies == o.drop_next_replies &&
           garble_next_replies == o.garble_next_replies;
  }
};

struct TwinOptions {
  std::array<int, kNumJoints> ids{1, 2, 3, 4, 5, 6};  // servo ID of each joint
  ServoMounting mounting = default_so100_mounting();
  // true: the EEPROM already holds the LeRobot calibration (homing offset and limits) as if the arm had
  // been calibrated; false: factory state (offset 0, limits 0…4095), as a new arm.
  bool calibrated = false;
  int firmware_major = 3, firmware_minor = 10;
  int model_number = feetech::kModelSts3215;
  double wire_baud = 0;  // > 0: replies also wait for the bytes' time on a wire at this baud rate
  uint64_t seed = 1;     // fault injection
};

struct GoalRecord {
  double time;  // twin clock, seconds
  int id;
  int goal;  // Goal_Position as written (before the servo clamps it to its limits)
};

struct TwinStats {
  uint64_t packets = 0, bad_packets = 0, timed_out_packets = 0, replies = 0;
  uint64_t pings = 0, reads = 0, writes = 0, sync_reads = 0, sync_writes = 0, other = 0;
  uint64_t dropped_bytes = 0, corrupted_bytes = 0;
};

class ServoBusTwin {
 public:
  ServoBusTwin(TwinOptions options, std::unique_ptr<JointBackend> backend);
  // A twin backed by the first-order model, starting at the mounting's reference pose.
  static std::shared_ptr<ServoBusTwin> first_order(TwinOptions options = {}, FirstOrderOptions model = {});

  struct Outgoing {
    double send_time;  // seconds on the steady clock
    std::vector<uint8_t> bytes;
  };
  // Bytes from the host arriving at `now` (seconds, steady clock). Returns what the servos send back and when.
  std::vector<Outgoing> receive(const uint8_t* data, size_t size, double now);
  // Steps the joint backend up to `now` (at most one second of catching up per call).
  void advance(double now);

  // ---- inspection and control (thread-safe) ----
  TwinFaults faults() const;
  void set_faults(const TwinFaults& faults);
  JointVector joint_positions() const;                           // backend radians: the truth the driver should read
  int register_value(int id, const feetech::Register& r) const;  // current (effective) value
  int saved_register_value(int id, const feetech::Register& r) const;      // what survives a power cycle
  void set_register_value(int id, const feetech::Register& r, int value);  // as if by a host; persists
  bool torque_enabled(int id) const;
  std::vector<GoalRecord> goal_log() const;
  void clear_goal_log();
  TwinStats stats() const;
  void power_cycle();  // every servo restarts from its saved EEPROM, torque off
  const TwinOptions& options() const { return options_; }
  ArmCalibration expected_calibration() const { return lerobot_calibration_of(options_.mounting, options_.ids); }
  // Runs `f` on the backend under the twin's lock (e.g. to move the first-order model's hand).
  void with_backend(const std::function<void(JointBackend&)>& f);
  template <class Backend>
  void with(const std::function<void(Backend&)>& f) {
    with_backend([&](JointBackend& b) { f(dynamic_cast<Backend&>(b)); });
  }

 private:
  struct Servo {
    int joint = 0;
    std::array<uint8_t, 256> table{};  // effective control table
    std::array<uint8_t, 256> saved{};  // EEPROM as persisted
    bool reg_pending = false;
    uint8_t reg_address = 0;
    std::vector<uint8_t> reg_data;
    double actual_ticks = 0;  // encoder, before the homing offset
  };

  int id_of(const Servo& s) const { return s.table[feetech::reg::ID.address]; }
  Servo* find(int id);
  const Servo& servo_or_throw(int id) const;
  void factory_reset(Servo& s, bool keep_id);
  void restart(Servo& s);  // power-up: EEPROM from what was saved, RAM cleared, torque off
  void advance_locked(double now);
  void apply_write(Servo& s, uint8_t address, const uint8_t* data, size_t size, double now);
  int get(const Servo& s, const feetech::Register& r) const;
  void put(Servo& s, const feetech::Register& r, int value);
  void sync_registers_from_backend();
  void push_targets_to_backend();
  uint8_t error_byte(const Servo& s) const;
  void handle(const feetech::Packet& p, double now, std::vector<Outgoing>& out);
  void reply(const Servo& s, const std::vector<uint8_t>& data, double now, std::vector<Outgoing>& out, int as_id = -1);
  std::vector<uint8_t> corrupt(std::vector<uint8_t> bytes);

  TwinOptions options_;
  std::unique_ptr<JointBackend> backend_;
  std::vector<Servo> servos_;
  feetech::PacketParser parser_{feetech::PacketKind::instruction};
  TwinFaults faults_;
  std::mt19937_64 rng_;
  double clock_ = -1;     // last advance time
  double line_free_ = 0;  // when the twin's last reply finishes (replies do not overlap on the wire)
  double last_byte_time_ = 0;
  static constexpr double kPacketTimeout = 0.002;  // an incomplete packet is dropped after this silence
  std::vector<GoalRecord> goals_;
  TwinStats stats_;
  mutable std::mutex mutex_;
};

// ---- serving it -----------------------------------------------------------------------------------

class PtyServoTwin {
 public:
  // Opens a pseudo-terminal and serves `twin` on it until destroyed. If `link` is given, a symlink with
  // that name points at the device (a stable path for scripts); it is removed on destruction.
  explicit PtyServoTwin(std::shared_ptr<ServoBusTwin> twin, const std::string& link = "");
  ~PtyServoTwin();
  PtyServoTwin(const PtyServoTwin&) = delete;
  PtyServoTwin& operator=(const PtyServoTwin&) = delete;

  const std::string& device_path() const { return link_.empty() ? slave_path_ : link_; }
  const std::string& pty_path() const { return slave_path_; }
  ServoBusTwin& twin() { return *twin_; }

 private:
  void run();

  std::shared_ptr<ServoBusTwin> twin_;
  int master_ = -1, slave_ = -1;
  std::string slave_path_, link_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class LoopbackTransport : public Transport {
 public:
  explicit LoopbackTransport(std::shared_ptr<ServoBusTwin> twin, std::string name = "loopback");
  const std::string& name() const override { return name_; }
  void write(const uint8_t* data, size_t size) override;
  size_t read(uint8_t* data, size_t capacity, double timeout_s) override;
  void flush_input() override;
  void set_baud_rate(int baud) override { baud_ = baud; }
  int baud_rate() const override { return baud_; }

 private:
  std::shared_ptr<ServoBusTwin> twin_;
  std::string name_;
  int baud_ = 1000000;
  std::deque<ServoBusTwin::Outgoing> pending_;
};

}  // namespace vlascope
