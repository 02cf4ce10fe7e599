// The MuJoCo digital twin of the SO-100 pick-and-lift setup, behind the robot interface (hardware/robot.h).
//
//   SimOptions options;                    // scene + wrist cameras at 128², fast rendering, 30 Hz
//   Simulator sim(options);
//   sim.reset(seed);                       // cube pose/colour, lights, camera jitter, start pose: all from seed
//   Observation obs = sim.observe();       // joints, ee pose, one RGB frame per camera
//   sim.act(targets);                      // one control period (1/30 s) of physics
//   sim.task_state()->success;             // cube lifted and held
//
// Physics runs at the model's timestep, rounded so that a control period holds a whole number of substeps.
// Rendering is lazy: a simulator with no cameras never creates an OpenGL context (fast tests, benchmarks).
// Not thread-safe; use one Simulator per thread (each has its own model copy and GL contexts).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hardware/robot.h"
#include "sim/kinematics.h"
#include "sim/model.h"
#include "sim/renderer.h"
#include "sim/segmentation.h"

namespace vlascope {

// What reset(seed) randomises. Each draw comes from its own stream derived from the seed, so switching one option
// off leaves the others unchanged.
struct Randomization {
  bool cube_pose = true;           // position on an annulus in front of the arm and yaw
  bool cube_colour = true;         // random hue, saturated
  bool lighting = true;            // light positions and intensities
  bool camera = true;              // scene camera position/orientation jitter
  double start_pose_noise = 0.03;  // rad, uniform ± on the arm joints of the home pose (0 = exact home)

  // Cube placement: distance from the pan axis, azimuth relative to straight ahead (−Y) and yaw, uniform. The
  // defaults are the shipped models' workspace (models/README.md): wide enough that the policy must look, narrow
  // enough that a 5M-parameter model learns it from a few hundred demonstrations.
  double cube_min_radius = 0.18, cube_max_radius = 0.24;  // m
  double cube_max_azimuth = 0.35;                         // rad
  double cube_max_yaw = 0.5;                              // rad (a cube: ±π/4 covers every case)
  double camera_position_jitter = 0.01;                   // m, uniform ±
  double camera_angle_jitter = 0.02;                      // rad, uniform ±
  double light_intensity_jitter = 0.2;                    // relative, uniform ±
  double light_position_jitter = 0.15;                    // m, uniform ±
};

// When the pick task counts as done (TaskState::success).
struct SuccessCriteria {
  double min_lift = 0.04;  // m, the cube's centre above its resting height
  double min_hold = 0.5;   // s, lifted and grasped continuously
};

struct SimOptions {
  std::string scene;  // "" = scene_path("pick_cube.xml")
  double control_hz = 30;
  int substeps = 0;                                       // physics steps per control period; 0 = from the timestep
  std::vector<std::string> cameras = {"scene", "wrist"};  // rendered by observe(); empty = no images
  int image_width = 128, image_height = 128;
  RenderQuality quality = RenderQuality::kFast;
  Randomization randomization;
  SuccessCriteria success;
};

// What render() produces; fields not asked for stay empty.
struct RenderRequest {
  bool rgb = true;
  bool depth = false;
  bool segmentation = false;
  std::optional<RenderQuality> quality;  // default: the simulator's
};
struct RenderOutput {
  Image rgb;                 // width×height×3
  std::vector<float> depth;  // width*height metres, row-major, top row first
  Image segmentation;        // width×height×1 SegmentClass ids
};

class Simulator : public Robot {
 public:
  explicit Simulator(SimOptions options = {});
  ~Simulator() override;
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Robot
  std::string name() const override { return "sim"; }
  std::vector<std::string> camera_names() const override { return options_.cameras; }
  double control_hz() const override { return options_.control_hz; }
  JointLimits joint_limits() const override { return kinematics_->limits(); }
  void reset(uint64_t seed) override;
  using Robot::observe;
  Observation observe(CameraFrames frames) override;
  JointVector act(const JointVector& targets) override;
  std::optional<TaskState> task_state() override;

  // Simulator only.
  const SimOptions& options() const { return options_; }
  const mjModel* model() const { return model_.get(); }
  const mjData* data() const { return data_.get(); }
  ArmKinematics& kinematics() { return *kinematics_; }
  ModelPtr shared_model() const { return model_; }
  int substeps() const { return substeps_; }
  double timestep() const { return model_->opt.timestep; }
  double time() const { return data_->time; }
  uint64_t seed() const { return seed_; }

  JointVector joint_positions() const;
  JointVector joint_targets() const;  // the last targets sent (after clamping)
  Pose end_effector() const;          // the ee site, from the simulation state
  Pose cube_pose() const;
  std::array<float, 3> cube_colour() const;  // RGB 0–1, as drawn this episode
  double cube_resting_height() const { return cube_rest_z_; }
  bool cube_grasped() const;                       // both jaws touch the cube and it does not touch the table
  JointVector home_pose() const { return home_; }  // keyframe "home" of the scene (before start-pose noise)

  // Teleports the arm (velocities zeroed, targets = positions) and recomputes the kinematics. For tests and tools.
  void set_joint_positions(const JointVector& q);
  void set_cube_pose(const Pose& pose);

  // Renders any camera of the scene at any size. Throws Error naming an unknown camera.
  RenderOutput render(const std::string& camera, int width, int height, const RenderRequest& request = {});
  std::vector<std::string> scene_cameras() const;  // every camera in the model
  int camera_id(const std::string& camera) const;
  int camera_frames_rendered() const { return frames_rendered_; }  // by observe(), since construction
  // The class of every geom (SegmentClass), from the naming rules in sim/segmentation.h.
  const std::vector<uint8_t>& geom_classes() const { return geom_class_; }

 private:
  void randomize(uint64_t seed);
  void update_task_progress();
  Renderer& renderer(RenderQuality quality);

  SimOptions options_;
  ModelPtr model_;
  std::shared_ptr<mjData> data_;
  std::unique_ptr<ArmKinematics> kinematics_;
  std::unique_ptr<Renderer> fast_renderer_, nice_renderer_;
  int substeps_ = 1;
  uint64_t seed_ = 0;
  int frames_rendered_ = 0;

  std::array<int, kNumJoints> qpos_adr_{}, dof_adr_{}, actuator_{};
  JointVector home_{};
  int ee_site_ = -1, cube_body_ = -1, cube_geom_ = -1, cube_qpos_ = -1, cube_dof_ = -1, table_body_ = -1;
  int fixed_jaw_body_ = -1, moving_jaw_body_ = -1, scene_camera_ = -1;
  std::vector<int> observe_cameras_;
  double cube_rest_z_ = 0;
  double held_time_ = 0;
  std::vector<uint8_t> geom_class_;

  // The model's as-loaded values that reset() randomises around.
  std::vector<mjtNum> cam_pos0_, cam_quat0_, light_pos0_;
  std::vector<float> light_diffuse0_, light_specular0_;
  std::array<float, 4> cube_rgba0_{};
  float* cube_rgba_ = nullptr;  // into the model: the cube material's rgba, or the geom's
};

}  // namespace vlascope
