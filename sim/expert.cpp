#include "sim/expert.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "sim/random.h"
#include "sim/simulator.h"

namespace vlascope {

namespace {

// Minimum-jerk progress 0 → 1 (zero velocity and acceleration at both ends).
double min_jerk(double tau) {
  tau = std::clamp(tau, 0.0, 1.0);
  return tau * tau * tau * (10 - 15 * tau + 6 * tau * tau);
}

Quat quat_from_axes(const Vec3& x, const Vec3& y, const Vec3& z) {
  double mat[9] = {x[0], y[0], z[0], x[1], y[1], z[1], x[2], y[2], z[2]};
  return quat_from_mat(mat);
}

// Rotates q (world frame) by `angle` about the world axis `axis`.
Quat rotate_world(const Quat& q, const Vec3& axis, double angle) {
  double r[4];
  Quat out;
  mju_axisAngle2Quat(r, axis.data(), angle);
  mju_mulQuat(out.data(), r, q.data());
  return out;
}

// How far the gripper tilts outward (fingertips away from the base) at a given height of the grasp point above
// the cube's resting centre: a top-down gripper cannot reach 20 cm above the table, a tilted one can. A function
// of height only, so every variant passes the same heights with the same orientation.
double lift_tilt(double height) { return 1.0 * min_jerk(height / 0.22); }

}  // namespace

const char* expert_phase_name(ExpertPhase phase) {
  switch (phase) {
    case ExpertPhase::kReach:
      return "reach";
    case ExpertPhase::kGrasp:
      return "grasp";
    case ExpertPhase::kLift:
      return "lift";
    case ExpertPhase::kHold:
      return "hold";
  }
  return "unknown";
}

const std::vector<std::string>& expert_variant_names() {
  static const std::vector<std::string> names = {"high", "low", "fast", "slow"};
  return names;
}

ExpertParams expert_variant(const std::string& name) {
  ExpertParams p;
  p.variant = name;
  if (name == "high")
    p.lift_height = 0.20;
  else if (name == "low")
    p.lift_height = 0.08;
  else if (name == "fast")
    p.speed = 1.5;
  else if (name == "slow")
    p.speed = 0.65;
  else
    throw Error("unknown expert variant '" + name + "' (known: high, low, fast, slow)");
  return p;
}

ScriptedExpert::ScriptedExpert(ArmKinematics& kinematics, double control_hz)
    : kinematics_(kinematics), control_hz_(control_hz) {}

ExpertPlan ScriptedExpert::plan(const JointVector& start, const Pose& cube, const ExpertParams& params, uint64_t seed) {
  require(params.speed > 0, "expert speed must be positive");
  require(params.lift_height > 0, "expert lift height must be positive");
  SeededRandom rng(seed, kStreamExpert);
  const double n = params.noise;
  auto jitter = [&](double amplitude) { return n > 0 ? rng.uniform(-amplitude * n, amplitude * n) : 0.0; };

  // Durations (s).
  const double lift_height = params.lift_height + jitter(0.01);
  const double t_reach = 1.8 * (1 + jitter(0.1)) / params.speed;
  const double t_descend = 1.0 * (1 + jitter(0.1)) / params.speed;
  const double t_close = 0.6 * (1 + jitter(0.1)) / params.speed;
  const double t_settle = 0.3 / params.speed;
  const double t_lift = (0.6 + lift_height / 0.12) * (1 + jitter(0.1)) / params.speed;
  const double t_hold = params.hold_time / params.speed;
  const double pregrasp = params.pregrasp_height + jitter(0.01);
  const Vec3 grasp = {cube.position[0] + jitter(0.001), cube.position[1] + jitter(0.001), cube.position[2]};

  // Orientation field: the gripper points down with its closing axis at yaw γ, then tilts outward (tips away
  // from the base, in the arm's vertical plane) by lift_tilt(height). Every orientation of this form is reachable
  // by the 5-DOF arm (pan, three pitch joints, roll); the tilt keeps the wrist inside its ±95° at height.
  const Vec3 pan = kinematics_.pan_axis();
  auto orientation_at = [&](const Vec3& point, double yaw) {
    const Vec3 closing = {std::cos(yaw), std::sin(yaw), 0};
    const Quat down = quat_from_axes(closing, {closing[1], -closing[0], 0}, {0, 0, -1});
    const double azimuth = std::atan2(point[1] - pan[1], point[0] - pan[0]);
    const Vec3 tilt_axis = {std::sin(azimuth), -std::cos(azimuth), 0};  // down × radial
    return rotate_world(down, tilt_axis, lift_tilt(point[2] - grasp[2]));
  };

  // Grasp yaw: the cube face normal nearest to the start pose's closing axis (so the wrist roll turns ≤ 45°).
  const Pose start_pose = kinematics_.forward(start);
  const Vec3 start_point = kinematics_.point(start, kGraspPoint);
  double start_mat[9];
  mju_quat2Mat(start_mat, start_pose.quaternion.data());
  const double start_yaw = std::atan2(start_mat[3], start_mat[0]);  // the ee x axis, projected on the table
  const double cube_yaw = 2 * std::atan2(cube.quaternion[3], cube.quaternion[0]);
  double grasp_yaw = cube_yaw;
  for (int k = -8; k <= 8; ++k) {
    double candidate = cube_yaw + k * M_PI / 2;
    if (std::abs(candidate - start_yaw) < std::abs(grasp_yaw - start_yaw)) grasp_yaw = candidate;
  }
  // The start pose (home plus noise) is not exactly on the field; fade that difference out during the reach.
  Vec3 start_offset;
  mju_subQuat(start_offset.data(), start_pose.quaternion.data(), orientation_at(start_point, start_yaw).data());

  ExpertPlan plan;
  plan.control_hz = control_hz_;
  plan.lift_height = lift_height;

  const double dt = 1.0 / control_hz_;
  const double t1 = t_reach, t2 = t1 + t_descend, t3 = t2 + t_close, t4 = t3 + t_settle, t5 = t4 + t_lift,
               t6 = t5 + t_hold;
  const int ticks = static_cast<int>(std::ceil(t6 / dt));
  JointVector q = start;
  IkOptions ik;
  for (int k = 0; k < ticks; ++k) {
    const double t = k * dt;
    double gripper, yaw = grasp_yaw;
    ExpertPhase phase;
    Vec3 p;
    Quat orientation;
    if (t < t1) {  // reach: to above the cube, opening the jaws on the way
      double s = min_jerk(t / t_reach);
      for (int i = 0; i < 3; ++i) p[i] = start_point[i] + s * (grasp[i] + (i == 2 ? pregrasp : 0) - start_point[i]);
      yaw = start_yaw + s * (grasp_yaw - start_yaw);
      gripper = start[kGripper] + min_jerk(t / (0.6 * t_reach)) * (params.gripper_open - start[kGripper]);
      phase = ExpertPhase::kReach;
    } else if (t < t2) {  // descend straight down
      if (plan.descent_start == 0) plan.descent_start = k;
      double s = min_jerk((t - t1) / t_descend);
      p = {grasp[0], grasp[1], grasp[2] + pregrasp * (1 - s)};
      gripper = params.gripper_open;
      phase = ExpertPhase::kReach;
    } else if (t < t4) {  // close the jaws, then let the grip settle
      p = grasp;
      gripper = params.gripper_open + min_jerk((t - t2) / t_close) * (params.gripper_closed - params.gripper_open);
      phase = ExpertPhase::kGrasp;
    } else {  // lift straight up; then hold
      p = {grasp[0], grasp[1], grasp[2] + lift_height * min_jerk((t - t4) / t_lift)};
      gripper = params.gripper_closed;
      phase = t < t5 ? ExpertPhase::kLift : ExpertPhase::kHold;
    }
    orientation = orientation_at(p, yaw);
    if (t < t1) {
      double fade[4], v[3];
      for (int i = 0; i < 3; ++i) v[i] = start_offset[i] * (1 - min_jerk(t / t_reach));
      double angle = mju_norm3(v);
      if (angle > 1e-12) {
        mju_scl3(v, v, 1 / angle);  // mju_axisAngle2Quat wants a unit axis
        mju_axisAngle2Quat(fade, v, angle);
        Quat faded;
        mju_mulQuat(faded.data(), orientation.data(), fade);
        orientation = faded;
      }
    }
    IkTarget target;
    target.point_offset = kGraspPoint;
    target.position = p;
    target.orientation = orientation;
    IkResult r = kinematics_.inverse(target, q, ik);
    plan.max_ik_error = std::max(plan.max_ik_error, r.position_error);
    plan.ik_iterations += r.iterations;
    q = r.joints;
    q[kGripper] = gripper;
    plan.targets.push_back(q);
    plan.phases.push_back(phase);
  }
  return plan;
}

ExpertEpisode run_expert_episode(Simulator& sim, const ExpertParams& params, uint64_t seed,
                                 const FrameCallback& on_frame) {
  sim.reset(seed);
  ScriptedExpert expert(sim.kinematics(), sim.control_hz());
  const ExpertPlan plan = expert.plan(sim.joint_positions(), sim.cube_pose(), params, seed);

  ExpertEpisode episode;
  episode.frames = static_cast<int>(plan.targets.size());
  episode.duration = plan.duration();
  episode.lift_height = plan.lift_height;
  episode.max_ik_error = plan.max_ik_error;
  JointVector sum_sq{};
  std::array<int, kNumJoints> count{};
  // Execution noise: an OU process per arm joint until the descent (sim/expert.h).
  const int reach_end = plan.descent_start;
  const double dt = 1.0 / sim.control_hz(), decay = std::exp(-dt / 0.4), fade_ticks = 0.5 * sim.control_hz();
  SeededRandom noise_rng(seed, kStreamExecutionNoise);
  JointVector drift{};
  for (int k = 0; k < episode.frames; ++k) {
    if (on_frame) on_frame(k, sim.observe(), plan.targets[k], plan.phases[k]);
    JointVector sent = plan.targets[k];
    if (params.execution_noise > 0 && k < reach_end) {
      const double fade = std::min(1.0, (reach_end - k) / fade_ticks);
      for (int j = 0; j < kGripper; ++j) {
        // Box–Muller from two uniforms: one standard normal per joint and tick.
        const double u1 = noise_rng.uniform(1e-12, 1.0), u2 = noise_rng.uniform(0.0, 1.0);
        const double normal = std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
        drift[j] = decay * drift[j] + std::sqrt(1 - decay * decay) * params.execution_noise * normal;
        sent[j] += fade * drift[j];
      }
    }
    sim.act(sent);
    const JointVector q = sim.joint_positions();
    for (int j = 0; j < kNumJoints; ++j) {
      // The gripper is meant to miss its target once it holds the cube (it squeezes); track it while reaching.
      if (j == kGripper && plan.phases[k] != ExpertPhase::kReach) continue;
      const double e = std::abs(q[j] - sim.joint_targets()[j]);
      sum_sq[j] += e * e;
      ++count[j];
      episode.tracking_max[j] = std::max(episode.tracking_max[j], e);
    }
    episode.max_cube_lift = std::max(episode.max_cube_lift, sim.cube_pose().position[2] - sim.cube_resting_height());
  }
  for (int j = 0; j < kNumJoints; ++j) episode.tracking_rms[j] = std::sqrt(sum_sq[j] / std::max(1, count[j]));
  episode.success = sim.task_state()->success;
  return episode;
}

}  // namespace vlascope
