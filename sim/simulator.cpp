#include "sim/simulator.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "sim/random.h"

namespace vlascope {

namespace {

std::array<float, 3> hsv_to_rgb(double h, double s, double v) {
  double i = std::floor(h * 6), f = h * 6 - i, p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
  double r, g, b;
  switch (static_cast<int>(i) % 6) {
    case 0:
      r = v, g = t, b = p;
      break;
    case 1:
      r = q, g = v, b = p;
      break;
    case 2:
      r = p, g = v, b = t;
      break;
    case 3:
      r = p, g = q, b = v;
      break;
    case 4:
      r = t, g = p, b = v;
      break;
    default:
      r = v, g = p, b = q;
      break;
  }
  return {static_cast<float>(r), static_cast<float>(g), static_cast<float>(b)};
}

}  // namespace

Simulator::Simulator(SimOptions options) : options_(std::move(options)) {
  if (options_.scene.empty()) options_.scene = scene_path("pick_cube.xml");
  require(options_.control_hz > 0, "control rate must be positive, got " + std::to_string(options_.control_hz));
  require(options_.image_width > 0 && options_.image_height > 0, "image size must be positive");
  model_ = load_model(options_.scene);
  mjModel* m = model_.get();
  try {
    const double period = 1.0 / options_.control_hz;
    substeps_ = options_.substeps > 0 ? options_.substeps
                                      : std::max(1, static_cast<int>(std::lround(period / m->opt.timestep)));
    m->opt.timestep = period / substeps_;
    data_ = std::shared_ptr<mjData>(mj_makeData(m), mj_deleteData);
    kinematics_ = std::make_unique<ArmKinematics>(model_);

    auto joints = arm_joint_ids(m);
    for (int j = 0; j < kNumJoints; ++j) {
      qpos_adr_[j] = m->jnt_qposadr[joints[j]];
      dof_adr_[j] = m->jnt_dofadr[joints[j]];
      actuator_[j] = require_id(m, mjOBJ_ACTUATOR, kJointNames[j]);
      require(m->actuator_trntype[actuator_[j]] == mjTRN_JOINT && m->actuator_trnid[2 * actuator_[j]] == joints[j],
              std::string("actuator '") + kJointNames[j] + "' must drive the joint of the same name");
    }
    ee_site_ = require_id(m, mjOBJ_SITE, "ee");
    cube_body_ = require_id(m, mjOBJ_BODY, "cube");
    cube_geom_ = require_id(m, mjOBJ_GEOM, "cube");
    table_body_ = require_id(m, mjOBJ_BODY, "table");
    fixed_jaw_body_ = require_id(m, mjOBJ_BODY, "Fixed_Jaw");
    moving_jaw_body_ = require_id(m, mjOBJ_BODY, "Moving_Jaw");
    const int base_body = require_id(m, mjOBJ_BODY, "Base");
    const int cube_joint = m->body_jntadr[cube_body_];
    require(cube_joint >= 0 && m->jnt_type[cube_joint] == mjJNT_FREE, "body 'cube' needs a free joint");
    cube_qpos_ = m->jnt_qposadr[cube_joint];
    cube_dof_ = m->jnt_dofadr[cube_joint];
    scene_camera_ = mj_name2id(m, mjOBJ_CAMERA, "scene");
    for (const std::string& name : options_.cameras) {
      require(std::count(options_.cameras.begin(), options_.cameras.end(), name) == 1,
              "camera '" + name + "' is listed twice");
      observe_cameras_.push_back(require_id(m, mjOBJ_CAMERA, name));
    }

    // Home: the keyframe "home" if the scene has one, else q = 0 (clamped into the limits).
    const int home_key = mj_name2id(m, mjOBJ_KEY, "home");
    for (int j = 0; j < kNumJoints; ++j) {
      home_[j] = home_key >= 0 ? m->key_qpos[home_key * m->nq + qpos_adr_[j]] : 0.0;
      home_[j] = std::clamp(home_[j], m->jnt_range[2 * joints[j]], m->jnt_range[2 * joints[j] + 1]);
    }

    geom_class_.assign(m->ngeom, kSegBackground);
    for (int g = 0; g < m->ngeom; ++g) {
      const int body = m->geom_bodyid[g];
      if (body_in_subtree(m, body, fixed_jaw_body_))
        geom_class_[g] = kSegGripper;
      else if (body_in_subtree(m, body, base_body))
        geom_class_[g] = kSegArm;
      else if (body_in_subtree(m, body, cube_body_))
        geom_class_[g] = kSegCube;
      else if (body_in_subtree(m, body, table_body_))
        geom_class_[g] = kSegTable;
    }

    cam_pos0_.assign(m->cam_pos, m->cam_pos + 3 * m->ncam);
    cam_quat0_.assign(m->cam_quat, m->cam_quat + 4 * m->ncam);
    light_pos0_.assign(m->light_pos, m->light_pos + 3 * m->nlight);
    light_diffuse0_.assign(m->light_diffuse, m->light_diffuse + 3 * m->nlight);
    light_specular0_.assign(m->light_specular, m->light_specular + 3 * m->nlight);
    // The colour drawn is the material's when the cube has one (keeping its specularity), else the geom's.
    const int material = m->geom_matid[cube_geom_];
    cube_rgba_ = material >= 0 ? m->mat_rgba + 4 * material : m->geom_rgba + 4 * cube_geom_;
    for (int i = 0; i < 4; ++i) cube_rgba0_[i] = cube_rgba_[i];
  } catch (const Error& e) {
    throw Error(options_.scene + ": " + e.what());
  }
  reset(0);
}

Simulator::~Simulator() = default;

void Simulator::randomize(uint64_t seed) {
  mjModel* m = model_.get();
  mjData* d = data_.get();
  const Randomization& r = options_.randomization;

  // The arm: home plus a little noise, targets at the same place.
  SeededRandom start(seed, kStreamStartPose);
  for (int j = 0; j < kNumJoints; ++j) {
    double noise = j < kGripper && r.start_pose_noise > 0 ? start.uniform(-r.start_pose_noise, r.start_pose_noise) : 0;
    const JointLimits lim = kinematics_->limits();
    d->qpos[qpos_adr_[j]] = std::clamp(home_[j] + noise, lim.lower[j], lim.upper[j]);
    d->ctrl[actuator_[j]] = d->qpos[qpos_adr_[j]];
  }

  // The cube: on an annulus sector around the pan axis.
  if (r.cube_pose) {
    SeededRandom rng(seed, kStreamCubePose);
    const double radius = rng.uniform(r.cube_min_radius, r.cube_max_radius);
    const double azimuth = rng.uniform(-r.cube_max_azimuth, r.cube_max_azimuth);
    const double yaw = rng.uniform(-r.cube_max_yaw, r.cube_max_yaw);
    const double* pan_axis = d->xanchor + 3 * m->actuator_trnid[2 * actuator_[kShoulderPan]];
    double* q = d->qpos + cube_qpos_;
    q[0] = pan_axis[0] + radius * std::sin(azimuth);
    q[1] = pan_axis[1] - radius * std::cos(azimuth);
    q[2] = m->geom_size[3 * cube_geom_ + 2];  // half height: resting on the table top (z = 0)
    q[3] = std::cos(yaw / 2), q[4] = 0, q[5] = 0, q[6] = std::sin(yaw / 2);
  }

  if (r.cube_colour) {
    SeededRandom rng(seed, kStreamCubeColour);
    auto rgb = hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.55, 0.9), rng.uniform(0.55, 0.9));
    for (int i = 0; i < 3; ++i) cube_rgba_[i] = rgb[i];
  } else {
    for (int i = 0; i < 4; ++i) cube_rgba_[i] = cube_rgba0_[i];
  }

  SeededRandom lights(seed, kStreamLights);
  for (int l = 0; l < m->nlight; ++l) {
    double gain = r.lighting ? 1 + lights.uniform(-r.light_intensity_jitter, r.light_intensity_jitter) : 1;
    for (int i = 0; i < 3; ++i) {
      double shift = r.lighting ? lights.uniform(-r.light_position_jitter, r.light_position_jitter) : 0;
      m->light_pos[3 * l + i] = light_pos0_[3 * l + i] + shift;
      m->light_diffuse[3 * l + i] = static_cast<float>(light_diffuse0_[3 * l + i] * gain);
      m->light_specular[3 * l + i] = static_cast<float>(light_specular0_[3 * l + i] * gain);
    }
  }

  if (scene_camera_ >= 0) {
    SeededRandom rng(seed, kStreamCamera);
    const int c = scene_camera_;
    double rot[3] = {}, dq[4], q[4];
    for (int i = 0; i < 3; ++i) {
      m->cam_pos[3 * c + i] =
          cam_pos0_[3 * c + i] + (r.camera ? rng.uniform(-r.camera_position_jitter, r.camera_position_jitter) : 0);
      rot[i] = r.camera ? rng.uniform(-r.camera_angle_jitter, r.camera_angle_jitter) : 0;
    }
    mju_copy4(q, cam_quat0_.data() + 4 * c);
    double angle = mju_norm3(rot);
    if (angle > 0) {
      mju_scl3(rot, rot, 1 / angle);  // mju_axisAngle2Quat wants a unit axis
      mju_axisAngle2Quat(dq, rot, angle);
      mju_mulQuat(m->cam_quat + 4 * c, q, dq);
    } else {
      mju_copy4(m->cam_quat + 4 * c, q);
    }
  }
}

