// The real SO-100 follower arm as a vlascope::Robot. Same interface as the simulator: observe() reads the
// joints (one SYNC READ), the cameras and the end-effector pose; act() writes joint targets (one SYNC
// WRITE) and sleeps until the next control tick.
//
// Units: the Robot interface speaks simulator radians. Each tick converts
//   servo ticks ──(LeRobot calibration, calibration.h)──▶ LeRobot degrees / 0–100 ──(UnitMapping, units.h)──▶ radians
// and back, bit-compatible with LeRobot on the first step, with a per-joint sign/offset on the second.
//
// Safety, in the order a target passes through it (act):
//   1. non-finite targets are an error (the arm is stopped);
//   2. clamped to the joint limits (radians);
//   3. at most max_step_rad away from the present position per tick (LeRobot's max_relative_target);
//   4. checked against the joint limits again and clamped to the calibrated range (ticks): no goal is ever
//      outside either. An arm more than one step outside its joint limits has no goal that is both inside
//      them and within a step, so it is stopped with an error instead. The goal := present written at
//      torque on and by the watchdog's hold obeys the same rules;
//   5. a safety thread stops the arm when readings stop arriving (watchdog: hold position or torque off),
//      and on Ctrl-C (torque off; stop_signal.h);
//   6. every error thrown out of this class leaves the arm with torque off; so does the destructor.
//
// The constructor connects: ping IDs 1–6, model 777 and equal firmware, calibration (file vs. EEPROM),
// LeRobot's configuration (Return_Delay_Time 0, accelerations 254, Phase bit 4 cleared, position mode,
// P/I/D 16/0/32, gripper torque/current limits), goal := present, torque on.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hardware/calibration.h"
#include "hardware/camera.h"
#include "hardware/robot.h"
#include "hardware/so100_arm.h"
#include "hardware/units.h"

namespace vlascope {

// The menagerie SO-100 joint ranges (2025 update, so100.md §1.2), radians.
JointLimits so100_joint_limits();
// The menagerie `home` keyframe: upper arm vertical, forearm horizontal, gripper down.
JointVector so100_home_pose();

// A unit-mapping override for one real arm (units.h), as JSON:
//   {"sign": [-1, 1, 1, 1, 1], "offset_rad": [0, -1.5708, 1.5708, 0, 0],
//    "gripper_closed_rad": -0.174, "gripper_open_rad": 1.75}
// Every key is optional (missing keys keep the defaults); arrays have 5 (arm joints) or 6 entries.
UnitMapping read_unit_mapping(const std::string& path);
void write_unit_mapping(const std::string& path, const UnitMapping& mapping);

enum class WatchdogAction { hold, torque_off };
WatchdogAction parse_watchdog_action(const std::string& text);  // "hold", "torque-off"

struct So100Config {
  So100BusConfig bus;

  // nullopt: use the calibration stored in the servos' EEPROM (drive_mode 0). With a file: if the servos
  // disagree, write the file's values to them (LeRobot's "restore"), or refuse when this is false.
  std::optional<ArmCalibration> calibration;
  bool write_calibration_on_mismatch = true;
  NormMode arm_norm_mode = NormMode::degrees;  // LeRobot ≥ v0.4.4; range_m100_100 for older datasets
  UnitMapping units;                           // LeRobot ↔ simulator radians, per joint

  JointLimits joint_limits = so100_joint_limits();
  double control_hz = 30;
  JointVector max_step_rad{0.1, 0.1, 0.1, 0.15, 0.15, 0.2};  // per tick (3 rad/s at 30 Hz); ≤ 0: no limit
  double watchdog_timeout_s = 1.0;                           // ≤ 0: no watchdog
  WatchdogAction watchdog_action = WatchdogAction::hold;
  bool torque_off_on_close = true;  // LeRobot's disable_torque_on_disconnect
  bool handle_ctrl_c = true;        // install the SIGINT/SIGTERM handler

  JointVector home_rad = so100_home_pose();
  double reset_speed = 0.6;  // rad/s of the slowest-finishing joint when driving home

  // configure(): LeRobot's SO-100 follower values.
  bool configure = true;
  int p_coefficient = 16, i_coefficient = 0, d_coefficient = 32;
  int gripper_max_torque = 500, gripper_protection_current = 250, gripper_overload_torque = 25;

