// Tests of the digital twin: scene kinematics against the menagerie SO-100, IK, the simulator behind the robot
// interface, the scripted expert's success and variants, and headless rendering.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <thread>

#include "common/error.h"
#include "hardware/units.h"
#include "sim/expert.h"
#include "sim/kinematics.h"
#include "sim/simulator.h"

// Mesa's OSMesa keeps the framebuffers that OSMesaMakeCurrent creates in a global table and never frees them (~1 kB
// per context); LeakSanitizer would report that in the sanitizer build, so it is suppressed for libOSMesa in this
// binary only. Our own leaks are still reported.
extern "C" const char* __lsan_default_suppressions() { return "leak:libOSMesa.so\n"; }

namespace vlascope {
namespace {

SimOptions headless() {
  SimOptions o;
  o.cameras = {};
  return o;
}

std::filesystem::path temp_dir() {
  auto dir = std::filesystem::temp_directory_path() / ("vlascope_test_sim_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

double distance(const std::array<double, 3>& a, const std::array<double, 3>& b) {
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

// ---------------------------------------------------------------------------------------------------------------
// Scene and kinematics

// so100.md §1.3: joint-axis positions of the menagerie SO-100 at q = 0 (measured with MuJoCo 2.2.2).
TEST(Kinematics, ZeroPoseAxesMatchMenagerie) {
  for (const char* scene : {"so100.xml", "pick_cube.xml"}) {
    SCOPED_TRACE(scene);
    ModelPtr model = load_model(scene_path(scene));
    const mjModel* m = model.get();
    std::shared_ptr<mjData> d(mj_makeData(m), mj_deleteData);
    for (int j = 0; j < kNumJoints; ++j) d->qpos[m->jnt_qposadr[arm_joint_ids(m)[j]]] = 0;
    mj_kinematics(m, d.get());
    struct Expected {
      const char* joint;
      std::array<double, 3> anchor, axis;
    };
    const Expected expected[] = {
        {"shoulder_pan", {0, -0.0452, 0.0165}, {0, 0, 1}}, {"shoulder_lift", {0, -0.0758, 0.1190}, {1, 0, 0}},
        {"elbow_flex", {0, -0.1884, 0.0910}, {1, 0, 0}},   {"wrist_flex", {0, -0.3233, 0.0962}, {1, 0, 0}},
        {"wrist_roll", {0, -0.3834, 0.0962}, {0, 1, 0}},   {"gripper", {0, -0.4078, 0.1164}, {-1, 0, 0}},
    };
    for (const Expected& e : expected) {
      const int j = require_id(m, mjOBJ_JOINT, e.joint);
      for (int i = 0; i < 3; ++i) {
        EXPECT_NEAR(d->xanchor[3 * j + i], e.anchor[i], 1e-4) << e.joint << " anchor[" << i << "]";
        EXPECT_NEAR(d->xaxis[3 * j + i], e.axis[i], 1e-3) << e.joint << " axis[" << i << "]";
      }
    }
    // The ee site is the jaw tip centre, (0, −0.1014, 0) in Fixed_Jaw.
    ArmKinematics kin(model);
    Pose ee = kin.forward(JointVector{});
    EXPECT_NEAR(distance(ee.position, {0, -0.4848, 0.0962}), 0, 1e-4);
  }
}

// so100.md §1.2: mass, centre of mass (body frame) and principal inertia of every moving body. The note rounds
// centres to 0.1 mm and inertias to three significant figures, so those are the tolerances.
TEST(Kinematics, MassesInertiasAndRangesMatchMenagerie) {
  ModelPtr model = load_model(scene_path("so100.xml"));
  const mjModel* m = model.get();
  struct Expected {
    const char* body;
    double mass;
    std::array<double, 3> com, principal_inertia;
  };
  const Expected expected[] = {
      {"Rotation_Pitch", 0.119226, {-0.0000908, 0.0591, 0.0311}, {5.94e-5, 5.90e-5, 3.14e-5}},
      {"Upper_Arm", 0.162409, {-0.0000172, 0.0702, 0.0031}, {2.13e-4, 1.67e-4, 7.02e-5}},
      {"Lower_Arm", 0.147968, {-0.0034, 0.0014, 0.0768}, {1.39e-4, 1.08e-4, 4.84e-5}},
      {"Wrist_Pitch_Roll", 0.0661321, {-0.0085, -0.0352, -0.00002}, {3.45e-5, 2.39e-5, 1.95e-5}},
      {"Fixed_Jaw", 0.0929859, {0.0055, -0.0280, 0.0005}, {5.03e-5, 4.64e-5, 2.73e-5}},
      {"Moving_Jaw", 0.0202444, {-0.0016, -0.0303, 0.0004}, {1.11e-5, 9.00e-6, 3.00e-6}},
  };
  double moving = 0;
  for (const Expected& e : expected) {
    const int b = require_id(m, mjOBJ_BODY, e.body);
    EXPECT_NEAR(m->body_mass[b], e.mass, 1e-6) << e.body;
    moving += m->body_mass[b];
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(m->body_ipos[3 * b + i], e.com[i], 1e-4) << e.body << " com[" << i << "]";
    // body_inertia holds the principal moments in the frame body_iquat; their order is MuJoCo's, so compare sorted.
    std::array<double, 3> inertia = {m->body_inertia[3 * b], m->body_inertia[3 * b + 1], m->body_inertia[3 * b + 2]};
    std::sort(inertia.rbegin(), inertia.rend());
    for (int i = 0; i < 3; ++i)
      EXPECT_NEAR(inertia[i], e.principal_inertia[i], 0.005 * e.principal_inertia[i])
          << e.body << " inertia[" << i << "]";
  }
  EXPECT_NEAR(moving, 0.609, 1e-3);  // so100.md §1.2
  // 2025 ranges (so100.md §1.2) on the joints, and the actuators' control ranges equal to them.
  const double ranges[kNumJoints][2] = {{-1.92, 1.92}, {-3.32, 0.174}, {-0.174, 3.14},
                                        {-1.66, 1.66}, {-2.79, 2.79},  {-0.174, 1.75}};
  auto joints = arm_joint_ids(m);
  for (int j = 0; j < kNumJoints; ++j) {
    EXPECT_DOUBLE_EQ(m->jnt_range[2 * joints[j]], ranges[j][0]) << kJointNames[j];
    EXPECT_DOUBLE_EQ(m->jnt_range[2 * joints[j] + 1], ranges[j][1]) << kJointNames[j];
    const int a = require_id(m, mjOBJ_ACTUATOR, kJointNames[j]);
    EXPECT_DOUBLE_EQ(m->actuator_ctrlrange[2 * a], ranges[j][0]);
    EXPECT_DOUBLE_EQ(m->actuator_ctrlrange[2 * a + 1], ranges[j][1]);
  }
}

TEST(Kinematics, InverseKinematicsReachesReachablePoses) {
  ArmKinematics kin = ArmKinematics::load(scene_path("pick_cube.xml"));
  const JointLimits lim = kin.limits();
  // Targets from forward kinematics of random configurations (so they are reachable), solved from a start 0.3 rad
  // away on every joint.
  uint64_t state = 12345;
  auto uniform = [&](double lo, double hi) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (hi - lo) * static_cast<double>(state >> 11) * 0x1.0p-53;
  };
  int solved = 0;
  const int trials = 50;
  for (int t = 0; t < trials; ++t) {
    JointVector q{}, seed{};
    for (int j = 0; j < kGripper; ++j) {
      double margin = 0.3 + 0.1 * (lim.upper[j] - lim.lower[j]);
      q[j] = uniform(lim.lower[j] + margin, lim.upper[j] - margin);
      seed[j] = q[j] + (uniform(0, 1) < 0.5 ? -0.3 : 0.3);
    }
    const Pose goal = kin.forward(q);
    IkTarget target;
    target.position = goal.position;
    target.orientation = goal.quaternion;
    IkResult r = kin.inverse(target, seed);
    if (r.converged) ++solved;
    const Pose reached = kin.forward(r.joints);
    if (r.converged) {
      EXPECT_LT(distance(reached.position, goal.position), 2e-4);
    }
  }
  EXPECT_GE(solved, trials * 9 / 10);

  // Position only, with a point offset: the grasp point goes where asked.
  IkTarget target;
  target.position = {0.05, -0.25, 0.05};
  target.point_offset = ScriptedExpert::kGraspPoint;
  JointVector home{0, -1.57, 1.57, 1.57, -1.57, 0};
  IkResult r = kin.inverse(target, home);
  EXPECT_TRUE(r.converged);
  EXPECT_LT(distance(kin.point(r.joints, ScriptedExpert::kGraspPoint), target.position), 2e-4);

  // Out of reach: the best effort comes back within the limits, not converged, without hanging.
  target.position = {0, -1.0, 0.1};
  r = kin.inverse(target, home);
  EXPECT_FALSE(r.converged);
  EXPECT_GT(r.position_error, 0.4);
  for (int j = 0; j < kNumJoints; ++j) {
    EXPECT_GE(r.joints[j], lim.lower[j]);
    EXPECT_LE(r.joints[j], lim.upper[j]);
  }
}

TEST(Scene, MalformedSceneIsAnErrorNamingTheFile) {
  const auto dir = temp_dir();
  const std::string broken = (dir / "broken.xml").string();
  std::ofstream(broken) << "<mujoco><worldbody><body name='a'><geom type='box' size='0.1'/></body>";  // unclosed
  try {
    load_model(broken);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(broken), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rror"), std::string::npos) << e.what();  // MuJoCo's own message
  }
  EXPECT_THROW(load_model((dir / "missing.xml").string()), Error);

  // A valid MJCF that is not a pick scene: the simulator names the scene and what is missing.
  SimOptions o = headless();
  o.scene = scene_path("so100.xml");
  try {
    Simulator sim(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("so100.xml"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cube"), std::string::npos) << e.what();
  }

  // A camera the scene does not have.
  o = SimOptions{};
  o.cameras = {"scene", "overhead"};
  try {
    Simulator sim(o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("overhead"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------------------------
// Simulator

TEST(Simulator, ResetIsReproducibleAndRandomised) {
  Simulator a(headless()), b(headless());
  a.reset(7);
  b.reset(7);
  EXPECT_EQ(a.cube_pose().position, b.cube_pose().position);
  EXPECT_EQ(a.joint_positions(), b.joint_positions());
  EXPECT_EQ(a.model()->cam_pos[3 * a.camera_id("scene")], b.model()->cam_pos[3 * b.camera_id("scene")]);
  b.reset(8);
  EXPECT_GT(distance(a.cube_pose().position, b.cube_pose().position), 1e-4);
  EXPECT_NE(a.model()->cam_pos[3 * a.camera_id("scene")], b.model()->cam_pos[3 * b.camera_id("scene")]);
  EXPECT_DOUBLE_EQ(a.time(), 0);

  // Cube on the table, in front of the arm, inside the annulus.
  const Randomization& r = a.options().randomization;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    a.reset(seed);
    const Pose cube = a.cube_pose();
    const Vec3 pan = a.kinematics().pan_axis();
    const double radius = std::hypot(cube.position[0] - pan[0], cube.position[1] - pan[1]);
    EXPECT_GE(radius, r.cube_min_radius - 0.002);
    EXPECT_LE(radius, r.cube_max_radius + 0.002);
    EXPECT_NEAR(cube.position[2], 0.0125, 0.001);
    EXPECT_FALSE(a.task_state()->object_grasped);
    EXPECT_FALSE(a.task_state()->success);
  }

  // Options off: the cube stays where the scene puts it.
  SimOptions fixed = headless();
  fixed.randomization.cube_pose = false;
  Simulator c(fixed);
  c.reset(3);
  EXPECT_NEAR(distance(c.cube_pose().position, {0, -0.25, 0.0125}), 0, 1e-3);
}

TEST(Simulator, ControlPeriodAndClamping) {
  Simulator sim(headless());
  EXPECT_DOUBLE_EQ(sim.control_hz(), 30);
  EXPECT_NEAR(sim.substeps() * sim.timestep(), 1.0 / 30, 1e-12);
  sim.reset(0);
  Robot& robot = sim;
  robot.act(sim.joint_positions());
  EXPECT_NEAR(robot.observe().timestamp, 1.0 / 30, 1e-9);

  JointVector wild{5, -5, 5, 5, -5, 5};
  const JointVector reported = robot.act(wild);
  const JointLimits lim = robot.joint_limits();
  const JointVector sent = sim.joint_targets();
  for (int j = 0; j < kNumJoints; ++j) {
    EXPECT_DOUBLE_EQ(sent[j], wild[j] > 0 ? lim.upper[j] : lim.lower[j]);
    EXPECT_DOUBLE_EQ(reported[j], sent[j]);  // act() reports the clamped targets, not the ones asked for
  }

  JointVector bad = sim.joint_positions();
  bad[kElbowFlex] = std::nan("");
  EXPECT_THROW(robot.act(bad), Error);
}

// The position servos: a 10° step on each arm joint settles within a few control periods, and the ee pose in
// observations is the kinematic model's forward kinematics of the observed joints.
TEST(Simulator, ServosTrackStepsAndObservationsAreConsistent) {
  Simulator sim(headless());
  sim.reset(0);
  for (int j = 0; j < kGripper; ++j) {
    sim.reset(0);
    JointVector target = sim.joint_positions();
    const JointLimits lim = sim.joint_limits();
    target[j] += (target[j] < 0.5 * (lim.lower[j] + lim.upper[j]) ? 10 : -10) * M_PI / 180;  // towards mid-range
    int ticks_to_1deg = -1;
    for (int k = 0; k < 30; ++k) {
      sim.act(target);
      if (ticks_to_1deg < 0 && std::abs(sim.joint_positions()[j] - target[j]) < M_PI / 180) ticks_to_1deg = k + 1;
    }
    EXPECT_GT(ticks_to_1deg, 0) << kJointNames[j];
    EXPECT_LE(ticks_to_1deg, 4) << kJointNames[j] << ": a 10° step takes " << ticks_to_1deg << " ticks";
    EXPECT_LT(std::abs(sim.joint_positions()[j] - target[j]), 0.5 * M_PI / 180) << kJointNames[j];
  }
  const Observation obs = sim.observe();
  const Pose fk = sim.kinematics().forward(obs.joint_positions);
  EXPECT_LT(distance(obs.end_effector.position, fk.position), 1e-9);
}

// ---------------------------------------------------------------------------------------------------------------
// Scripted expert

struct VariantStats {
  int success = 0, episodes = 0;
  std::vector<double> lifts, durations;
  JointVector tracking_rms{}, tracking_max{};
  double max_ik_error = 0;
};

TEST(Expert, SucceedsOnHundredSeedsPerVariantAndVariantsDiffer) {
  const int episodes = 100;
  const auto& names = expert_variant_names();
  std::vector<VariantStats> stats(names.size());
  // Two threads, each with its own simulator, take alternate seeds.
  auto worker = [&](int thread, std::vector<VariantStats>* out) {
    Simulator sim(headless());
    for (size_t v = 0; v < names.size(); ++v) {
      const ExpertParams params = expert_variant(names[v]);
      for (int seed = thread; seed < episodes; seed += 2) {
        ExpertEpisode e = run_expert_episode(sim, params, static_cast<uint64_t>(seed));
        VariantStats& s = (*out)[v];
        s.success += e.success;
        ++s.episodes;
        s.lifts.push_back(e.max_cube_lift);
        s.durations.push_back(e.duration);
        s.max_ik_error = std::max(s.max_ik_error, e.max_ik_error);
        for (int j = 0; j < kNumJoints; ++j) {
          s.tracking_rms[j] += e.tracking_rms[j] * e.tracking_rms[j];
          s.tracking_max[j] = std::max(s.tracking_max[j], e.tracking_max[j]);
        }
      }
    }
  };
  std::vector<VariantStats> second(names.size());
  std::thread other(worker, 1, &second);
  worker(0, &stats);
  other.join();
  for (size_t v = 0; v < names.size(); ++v) {
    VariantStats& s = stats[v];
    s.success += second[v].success;
    s.episodes += second[v].episodes;
    s.lifts.insert(s.lifts.end(), second[v].lifts.begin(), second[v].lifts.end());
    s.durations.insert(s.durations.end(), second[v].durations.begin(), second[v].durations.end());
    s.max_ik_error = std::max(s.max_ik_error, second[v].max_ik_error);
    for (int j = 0; j < kNumJoints; ++j) {
      s.tracking_rms[j] = std::sqrt((s.tracking_rms[j] + second[v].tracking_rms[j]) / s.episodes);
      s.tracking_max[j] = std::max(s.tracking_max[j], second[v].tracking_max[j]);
    }
  }

  auto mean = [](const std::vector<double>& x) { return std::accumulate(x.begin(), x.end(), 0.0) / x.size(); };
  for (size_t v = 0; v < names.size(); ++v) {
    const VariantStats& s = stats[v];
    std::printf(
        "[expert] %-5s success %3d/%d  lift %.3f m (%.3f..%.3f)  duration %.2f s (%.2f..%.2f)  max IK error "
        "%.1f mm\n",
        names[v].c_str(), s.success, s.episodes, mean(s.lifts), *std::min_element(s.lifts.begin(), s.lifts.end()),
        *std::max_element(s.lifts.begin(), s.lifts.end()), mean(s.durations),
        *std::min_element(s.durations.begin(), s.durations.end()),
        *std::max_element(s.durations.begin(), s.durations.end()), s.max_ik_error * 1e3);
    std::printf("[expert] %-5s tracking rms/max (deg):", names[v].c_str());
    for (int j = 0; j < kNumJoints; ++j)
      std::printf(" %s %.2f/%.2f", kJointNames[j], s.tracking_rms[j] * 180 / M_PI, s.tracking_max[j] * 180 / M_PI);
    std::printf("\n");
    EXPECT_EQ(s.episodes, episodes);
    EXPECT_GE(s.success, 95) << names[v];
    // Arm joints follow the 30 Hz targets to within a degree or so.
    for (int j = 0; j < kGripper; ++j)
      EXPECT_LT(s.tracking_rms[j], 1.0 * M_PI / 180) << names[v] << " " << kJointNames[j];
  }
  auto index = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) - names.begin(); };
  const VariantStats &high = stats[index("high")], &low = stats[index("low")], &fast = stats[index("fast")],
                     &slow = stats[index("slow")];
  // Lift heights: every high episode is at least 8 cm above every low one.
  EXPECT_GE(
      *std::min_element(high.lifts.begin(), high.lifts.end()) - *std::max_element(low.lifts.begin(), low.lifts.end()),
      0.08);
  // Durations: every fast episode is at least 1.5× shorter than every slow one.
  EXPECT_GE(*std::min_element(slow.durations.begin(), slow.durations.end()) /
                *std::max_element(fast.durations.begin(), fast.durations.end()),
            1.5);
}

TEST(Expert, PlansAreSmoothPhasedAndSeedSpecific) {
  Simulator sim(headless());
  ScriptedExpert expert(sim.kinematics(), sim.control_hz());
  sim.reset(11);
  const ExpertPlan plan = expert.plan(sim.joint_positions(), sim.cube_pose(), expert_variant("high"), 11);
  const ExpertPlan again = expert.plan(sim.joint_positions(), sim.cube_pose(), expert_variant("high"), 11);
  ASSERT_EQ(plan.targets.size(), again.targets.size());
  EXPECT_EQ(plan.targets, again.targets);  // reproducible from the seed

  // Phases appear in order, each one at least once.
  int last = 0;
  std::array<int, 5> count{};
  for (ExpertPhase p : plan.phases) {
    EXPECT_GE(static_cast<int>(p), last);
    last = static_cast<int>(p);
    ++count[last];
  }
  for (int p = 1; p <= 4; ++p) EXPECT_GT(count[p], 0) << expert_phase_name(static_cast<ExpertPhase>(p));

  // Smooth: no arm-joint target moves more than 0.12 rad (7°) between ticks, and the first target is the start.
  for (int j = 0; j < kGripper; ++j) EXPECT_NEAR(plan.targets[0][j], sim.joint_positions()[j], 1e-3);
  for (size_t k = 1; k < plan.targets.size(); ++k)
    for (int j = 0; j < kGripper; ++j)
      ASSERT_LT(std::abs(plan.targets[k][j] - plan.targets[k - 1][j]), 0.12) << "tick " << k << " " << kJointNames[j];

  // No two demonstrations are the same: same cube, different seed → different plan.
  const ExpertPlan other = expert.plan(sim.joint_positions(), sim.cube_pose(), expert_variant("high"), 12);
  EXPECT_NE(plan.targets, other.targets);
  EXPECT_NE(plan.lift_height, other.lift_height);

  // Unknown variants are errors that list the known ones.
  try {
    expert_variant("medium");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("high"), std::string::npos);
  }
}

TEST(Expert, ExecutionNoiseMovesTheArmOffThePlanButRecordsThePlan) {
  Simulator sim(headless());
  auto record = [&](double noise, std::vector<JointVector>* actions, std::vector<JointVector>* joints,
                    std::vector<ExpertPhase>* phases) {
    ExpertParams params = expert_variant("high");
    params.execution_noise = noise;
    return run_expert_episode(sim, params, 21, [&](int, const Observation& o, const JointVector& a, ExpertPhase p) {
      actions->push_back(a);
      joints->push_back(o.joint_positions);
      phases->push_back(p);
    });
  };
  std::vector<JointVector> clean_actions, clean_joints, noisy_actions, noisy_joints;
  std::vector<ExpertPhase> phases, noisy_phases;
  const ExpertEpisode clean = record(0, &clean_actions, &clean_joints, &phases);
  const ExpertEpisode noisy = record(0.08, &noisy_actions, &noisy_joints, &noisy_phases);
  ASSERT_TRUE(clean.success);
  EXPECT_TRUE(noisy.success);
  EXPECT_EQ(noisy_actions, clean_actions);  // the labels are the plan's

  ScriptedExpert expert(sim.kinematics(), sim.control_hz());
  sim.reset(21);
  const int descent = expert.plan(sim.joint_positions(), sim.cube_pose(), expert_variant("high"), 21).descent_start;
  ASSERT_GT(descent, 10);
  EXPECT_EQ(phases[descent], ExpertPhase::kReach);  // the descent is the end of the reach
  double off_path = 0, after_descent = 0;           // largest arm-joint gap to the clean run, rad
  for (size_t k = 0; k < clean_joints.size(); ++k) {
    double gap = 0;
    for (int j = 0; j < kGripper; ++j) gap = std::max(gap, std::abs(noisy_joints[k][j] - clean_joints[k][j]));
    const int tick = static_cast<int>(k);
    if (tick < descent) off_path = std::max(off_path, gap);
    if (tick > descent + 8) after_descent = std::max(after_descent, gap);  // the servos have caught up
  }
  EXPECT_GT(off_path, 0.05);       // rad: the arm really left its path while reaching
  EXPECT_LT(after_descent, 0.01);  // and was back on it for the descent, grasp and lift
}

TEST(Expert, GraspIsDetectedOnlyWhileHolding) {
  Simulator sim(headless());
  bool grasped_during_reach = false, grasped_in_hold = true, success_before_lift = false;
  ExpertEpisode e = run_expert_episode(sim, expert_variant("low"), 4,
                                       [&](int, const Observation&, const JointVector&, ExpertPhase phase) {
                                         auto state = sim.task_state();
                                         if (phase == ExpertPhase::kReach)
                                           grasped_during_reach |= state->object_grasped;
                                         if (phase == ExpertPhase::kHold) grasped_in_hold &= state->object_grasped;
                                         if (phase != ExpertPhase::kLift && phase != ExpertPhase::kHold)
                                           success_before_lift |= state->success;
                                       });
  EXPECT_TRUE(e.success);
  EXPECT_FALSE(grasped_during_reach);
  EXPECT_TRUE(grasped_in_hold);
  EXPECT_FALSE(success_before_lift);

  // Let go: the cube falls, and the task is no longer a success.
  JointVector open = sim.joint_targets();
  open[kGripper] = 1.0;
  for (int k = 0; k < 30; ++k) sim.act(open);
  EXPECT_FALSE(sim.task_state()->object_grasped);
  EXPECT_FALSE(sim.task_state()->success);
  EXPECT_LT(sim.cube_pose().position[2], 0.03);
}

// A copy of the pick scene (and the arm it includes) in `dir` whose cube has edges of `edge` metres, at the density
// of the shipped 2.5 cm, 30 g cube, so that only the size changes. The scene is edited as a user would edit it, and
// MuJoCo compiles the inertia and collision bounds from it.
std::string pick_scene_with_cube(const std::filesystem::path& dir, double edge) {
  std::ifstream in(scene_path("pick_cube.xml"));
  std::string xml((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string shipped_cube = "size=\"0.0125 0.0125 0.0125\" mass=\"0.03\"";
  const size_t at = xml.find(shipped_cube);
  if (at == std::string::npos) throw Error("pick_cube.xml: the cube geom no longer reads " + shipped_cube);
  const double half = edge / 2, mass = 0.03 * std::pow(edge / 0.025, 3);
  char resized[96];
  std::snprintf(resized, sizeof resized, "size=\"%.4f %.4f %.4f\" mass=\"%.5f\"", half, half, half, mass);
  xml.replace(at, shipped_cube.size(), resized);
  std::filesystem::copy_file(scene_path("so100.xml"), dir / "so100.xml",
                             std::filesystem::copy_options::overwrite_existing);
  const std::string path = (dir / ("pick_cube_" + std::to_string(std::lround(edge * 1000)) + "mm.xml")).string();
  std::ofstream(path) << xml;
  return path;
}

// so100.xml promises jaw pads that hold a 2–3 cm cube, not only the shipped 2.5 cm one.
TEST(Expert, PicksTwoAndThreeCentimetreCubes) {
  const auto dir = temp_dir();
  for (double edge : {0.02, 0.03}) {
    SimOptions o = headless();
    o.scene = pick_scene_with_cube(dir, edge);
    Simulator sim(o);
    const mjModel* m = sim.model();
    ASSERT_NEAR(m->geom_size[3 * require_id(m, mjOBJ_GEOM, "cube")], edge / 2, 1e-9);
    int successes = 0;
    const int seeds = 5;
    for (int seed = 0; seed < seeds; ++seed) {
      const ExpertEpisode e = run_expert_episode(sim, ExpertParams{}, static_cast<uint64_t>(seed));
      // A cube resting exactly flush on the table can meet MuJoCo 2.2.2's phantom box-box contact and be thrown
      // while reset() settles it (seen for 28 mm cubes, 1.5% of seeds): that is not a failed grasp, so name it.
      EXPECT_NEAR(sim.cube_resting_height(), edge / 2, 0.001) << "seed " << seed << ": cube not resting on the table";
      std::printf("[expert] %.0f mm cube, seed %d: %s, max lift %.3f m\n", edge * 1000, seed,
                  e.success ? "success" : "FAILED", e.max_cube_lift);
      successes += e.success;
    }
    EXPECT_GE(successes, seeds - 1) << edge * 1000 << " mm cube";
  }
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering (OSMesa)

double stddev(const Image& image) {
  double sum = 0, sum_sq = 0;
  for (uint8_t v : image.pixels) sum += v, sum_sq += double(v) * v;
  const double n = image.pixels.size();
  return std::sqrt(std::max(0.0, sum_sq / n - (sum / n) * (sum / n)));
}

TEST(Render, ObservationsHaveNonBlankImagesOfTheConfiguredSize) {
  SimOptions o;
  o.image_width = 96;
  o.image_height = 72;
  Simulator sim(o);
  sim.reset(1);
  const Observation obs = sim.observe();
  ASSERT_EQ(obs.images.size(), 2u);
  for (const auto& [name, image] : obs.images) {
    EXPECT_EQ(image.width, 96) << name;
    EXPECT_EQ(image.height, 72) << name;
    EXPECT_EQ(image.channels, 3) << name;
    EXPECT_GT(stddev(image), 10) << name << " looks blank";
  }
  // Any size, also beyond the model's offscreen buffer (640×480), and the nice mode.
  RenderRequest nice;
  nice.quality = RenderQuality::kNice;
  const RenderOutput big = sim.render("scene", 800, 600, nice);
  EXPECT_EQ(big.rgb.width, 800);
  EXPECT_GT(stddev(big.rgb), 10);
  EXPECT_THROW(sim.render("no_such_camera", 64, 64), Error);
}

TEST(Render, CubeIsVisibleInSceneSegmentationAndDepthIsMetric) {
  Simulator sim(headless());  // no observation cameras, but render() still works
  RenderRequest request;
  request.depth = true;
  request.segmentation = true;
  const int size = 128;
  const double extent_near = sim.model()->vis.map.znear * sim.model()->stat.extent;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    sim.reset(seed);
    const RenderOutput out = sim.render("scene", size, size, request);
    ASSERT_EQ(out.segmentation.channels, 1);
    std::array<int, kNumSegmentClasses> count{};
    double depth_at_cube = 0;
    for (int i = 0; i < size * size; ++i) {
      ++count[out.segmentation.pixels[i]];
      if (out.segmentation.pixels[i] == kSegCube) depth_at_cube += out.depth[i];
    }
    EXPECT_GE(count[kSegCube], 8) << "seed " << seed;
    EXPECT_GT(count[kSegTable], size * size / 5);
    EXPECT_GT(count[kSegArm], 50);
    EXPECT_GT(count[kSegGripper], 5);
    // The mean depth over cube pixels is the cube's distance along the optical axis, within the cube's size.
    const mjData* d = sim.data();
    const int cam = sim.camera_id("scene");
    const Pose cube = sim.cube_pose();
    double along = 0;
    for (int i = 0; i < 3; ++i)
      along -= (cube.position[i] - d->cam_xpos[3 * cam + i]) * d->cam_xmat[9 * cam + 3 * i + 2];
    EXPECT_NEAR(depth_at_cube / std::max(1, count[kSegCube]), along, 0.02) << "seed " << seed;
    EXPECT_GT(*std::min_element(out.depth.begin(), out.depth.end()), extent_near * 0.99);
  }
}

TEST(Render, WristCameraMovesWithTheGripper) {
  SimOptions o;
  o.cameras = {"wrist"};
  o.image_width = o.image_height = 64;
  Simulator sim(o);
  sim.reset(2);
  const int cam = sim.camera_id("wrist");
  auto camera_in_ee_frame = [&]() {
    const mjData* d = sim.data();
    const Pose ee = sim.end_effector();
    double rel[3], local[3], mat[9];
    for (int i = 0; i < 3; ++i) rel[i] = d->cam_xpos[3 * cam + i] - ee.position[i];
    mju_quat2Mat(mat, ee.quaternion.data());
    mju_mulMatTVec(local, mat, rel, 3, 3);
    return std::array<double, 3>{local[0], local[1], local[2]};
  };
  const auto before_camera = std::array<double, 3>{sim.data()->cam_xpos[3 * cam], sim.data()->cam_xpos[3 * cam + 1],
                                                   sim.data()->cam_xpos[3 * cam + 2]};
  const auto before_local = camera_in_ee_frame();
  const Image before = sim.observe().images.at("wrist");

  JointVector target = sim.joint_positions();
  target[kShoulderPan] += 0.4;
  target[kWristFlex] -= 0.3;
  for (int k = 0; k < 20; ++k) sim.act(target);
  const auto after_camera = std::array<double, 3>{sim.data()->cam_xpos[3 * cam], sim.data()->cam_xpos[3 * cam + 1],
                                                  sim.data()->cam_xpos[3 * cam + 2]};
  const Image after = sim.observe().images.at("wrist");

  EXPECT_GT(distance(before_camera, after_camera), 0.03);         // it moved in the world
  EXPECT_LT(distance(before_local, camera_in_ee_frame()), 1e-9);  // rigidly attached to the gripper
  double diff = 0;
  for (size_t i = 0; i < before.pixels.size(); ++i) diff += std::abs(int(before.pixels[i]) - int(after.pixels[i]));
  EXPECT_GT(diff / before.pixels.size(), 5.0);  // and sees something else
}

TEST(Render, SegmentationClassesComeFromNames) {
  Simulator sim(headless());
  const mjModel* m = sim.model();
  auto cls = [&](const char* geom) { return sim.geom_classes()[require_id(m, mjOBJ_GEOM, geom)]; };
  EXPECT_EQ(cls("cube"), kSegCube);
  EXPECT_EQ(cls("table"), kSegTable);
  EXPECT_EQ(cls("fixed_jaw_pad_1"), kSegGripper);
  EXPECT_EQ(cls("moving_jaw_pad_1"), kSegGripper);
  EXPECT_EQ(cls("upper_arm"), kSegArm);
  EXPECT_EQ(cls("floor"), kSegBackground);
}

}  // namespace
}  // namespace vlascope