void Simulator::reset(uint64_t seed) {
  mjModel* m = model_.get();
  mjData* d = data_.get();
  seed_ = seed;
  const int home_key = mj_name2id(m, mjOBJ_KEY, "home");
  if (home_key >= 0)
    mj_resetDataKeyframe(m, d, home_key);
  else
    mj_resetData(m, d);
  mj_kinematics(m, d);  // randomize() places the cube relative to the pan axis
  randomize(seed);
  mj_forward(m, d);
  // Let contacts and the arm's gravity sag settle (0.2 s), then start the clock.
  const int settle = static_cast<int>(std::lround(0.2 / m->opt.timestep));
  for (int i = 0; i < settle; ++i) mj_step(m, d);
  d->time = 0;
  mj_forward(m, d);
  cube_rest_z_ = d->xpos[3 * cube_body_ + 2];
  held_time_ = 0;
}

JointVector Simulator::joint_positions() const {
  JointVector q;
  for (int j = 0; j < kNumJoints; ++j) q[j] = data_->qpos[qpos_adr_[j]];
  return q;
}

JointVector Simulator::joint_targets() const {
  JointVector q;
  for (int j = 0; j < kNumJoints; ++j) q[j] = data_->ctrl[actuator_[j]];
  return q;
}

Pose Simulator::end_effector() const {
  Pose pose;
  for (int i = 0; i < 3; ++i) pose.position[i] = data_->site_xpos[3 * ee_site_ + i];
  pose.quaternion = quat_from_mat(data_->site_xmat + 9 * ee_site_);
  return pose;
}

