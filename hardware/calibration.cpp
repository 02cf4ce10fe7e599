#include "hardware/calibration.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>

#include "common/error.h"
#include "common/file_io.h"
#include "common/json_io.h"

namespace vlascope {

namespace fs = std::filesystem;

nlohmann::ordered_json calibration_to_json(const ArmCalibration& calibration) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (int i = 0; i < kNumJoints; ++i) {
    const MotorCalibration& c = calibration[i];
    nlohmann::ordered_json m;
    m["id"] = c.id;
    m["drive_mode"] = c.drive_mode;
    m["homing_offset"] = c.homing_offset;
    m["range_min"] = c.range_min;
    m["range_max"] = c.range_max;
    j[kJointNames[i]] = m;
  }
  return j;
}

ArmCalibration calibration_from_json(const nlohmann::json& json, const std::string& source) {
  require(json.is_object(), source + ": calibration must be a JSON object of motors");
  ArmCalibration out{};
  for (int i = 0; i < kNumJoints; ++i) {
    const std::string motor = kJointNames[i];
    auto it = json.find(motor);
    require(it != json.end() && it->is_object(), source + ": motor '" + motor + "' is missing");
    auto field = [&](const char* name) -> int {
      auto f = it->find(name);
      require(f != it->end(), source + ": " + motor + "." + name + " is missing");
      require(f->is_number_integer(), source + ": " + motor + "." + name + " must be an integer, got " + f->dump());
      // get<int>() would wrap 4294967297 to 1: check the range first.
      const bool in_range = f->is_number_unsigned()
                                ? f->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int>::max())
                                : f->get<int64_t>() >= std::numeric_limits<int>::min() &&
                                      f->get<int64_t>() <= std::numeric_limits<int>::max();
      require(in_range, source + ": " + motor + "." + name + " " + f->dump() + " is out of range");
      return f->get<int>();
    };
    MotorCalibration& c = out[i];
    c.id = field("id");
    c.drive_mode = field("drive_mode");
    c.homing_offset = field("homing_offset");
    c.range_min = field("range_min");
    c.range_max = field("range_max");
    const std::string where = source + ": " + motor;
    require(c.id >= 0 && c.id <= 253, where + ".id " + std::to_string(c.id) + " is not a servo ID (0…253)");
    require(c.drive_mode == 0 || c.drive_mode == 1, where + ".drive_mode must be 0 or 1");
    require(std::abs(c.homing_offset) <= 2047,
            where + ".homing_offset " + std::to_string(c.homing_offset) + " outside ±2047 (sign bit 11)");
    require(c.range_min >= 0 && c.range_max <= 4095,
            where + ": range " + std::to_string(c.range_min) + "…" + std::to_string(c.range_max) + " outside 0…4095");
    require(c.range_min < c.range_max, where + ": range_min " + std::to_string(c.range_min) +
                                           " must be below range_max " + std::to_string(c.range_max));
  }
  for (auto it = json.begin(); it != json.end(); ++it) {
    bool known = std::find_if(kJointNames.begin(), kJointNames.end(), [&](const char* n) { return it.key() == n; }) !=
                 kJointNames.end();
    require(known, source + ": unknown motor '" + it.key() + "' (expected the six SO-100 motors)");
  }
  return out;
}

ArmCalibration read_calibration(const fs::path& path) {
  const std::string source = "calibration " + path.string();
  return calibration_from_json(read_json_object(path.string(), source), source);
}

void write_calibration(const fs::path& path, const ArmCalibration& calibration) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  require(!ec, "calibration " + path.string() + ": cannot create directory: " + ec.message());
  write_file_atomically(path.string(), calibration_to_json(calibration).dump(4));
}

