#include "apps/sim_episodes.h"

#include <cmath>
#include <cstdlib>

#include "common/error.h"
#include "hardware/units.h"

namespace vlascope {

static_assert(static_cast<int>(ExpertPhase::kReach) == static_cast<int>(Phase::kReach) &&
                  static_cast<int>(ExpertPhase::kGrasp) == static_cast<int>(Phase::kGrasp) &&
                  static_cast<int>(ExpertPhase::kLift) == static_cast<int>(Phase::kLift) &&
                  static_cast<int>(ExpertPhase::kHold) == static_cast<int>(Phase::kHold),
              "sim/expert.h and dataset/dataset.h must number the phases alike");

Phase to_phase(ExpertPhase phase) { return static_cast<Phase>(static_cast<int8_t>(phase)); }

Frame make_frame(Simulator& sim, Observation&& observation, const JointVector& action, Phase phase,
                 bool with_segmentation) {
  Frame frame;
  frame.timestamp = observation.timestamp;
  const JointVector state = to_lerobot(observation.joint_positions);
  const JointVector command = to_lerobot(action);
  for (int j = 0; j < kNumJoints; ++j) {
    frame.state[j] = static_cast<float>(state[j]);
    frame.action[j] = static_cast<float>(command[j]);
  }
  for (int i = 0; i < 3; ++i) frame.ee_position[i] = static_cast<float>(observation.end_effector.position[i]);
  for (int i = 0; i < 4; ++i) frame.ee_quaternion[i] = static_cast<float>(observation.end_effector.quaternion[i]);
  const Pose cube = sim.cube_pose();
  for (int i = 0; i < 3; ++i) frame.object_position[i] = static_cast<float>(cube.position[i]);
  frame.phase = phase;
  if (with_segmentation) {
    RenderRequest request;
    request.rgb = false;
    request.segmentation = true;
    for (const auto& [camera, image] : observation.images)
      frame.segmentation[camera] = sim.render(camera, image.width, image.height, request).segmentation;
  }
  frame.images = std::move(observation.images);
  return frame;
}

void store_sim_settings(const Simulator& sim, std::map<std::string, double>& s) {
  const SimOptions& o = sim.options();
  const Randomization& r = o.randomization;
  s["sim.control_hz"] = o.control_hz;
  s["sim.substeps"] = sim.substeps();
  s["sim.timestep"] = sim.timestep();
  s["sim.randomize_cube_pose"] = r.cube_pose;
  s["sim.randomize_cube_colour"] = r.cube_colour;
  s["sim.randomize_lighting"] = r.lighting;
  s["sim.randomize_camera"] = r.camera;
  s["sim.start_pose_noise"] = r.start_pose_noise;
  s["sim.cube_min_radius"] = r.cube_min_radius;
  s["sim.cube_max_radius"] = r.cube_max_radius;
  s["sim.cube_max_azimuth"] = r.cube_max_azimuth;
  s["sim.cube_max_yaw"] = r.cube_max_yaw;
  s["sim.success_min_lift"] = o.success.min_lift;
  s["sim.success_min_hold"] = o.success.min_hold;
  const std::array<float, 3> rgb = sim.cube_colour();  // policy/captions.h names the colour from these
  s["cube_r"] = rgb[0], s["cube_g"] = rgb[1], s["cube_b"] = rgb[2];
}

SimOptions sim_options_from(const EpisodeInfo& info, SimOptions o) {
  auto get = [&](const char* key, double fallback) {
    auto it = info.scalars.find(key);
    return it == info.scalars.end() ? fallback : it->second;
  };
  Randomization& r = o.randomization;
  o.control_hz = get("sim.control_hz", info.fps);
  o.substeps = static_cast<int>(get("sim.substeps", 0));
  r.cube_pose = get("sim.randomize_cube_pose", r.cube_pose) != 0;
  r.cube_colour = get("sim.randomize_cube_colour", r.cube_colour) != 0;
  r.lighting = get("sim.randomize_lighting", r.lighting) != 0;
  r.camera = get("sim.randomize_camera", r.camera) != 0;
  r.start_pose_noise = get("sim.start_pose_noise", r.start_pose_noise);
  r.cube_min_radius = get("sim.cube_min_radius", r.cube_min_radius);
  r.cube_max_radius = get("sim.cube_max_radius", r.cube_max_radius);
  r.cube_max_azimuth = get("sim.cube_max_azimuth", r.cube_max_azimuth);
  r.cube_max_yaw = get("sim.cube_max_yaw", M_PI / 4);  // datasets written before the option drew any yaw
  o.success.min_lift = get("sim.success_min_lift", o.success.min_lift);
  o.success.min_hold = get("sim.success_min_hold", o.success.min_hold);
  return o;
}

RecordedEpisode record_expert_episode(Simulator& sim, const ExpertParams& params, uint64_t seed,
                                      bool with_segmentation) {
  RecordedEpisode episode;
  episode.result = run_expert_episode(
      sim, params, seed, [&](int, const Observation& observation, const JointVector& action, ExpertPhase phase) {
        episode.frames.push_back(make_frame(sim, Observation(observation), action, to_phase(phase), with_segmentation));
      });
  EpisodeInfo& info = episode.info;
  info.instruction = kPickInstruction;
  info.variant = params.variant;
  info.robot = sim.name();
  info.source = "expert";
  info.seed = seed;
  info.success = episode.result.success;
  info.fps = sim.control_hz();
  info.cameras = sim.camera_names();
  store_sim_settings(sim, info.scalars);
  info.scalars["expert.lift_height"] = episode.result.lift_height;
  info.scalars["expert.speed"] = params.speed;
  info.scalars["expert.noise"] = params.noise;
  info.scalars["expert.execution_noise"] = params.execution_noise;
  info.scalars["expert.max_cube_lift"] = episode.result.max_cube_lift;
  return episode;
}

void parse_image_size(const std::string& text, const std::string& option, int* width, int* height) {
  char* end = nullptr;
  long w = std::strtol(text.c_str(), &end, 10), h = w;
  if (end && *end == 'x') h = std::strtol(end + 1, &end, 10);
  if (!end || *end != '\0' || w <= 0 || h <= 0 || w > 4096 || h > 4096)
    throw Error("--" + option + ": expected N or WxH (1..4096), got '" + text + "'");
  *width = static_cast<int>(w);
  *height = static_cast<int>(h);
}

}  // namespace vlascope