Pose Simulator::cube_pose() const {
  Pose pose;
  for (int i = 0; i < 3; ++i) pose.position[i] = data_->xpos[3 * cube_body_ + i];
  for (int i = 0; i < 4; ++i) pose.quaternion[i] = data_->xquat[4 * cube_body_ + i];
  return pose;
}

std::array<float, 3> Simulator::cube_colour() const { return {cube_rgba_[0], cube_rgba_[1], cube_rgba_[2]}; }

bool Simulator::cube_grasped() const {
  const mjModel* m = model_.get();
  const mjData* d = data_.get();
  bool fixed = false, moving = false, table = false;
  for (int i = 0; i < d->ncon; ++i) {
    const mjContact& c = d->contact[i];
    int other = c.geom1 == cube_geom_ ? c.geom2 : c.geom2 == cube_geom_ ? c.geom1 : -1;
    if (other < 0) continue;
    const int body = m->geom_bodyid[other];
    fixed |= body == fixed_jaw_body_;
    moving |= body == moving_jaw_body_;
    table |= body == table_body_;
  }
  return fixed && moving && !table;
}

void Simulator::set_joint_positions(const JointVector& q) {
  mjModel* m = model_.get();
  mjData* d = data_.get();
  const JointLimits lim = kinematics_->limits();
  for (int j = 0; j < kNumJoints; ++j) {
    d->qpos[qpos_adr_[j]] = std::clamp(q[j], lim.lower[j], lim.upper[j]);
    d->qvel[dof_adr_[j]] = 0;
    d->ctrl[actuator_[j]] = d->qpos[qpos_adr_[j]];
  }
  mj_forward(m, d);
}

void Simulator::set_cube_pose(const Pose& pose) {
  double* q = data_->qpos + cube_qpos_;
  for (int i = 0; i < 3; ++i) q[i] = pose.position[i];
  for (int i = 0; i < 4; ++i) q[3 + i] = pose.quaternion[i];
  for (int i = 0; i < 6; ++i) data_->qvel[cube_dof_ + i] = 0;
  mj_forward(model_.get(), data_.get());
}