fs::path lerobot_calibration_root() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::string();
  };
  auto expand = [&](std::string p) -> fs::path {
    if (!p.empty() && p[0] == '~') p = env("HOME") + p.substr(1);
    return fs::path(p);
  };
  if (auto v = env("HF_LEROBOT_CALIBRATION"); !v.empty()) return expand(v);
  if (auto v = env("HF_LEROBOT_HOME"); !v.empty()) return expand(v) / "calibration";
  if (auto v = env("HF_HOME"); !v.empty()) return expand(v) / "lerobot" / "calibration";
  fs::path cache = env("XDG_CACHE_HOME").empty() ? expand("~/.cache") : expand(env("XDG_CACHE_HOME"));
  return cache / "huggingface" / "lerobot" / "calibration";
}

fs::path lerobot_calibration_path(DeviceRole role, const std::string& device_type, const std::string& id) {
  require(!id.empty() && id.find('/') == std::string::npos, "calibration id '" + id + "' must be a plain name");
  return lerobot_calibration_root() / (role == DeviceRole::robot ? "robots" : "teleoperators") / device_type /
         (id + ".json");
}

std::optional<fs::path> find_lerobot_calibration(DeviceRole role, const std::string& id) {
  const char* robots[] = {"so_follower", "so100_follower", "so101_follower"};
  const char* leaders[] = {"so_leader", "so100_leader", "so101_leader"};
  for (const char* type : role == DeviceRole::robot ? robots : leaders) {
    fs::path p = lerobot_calibration_path(role, type, id);
    if (fs::exists(p)) return p;
  }
  return std::nullopt;
}

NormMode parse_norm_mode(const std::string& text) {
  if (text == "degrees") return NormMode::degrees;
  if (text == "range_m100_100") return NormMode::range_m100_100;
  if (text == "range_0_100") return NormMode::range_0_100;
  throw Error("unknown norm mode '" + text + "' (degrees, range_m100_100, range_0_100)");
}

std::array<NormMode, kNumJoints> lerobot_norm_modes(NormMode arm_mode) {
  std::array<NormMode, kNumJoints> modes;
  modes.fill(arm_mode);
  modes[kGripper] = NormMode::range_0_100;
  return modes;
}

namespace {
void check_range(const MotorCalibration& c) {
  if (!(c.range_max != c.range_min))
    throw Error("calibration of servo " + std::to_string(c.id) + ": range_min == range_max (" +
                std::to_string(c.range_min) + "); recalibrate");
}
}  // namespace

double ticks_to_lerobot(int ticks, const MotorCalibration& c, NormMode mode) {
  check_range(c);
  const double lo = c.range_min, hi = c.range_max;
  const double bounded = std::clamp(static_cast<double>(ticks), lo, hi);
  switch (mode) {
    case NormMode::degrees:
      return (ticks - (lo + hi) / 2) * 360.0 / 4095.0;
    case NormMode::range_m100_100: {
      const double norm = (bounded - lo) / (hi - lo) * 200.0 - 100.0;
      return c.drive_mode ? -norm : norm;
    }
    case NormMode::range_0_100: {
      const double norm = (bounded - lo) / (hi - lo) * 100.0;
      return c.drive_mode ? 100.0 - norm : norm;
    }
  }
  return 0;
}

int lerobot_to_ticks(double value, const MotorCalibration& c, NormMode mode) {
  check_range(c);
  if (!(std::isfinite(value)))
    throw Error("servo " + std::to_string(c.id) + ": non-finite target " + std::to_string(value));
  const double lo = c.range_min, hi = c.range_max;
  // std::trunc matches Python's int() (toward zero); every result here is positive anyway.
  switch (mode) {
    case NormMode::degrees:  // not clamped (as LeRobot); bounded only so the cast stays defined
      return static_cast<int>(std::trunc(std::clamp(value * 4095.0 / 360.0 + (lo + hi) / 2, -1e9, 1e9)));
    case NormMode::range_m100_100: {
      double v = std::clamp(c.drive_mode ? -value : value, -100.0, 100.0);
      return static_cast<int>(std::trunc((v + 100.0) / 200.0 * (hi - lo) + lo));
    }
    case NormMode::range_0_100: {
      double v = std::clamp(c.drive_mode ? 100.0 - value : value, 0.0, 100.0);
      return static_cast<int>(std::trunc(v / 100.0 * (hi - lo) + lo));
    }
  }
  return 0;
}

}  // namespace vlascope
