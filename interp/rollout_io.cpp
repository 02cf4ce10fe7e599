#include "interp/rollout_io.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/file_io.h"
#include "common/json_io.h"

namespace vlascope {

namespace {

using json = nlohmann::json;

template <size_t N>
json array_of(const std::array<double, N>& a) {
  return json(std::vector<double>(a.begin(), a.end()));
}
template <size_t N>
json array_of(const std::array<float, N>& a) {
  return json(std::vector<float>(a.begin(), a.end()));
}

json pose_json(const Pose& p) { return {{"position", array_of(p.position)}, {"quaternion", array_of(p.quaternion)}}; }

// Reading: every field is required, and a wrong type or length names the file, the step and the field.
struct Reader {
  const std::string& source;
  std::string where;
  const json& field(const json& j, const char* key) const {
    if (!j.is_object() || !j.contains(key)) throw Error(source + ": " + where + "missing field '" + key + "'");
    return j.at(key);
  }
  template <class T>
  T value(const json& j, const char* key) const {
    try {
      return field(j, key).get<T>();
    } catch (const json::exception& e) {
      throw Error(source + ": " + where + "field '" + key + "': " + e.what());
    }
  }
  template <class T, size_t N>
  std::array<T, N> fixed(const json& j, const char* key) const {
    const std::vector<T> v = value<std::vector<T>>(j, key);
    if (v.size() != N)
      throw Error(source + ": " + where + "field '" + key + "' has " + std::to_string(v.size()) + " values, expected " +
                  std::to_string(N));
    std::array<T, N> a{};
    std::copy(v.begin(), v.end(), a.begin());
    return a;
  }
  Pose pose(const json& j, const char* key) const {
    const json& p = field(j, key);
    Pose out;
    out.position = fixed<double, 3>(p, "position");
    out.quaternion = fixed<double, 4>(p, "quaternion");
    return out;
  }
};

}  // namespace

json rollout_to_json(const RolloutResult& r) {
  json steps = json::array();
  for (const RolloutStep& s : r.steps) {
    json j = {{"time", s.time},
              {"joints", array_of(s.joints)},
              {"target", array_of(s.target)},
              {"sent", array_of(s.sent)},
              {"state", array_of(s.state)},
              {"action", array_of(s.action)},
              {"end_effector", pose_json(s.end_effector)},
              {"model_ran", s.model_ran},
              {"model_seconds", s.model_seconds}};
    if (s.steer_alpha != 0) j["steer_alpha"] = s.steer_alpha;  // closed-loop steering only
    if (s.task)
      j["task"] = {{"object", pose_json(s.task->object)},
                   {"object_grasped", s.task->object_grasped},
                   {"success", s.task->success}};
    steps.push_back(std::move(j));
  }
  return {{"seed", r.seed},
          {"success", r.success},
          {"success_known", r.success_known},
          {"success_time", r.success_time},
          {"cube_start_z", r.cube_start_z},
          {"max_cube_lift", r.max_cube_lift},
          {"seconds", r.seconds},
          {"wall_seconds", r.wall_seconds},
          {"model_calls", r.model_calls},
          {"model_seconds", r.model_seconds},
          {"steps", std::move(steps)}};
}

RolloutResult rollout_from_json(const json& j, const std::string& source) {
  Reader in{source, ""};
  RolloutResult r;
  r.seed = in.value<uint64_t>(j, "seed");
  r.success = in.value<bool>(j, "success");
  r.success_known = in.value<bool>(j, "success_known");
  r.success_time = in.value<double>(j, "success_time");
  r.cube_start_z = in.value<double>(j, "cube_start_z");
  r.max_cube_lift = in.value<double>(j, "max_cube_lift");
  r.seconds = in.value<double>(j, "seconds");
  r.wall_seconds = in.value<double>(j, "wall_seconds");
  r.model_calls = in.value<int>(j, "model_calls");
  r.model_seconds = in.value<double>(j, "model_seconds");
  const json& steps = in.field(j, "steps");
  if (!steps.is_array()) throw Error(source + ": field 'steps' is not an array");
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    Reader st{source, "step " + std::to_string(i) + ": "};
    RolloutStep step;
    step.time = st.value<double>(s, "time");
    step.joints = st.fixed<double, kNumJoints>(s, "joints");
    step.target = st.fixed<double, kNumJoints>(s, "target");
    // Files written before Robot::act reported what it sent hold the target only.
    step.sent = s.contains("sent") ? st.fixed<double, kNumJoints>(s, "sent") : step.target;
    step.state = st.fixed<float, 6>(s, "state");
    step.action = st.fixed<float, 6>(s, "action");
    step.end_effector = st.pose(s, "end_effector");
    step.model_ran = st.value<bool>(s, "model_ran");
    step.model_seconds = st.value<double>(s, "model_seconds");
    if (s.contains("steer_alpha")) step.steer_alpha = st.value<double>(s, "steer_alpha");
    if (s.contains("task")) {
      const json& t = s.at("task");
      TaskState task;
      task.object = st.pose(t, "object");
      task.object_grasped = st.value<bool>(t, "object_grasped");
      task.success = st.value<bool>(t, "success");
      step.task = task;
    }
    r.steps.push_back(step);
  }
  return r;
}

void write_rollout_file(const std::string& path, const RolloutResult& result) {
  write_file_atomically(path, rollout_to_json(result).dump() + "\n");
}

RolloutResult read_rollout_file(const std::string& path) {
  return rollout_from_json(read_json_object(path), path);
}

}  // namespace vlascope