Observation Simulator::observe(CameraFrames frames) {
  Observation obs;
  obs.timestamp = data_->time;
  for (int j = 0; j < kNumJoints; ++j) {
    obs.joint_positions[j] = data_->qpos[qpos_adr_[j]];
    obs.joint_velocities[j] = data_->qvel[dof_adr_[j]];
  }
  obs.end_effector = end_effector();
  if (frames == CameraFrames::kSkip) return obs;
  for (size_t c = 0; c < options_.cameras.size(); ++c) {
    ++frames_rendered_;
    Image rgb;
    renderer(options_.quality)
        .render(data_.get(), observe_cameras_[c], options_.image_width, options_.image_height, &rgb, nullptr);
    obs.images.emplace(options_.cameras[c], std::move(rgb));
  }
  return obs;
}

JointVector Simulator::act(const JointVector& targets) {
  const mjModel* m = model_.get();
  mjData* d = data_.get();
  JointVector sent;
  for (int j = 0; j < kNumJoints; ++j) {
    const int a = actuator_[j];
    require(std::isfinite(targets[j]), std::string("act: target for ") + kJointNames[j] + " is not finite");
    sent[j] = d->ctrl[a] = std::clamp(targets[j], m->actuator_ctrlrange[2 * a], m->actuator_ctrlrange[2 * a + 1]);
  }
  for (int i = 0; i < substeps_; ++i) mj_step(m, d);
  // mj_step leaves positions one substep behind qpos; bring kinematics (ee, cameras) up to date for observe().
  mj_kinematics(m, d);
  mj_comPos(m, d);
  mj_camlight(m, d);
  update_task_progress();
  return sent;
}

void Simulator::update_task_progress() {
  const bool lifted = data_->xpos[3 * cube_body_ + 2] - cube_rest_z_ >= options_.success.min_lift;
  held_time_ = lifted && cube_grasped() ? held_time_ + 1.0 / options_.control_hz : 0;
}

std::optional<TaskState> Simulator::task_state() {
  TaskState state;
  state.object = cube_pose();
  state.object_grasped = cube_grasped();
  state.success = held_time_ >= options_.success.min_hold - 1e-9;
  return state;
}

Renderer& Simulator::renderer(RenderQuality quality) {
  auto& slot = quality == RenderQuality::kFast ? fast_renderer_ : nice_renderer_;
  if (!slot) slot = std::make_unique<Renderer>(model_.get(), quality, options_.image_width, options_.image_height);
  return *slot;
}

int Simulator::camera_id(const std::string& camera) const {
  int id = mj_name2id(model_.get(), mjOBJ_CAMERA, camera.c_str());
  if (id < 0) {
    std::string known;
    for (const std::string& c : scene_cameras()) known += (known.empty() ? "" : ", ") + c;
    throw Error("unknown camera '" + camera + "' in " + options_.scene + " (cameras: " + known + ")");
  }
  return id;
}

std::vector<std::string> Simulator::scene_cameras() const {
  std::vector<std::string> names;
  for (int c = 0; c < model_->ncam; ++c) names.push_back(mj_id2name(model_.get(), mjOBJ_CAMERA, c));
  return names;
}

RenderOutput Simulator::render(const std::string& camera, int width, int height, const RenderRequest& request) {
  const int id = camera_id(camera);
  const RenderQuality quality = request.quality.value_or(options_.quality);
  RenderOutput out;
  // Depth and segmentation come from the fast renderer (no multisampling blends ids or depths).
  const bool depth_with_rgb = request.rgb && request.depth && quality == RenderQuality::kFast;
  if (request.rgb)
    renderer(quality).render(data_.get(), id, width, height, &out.rgb, depth_with_rgb ? &out.depth : nullptr);
  if (request.depth && !depth_with_rgb)
    renderer(RenderQuality::kFast).render(data_.get(), id, width, height, nullptr, &out.depth);
  if (request.segmentation) {
    std::vector<int32_t> ids;
    renderer(RenderQuality::kFast).render_geom_ids(data_.get(), id, width, height, &ids);
    out.segmentation = Image(width, height, 1);
    for (size_t i = 0; i < ids.size(); ++i)
      out.segmentation.pixels[i] = ids[i] >= 0 ? geom_class_[ids[i]] : uint8_t{kSegBackground};
  }
  return out;
}

}  // namespace vlascope
