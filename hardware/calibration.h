// LeRobot's motor calibration: the JSON file, where LeRobot keeps it, and the conversion between raw
// servo ticks and LeRobot units (degrees for arm joints, 0–100 for the gripper). so100.md §2.9.
//
// The file is LeRobot's, field for field, so an arm calibrated with `lerobot-calibrate` works here and a
// file written by `vlascope calibrate` works in LeRobot:
//
//   {
//       "shoulder_pan": {"id": 1, "drive_mode": 0, "homing_offset": -1768, "range_min": 625, "range_max": 3337},
//       …
//   }
//
// Unit conversion is bit-compatible with LeRobot (≥ v0.4.4 defaults): degrees = (raw − mid)·360/4095 with
// mid = (range_min + range_max)/2, not clamped; raw = int(degrees·4095/360 + mid) (truncated toward zero, as
// Python's int()). The 4095 is LeRobot's (the encoder has 4096 ticks per turn); matching it keeps vlascope
// datasets identical to LeRobot ones. The gripper is RANGE_0_100: clamped to [range_min, range_max].
#pragma once

#include <array>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "hardware/robot.h"

namespace vlascope {

struct MotorCalibration {
  int id = 0;
  int drive_mode = 0;     // LeRobot always writes 0; 1 inverts the RANGE modes (not DEGREES)
  int homing_offset = 0;  // ticks, written to the servo's Homing_Offset (present = actual − offset)
  int range_min = 0;      // ticks, written to Min_Position_Limit
  int range_max = 4095;   // ticks, written to Max_Position_Limit
  bool operator==(const MotorCalibration& o) const {
    return id == o.id && drive_mode == o.drive_mode && homing_offset == o.homing_offset && range_min == o.range_min &&
           range_max == o.range_max;
  }
  bool operator!=(const MotorCalibration& o) const { return !(*this == o); }
};

// One entry per joint, in kJointNames order.
using ArmCalibration = std::array<MotorCalibration, kNumJoints>;

// JSON with exactly LeRobot's keys (motor names → {id, drive_mode, homing_offset, range_min, range_max}).
// from_json throws Error naming `source` (the file) and the motor/field that is missing or malformed, and
// rejects range_min ≥ range_max, ranges outside 0…4095 and offsets outside ±2047.
nlohmann::ordered_json calibration_to_json(const ArmCalibration& calibration);
ArmCalibration calibration_from_json(const nlohmann::json& json, const std::string& source);
ArmCalibration read_calibration(const std::filesystem::path& path);
// Writes atomically (temporary file + rename), creating directories, 4-space indent like LeRobot.
void write_calibration(const std::filesystem::path& path, const ArmCalibration& calibration);

// LeRobot's calibration root: $HF_LEROBOT_CALIBRATION, else $HF_LEROBOT_HOME/calibration, else
// $HF_HOME/lerobot/calibration, else $XDG_CACHE_HOME/huggingface/lerobot/calibration, else
// ~/.cache/huggingface/lerobot/calibration.
std::filesystem::path lerobot_calibration_root();

enum class DeviceRole { robot, teleoperator };  // "robots/…" (follower) or "teleoperators/…" (leader)

// <root>/<robots|teleoperators>/<device_type>/<id>.json. LeRobot ≥ v0.4.3 uses device types
// "so_follower" / "so_leader"; older versions "so100_follower", "so101_follower", "so100_leader", ….
std::filesystem::path lerobot_calibration_path(DeviceRole role, const std::string& device_type, const std::string& id);
inline std::string default_device_type(DeviceRole role) {
  return role == DeviceRole::robot ? "so_follower" : "so_leader";
}
// Looks for <id>.json under the current device type, then the SO-100/SO-101 names of older LeRobot versions.
std::optional<std::filesystem::path> find_lerobot_calibration(DeviceRole role, const std::string& id);

// ---- ticks ↔ LeRobot units ----------------------------------------------------------------------

enum class NormMode {
  degrees,         // arm joints, LeRobot ≥ v0.4.4 default (use_degrees=True)
  range_m100_100,  // arm joints, LeRobot < v0.4.4
  range_0_100,     // gripper
};
NormMode parse_norm_mode(const std::string& text);  // "degrees", "range_m100_100", "range_0_100"

// Throws Error when range_min == range_max (LeRobot raises too).
double ticks_to_lerobot(int ticks, const MotorCalibration& c, NormMode mode);
int lerobot_to_ticks(double value, const MotorCalibration& c, NormMode mode);

// The norm mode of each joint: arm joints `arm_mode`, the gripper range_0_100.
std::array<NormMode, kNumJoints> lerobot_norm_modes(NormMode arm_mode = NormMode::degrees);

}  // namespace vlascope