  std::vector<CameraConfig> cameras;
  std::shared_ptr<KinematicModel> kinematics;  // end-effector pose; without it Observation::end_effector is identity
};

struct SafetyCounters {
  uint64_t limit_clamps = 0;  // joint targets clamped to the joint limits or the calibrated range
  uint64_t step_clamps = 0;   // joint targets shortened by the per-tick step limit
  uint64_t watchdog_trips = 0;
  uint64_t safe_stops = 0;  // torque-off stops (errors, watchdog, Ctrl-C, stop())
  uint64_t overruns = 0;    // act() called after its tick had already passed
};

class So100Follower : public Robot {
 public:
  explicit So100Follower(So100Config config);
  // With a ready transport (e.g. LoopbackTransport to a twin); config.bus.port is only used in messages.
  So100Follower(std::unique_ptr<Transport> transport, So100Config config);
  ~So100Follower() override;
  So100Follower(const So100Follower&) = delete;
  So100Follower& operator=(const So100Follower&) = delete;

  // ---- Robot ----
  std::string name() const override { return "so100"; }
  std::vector<std::string> camera_names() const override;
  double control_hz() const override { return config_.control_hz; }
  JointLimits joint_limits() const override { return config_.joint_limits; }
  void reset(uint64_t seed) override;  // torque on if needed, drive home at reset_speed, restart the clock
  using Robot::observe;
  Observation observe(CameraFrames frames) override;
  JointVector act(const JointVector& targets) override;
  void stop() override;  // torque off (idempotent)

  // ---- beyond Robot ----
  JointVector read_joint_positions();                           // one SYNC READ → radians; no cameras, no waiting
  JointVector write_joint_targets(const JointVector& targets);  // the safety chain + one SYNC WRITE; no
                                                                // waiting. Returns the targets as sent (radians).
  JointVector read_lerobot();                                   // LeRobot units
  void act_lerobot(const JointVector& values);                  // act() with LeRobot units (teleoperation)
  void enable_torque();
  void disable_torque();
  bool torque_enabled() const { return torque_on_; }
  // Why the arm was last stopped ("" while running): an error, "watchdog", "Ctrl-C", "stop()".
  std::string stop_reason() const;
  SafetyCounters safety_counters() const;
  const ArmCalibration& calibration() const { return calibration_; }
  const So100Config& config() const { return config_; }
  const std::string& port() const { return port_; }
  BusStats bus_stats();
  // Conversions with this arm's calibration and unit mapping.
  JointVector ticks_to_radians(const TickVector& ticks) const;
  TickVector radians_to_ticks(const JointVector& radians) const;

 private:
  void connect();
  void configure_servos();
  void start_safety_thread();
  void safety_loop();
  // Turns torque off, never throws; records why. Caller must not hold bus_mutex_.
  void safe_stop(const std::string& reason) noexcept;
  void safe_stop_locked(const std::string& reason) noexcept;
  void ensure_running(const char* what);
  // SYNC READ, error bits checked, watchdog fed; needs bus_mutex_. `ticks`: also the raw positions.
  JointVector read_locked(TickVector* ticks = nullptr);
  JointVector write_locked(const JointVector& targets);
  // The joint limits narrowed to the calibrated range, in radians: where a goal may be.
  std::pair<double, double> allowed_range(int joint) const;
  // The last word on every goal (radians): inside allowed_range and within one step of `present`;
  // throws when the arm is too far outside that range for both (see the definition for why).
  double goal_inside_limits_locked(int joint, double goal, double present);
  // Goal := present, the goal that keeps the arm still (torque on, watchdog hold), made as safe as any
  // other goal: inside the joint limits and the calibrated range.
  TickVector hold_goal_locked(const TickVector& present);
  template <class F>
  auto guarded(const char* what, F&& f) -> decltype(f());
  void sleep_until_tick();

  So100Config config_;
  std::unique_ptr<So100Arm> arm_;
  std::string port_;
  ArmCalibration calibration_{};
  std::vector<std::unique_ptr<Camera>> cameras_;

  mutable std::mutex bus_mutex_;  // the bus and the state below; shared with the safety thread
  std::atomic<bool> torque_on_{false};
  std::atomic<bool> running_{false};     // false after a torque-off stop until reset()/enable_torque()
  std::atomic<bool> held_{false};        // the watchdog holds the arm (hold mode)
  std::atomic<double> last_reading_{0};  // steady clock, seconds
  std::string stop_reason_;
  JointVector last_positions_{};  // radians, at last_reading_
  bool have_positions_ = false;
  JointVector previous_positions_{};
  double previous_time_ = -1;
  SafetyCounters counters_;

  double episode_start_ = 0;
  std::chrono::steady_clock::time_point next_tick_{};
  bool tick_started_ = false;

  std::atomic<bool> quit_{false};
  std::thread safety_thread_;
};

}  // namespace vlascope
