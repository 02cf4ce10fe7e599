// vlascope eval / vlascope rollout: seeded closed-loop rollouts of a checkpoint through the robot interface, so the
// same command runs in the MuJoCo twin (--robot sim, the default) and on the real SO-100 (--robot so100 …).
//
// eval reports success rate (Wilson 95% interval), cube lift, end-effector lift (the lift segment, measured the same
// way on the real arm), episode length and policy latency, and writes eval.json, episodes.csv, ee_height.png,
// lift.png and MP4s of the first episodes. rollout runs one episode and writes its video and trajectory.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include <chrono>
#include <opencv2/highgui.hpp>
#include <opencv2/imgproc.hpp>

#include "apps/attention_figures.h"
#include "apps/commands.h"
#include "apps/policy_options.h"
#include "apps/robot_factory.h"
#include "apps/sharding.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/file_io.h"
#include "common/image_io.h"
#include "common/plot.h"
#include "common/progress.h"
#include "interp/capture.h"
#include "interp/lift_segment.h"
#include "interp/neuron_set.h"
#include "interp/rollout.h"
#include "interp/rollout_io.h"
#include "interp/stats.h"
#include "policy/policy.h"
#include "sim/simulator.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

void add_live_option(ArgParser& args) {
  args.flag("live", "show the camera frames with the current attention overlay, refreshed at every step (a window\n"
                    "when a display is available, else <out>/live.mp4)");
  args.flag("mirror", "with --live: the digital twin posed at the robot's measured joints beside the cameras, with\n"
                      "its end-effector height (on the real arm: the simulator mirrors it)");
}

// --steer / --sets / --alpha / --op as a Steering that lives as long as the returned object.
std::unique_ptr<Steering> steering_from(const ArgParser& args, Policy& policy) {
  const std::vector<NeuronSet> sets = steering_sets(args);
  const std::vector<Intervention> interventions = steering_interventions(args);
  if (interventions.empty()) return nullptr;
  return std::make_unique<Steering>(policy.model(), sets, interventions);
}

// The live view: frames with the latest chunk's attention overlay, to a window or a video, with its own timing.
class LiveView {
 public:
  LiveView(Policy& policy, const std::string& video_path, double fps, bool mirror) : policy_(policy) {
    recorder_ = std::make_unique<AttentionRecorder>(policy, live_view_capture_spec());
    window_ = std::getenv("DISPLAY") != nullptr;
    if (!window_) video_ = std::make_unique<VideoWriter>(video_path, fps);
    if (mirror) {
      SimOptions o;
      o.cameras = {};  // renders on demand; the real cube's pose is unknown, so the twin's is put out of sight
      twin_ = std::make_unique<Simulator>(o);
      Pose hidden;
      hidden.position = {0, 0, -1};
      twin_->set_cube_pose(hidden);
    }
  }
  ~LiveView() {
    if (video_) video_->close();
    if (window_) cv::destroyAllWindows();
  }
  void show(const Observation& obs, const RolloutStep& step) {
    const auto t0 = std::chrono::steady_clock::now();
    char caption[128];
    int n = std::snprintf(caption, sizeof caption, "t %.1fs  ee z %.3f m", step.time, step.end_effector.position[2]);
    Image twin_view;
    if (twin_) {
      twin_->set_joint_positions(obs.joint_positions);
      const double twin_z = twin_->end_effector().position[2];
      std::snprintf(caption + n, sizeof caption - n, "  twin ee z %.3f m", twin_z);
      mirror_gap_ = std::max(mirror_gap_, std::abs(twin_z - step.end_effector.position[2]));
      twin_view = twin_->render("scene", 160, 160).rgb;
    }
    const CapturedChunk* chunk = recorder_->chunks().empty() ? nullptr : &recorder_->chunks().back();
    Image frame = overlay_strip(chunk, obs, policy_.config(), caption);
    if (twin_) frame = hstack({frame, resize(twin_view, frame.height, frame.height)}, 4);
    if (window_) {
      cv::Mat rgb(frame.height, frame.width, CV_8UC3, const_cast<uint8_t*>(frame.pixels.data())), bgr;
      cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
      cv::imshow("vlascope live", bgr);
      cv::waitKey(1);
    } else {
      video_->write(frame);
    }
    seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    frames_ += 1;
  }
  double ms_per_frame() const { return frames_ ? 1e3 * seconds_ / frames_ : 0; }
  bool window() const { return window_; }
  void print_mirror_gap() const {  // the largest |twin − robot| end-effector height seen, with --mirror
    if (twin_)
      std::printf("mirror: the twin's end-effector height differs from the robot's by at most %.2f mm\n",
                  1e3 * mirror_gap_);
  }

 private:
  Policy& policy_;
  std::unique_ptr<AttentionRecorder> recorder_;
  std::unique_ptr<VideoWriter> video_;
  std::unique_ptr<Simulator> twin_;  // --mirror
  double mirror_gap_ = 0;
  bool window_ = false;
  double seconds_ = 0;
  int frames_ = 0;
};

// --live (and --mirror) as a LiveView; nullptr without --live.
std::unique_ptr<LiveView> make_live_view(const ArgParser& args, Policy& policy, const fs::path& out, double fps) {
  require(args.get_flag("live") || !args.get_flag("mirror"), "--mirror shows the twin in the live view: add --live");
  if (!args.get_flag("live")) return nullptr;
  return std::make_unique<LiveView>(policy, (out / "live.mp4").string(), fps, args.get_flag("mirror"));
}

// Side-by-side camera frames with a caption, for videos.
Image video_frame(const Observation& obs, const std::vector<std::string>& cameras, const std::string& caption) {
  std::vector<Image> views;
  for (const std::string& c : cameras) {
    auto it = obs.images.find(c);
    if (it != obs.images.end()) views.push_back(resize(it->second, 256, 256 * it->second.height / it->second.width));
  }
  return with_caption(hstack(views, 4), caption);
}

nlohmann::json episode_json(const RolloutResult& r, const LiftSegment& lift) {
  return {{"seed", r.seed},
          {"success", r.success},
          {"success_known", r.success_known},
          {"success_time_s", r.success_time},
          {"max_cube_lift_m", r.max_cube_lift},
          {"seconds", r.seconds},
          {"wall_seconds", r.wall_seconds},
          {"model_calls", r.model_calls},
          {"model_seconds", r.model_seconds},
          {"lift_status", lift_status_name(lift.status)},
          {"ee_lift_max_rise_m", lift.max_rise},
          {"ee_lift_mean_height_m", lift.mean_height},
          {"ee_lift_max_height_m", lift.max_height},
          {"ee_lift_duration_s", lift.duration_s},
          {"ee_lift_mean_speed_mps", lift.mean_speed}};
}

// The report of an evaluation from its episodes, whether they ran in this process or come from the shards `merge`
// combines: eval.json, episodes.csv, ee_height.png, lift.png and the printed summary.
// wall_seconds is the time it took to run `episodes_run` of them (a resumed run ran fewer than it reports).
void write_eval_report(const fs::path& out, nlohmann::json run, const std::vector<RolloutResult>& results,
                       double wall_seconds, int episodes_run) {
  const int episodes = static_cast<int>(results.size());
  std::vector<LiftSegment> lifts;
  nlohmann::json per_episode = nlohmann::json::array();
  std::ofstream csv(out / "episodes.csv");
  csv << "seed,success,max_cube_lift_m,success_time_s,seconds,lift_status,ee_max_rise_m,ee_mean_height_m,"
         "ee_lift_mean_speed_mps,model_ms_per_chunk\n";
  int successes = 0;
  for (const RolloutResult& r : results) {
    const LiftSegment lift = find_lift_segment(r.ee_trajectory());
    csv << r.seed << "," << r.success << "," << r.max_cube_lift << "," << r.success_time << "," << r.seconds << ","
        << lift_status_name(lift.status) << "," << lift.max_rise << "," << lift.mean_height << "," << lift.mean_speed
        << "," << (r.model_calls ? 1e3 * r.model_seconds / r.model_calls : 0) << "\n";
    per_episode.push_back(episode_json(r, lift));
    lifts.push_back(lift);
    successes += r.success;
  }

  const bool known = !results.empty() && results[0].success_known;
  const ProportionInterval rate = wilson_interval(successes, episodes);
  std::vector<double> cube_lift, ee_rise, length, chunk_ms;
  for (size_t k = 0; k < results.size(); ++k) {
    cube_lift.push_back(results[k].max_cube_lift);
    if (lifts[k].status == LiftStatus::kLifted) ee_rise.push_back(lifts[k].max_rise);
    length.push_back(results[k].success ? results[k].success_time : results[k].seconds);
    if (results[k].model_calls) chunk_ms.push_back(1e3 * results[k].model_seconds / results[k].model_calls);
  }
  auto summary_json = [](const std::vector<double>& x) {
    if (x.size() < 2) return nlohmann::json(nullptr);
    const Summary s = summarize(x);
    return nlohmann::json{{"mean", s.mean}, {"sd", s.sd}, {"ci_low", s.ci_lo}, {"ci_high", s.ci_hi}, {"n", s.n}};
  };
  const int batch = run.value("batch", 1);
  nlohmann::json report = {{"checkpoint", run.at("checkpoint")},
                           {"robot", run.at("robot")},
                           {"episodes", episodes},
                           {"first_seed", run.at("first_seed")},
                           {"batch", batch},
                           {"shard", run.at("shard")},
                           {"wall_seconds", wall_seconds},
                           {"episodes_run", episodes_run},
                           {"episodes_per_minute", wall_seconds > 0 ? nlohmann::json(60.0 * episodes_run / wall_seconds)
                                                                    : nlohmann::json(nullptr)},
                           {"success_known", known},
                           {"successes", successes},
                           {"success_rate", episodes ? double(successes) / episodes : 0.0},
                           {"success_ci95", {rate.lo, rate.hi}},
                           {"cube_lift_m", summary_json(cube_lift)},
                           {"ee_lift_rise_m", summary_json(ee_rise)},
                           {"lifted_episodes", ee_rise.size()},
                           {"time_to_success_or_end_s", summary_json(length)},
                           {"ms_per_chunk", summary_json(chunk_ms)},
                           {"per_episode", per_episode}};
  std::ofstream(out / "eval.json") << report.dump(2) << "\n";

  // Plots: end-effector height of every episode; cube lift per episode.
  LinePlot heights{"End-effector height per episode", "time (s)", "height (m)"};
  for (size_t k = 0; k < results.size(); ++k) {
    std::vector<double> t, z;
    for (const RolloutStep& s : results[k].steps) t.push_back(s.time), z.push_back(s.end_effector.position[2]);
    Series& series = heights.add("", t, z);
    series.colour = results[k].success ? Rgb{40, 120, 200} : Rgb{220, 80, 60};
  }
  heights.title += known ? " (blue: success, red: failure)" : "";
  heights.save((out / "ee_height.png").string());
  BarChart lift_chart{"Cube lift per episode", "metres"};
  BarChart::Group group{"max cube lift", {}, {}};
  for (size_t k = 0; k < results.size(); ++k) {
    lift_chart.categories.push_back(std::to_string(results[k].seed));
    group.values.push_back(results[k].max_cube_lift);
  }
  lift_chart.groups.push_back(group);
  lift_chart.save((out / "lift.png").string(), 1000, 420);

  if (known)
    std::printf("success %d/%d = %.0f%% (95%% CI %.0f–%.0f%%)\n", successes, episodes, 100.0 * successes / episodes,
                100 * rate.lo, 100 * rate.hi);
  if (cube_lift.size() >= 2 && known) {
    const Summary s = summarize(cube_lift);
    std::printf("cube lift %.3f ± %.3f m (mean ± sd)\n", s.mean, s.sd);
  }
  if (ee_rise.size() >= 2) {
    const Summary s = summarize(ee_rise);
    std::printf("end-effector lift (lift segment) %.3f ± %.3f m over %zu lifted episodes\n", s.mean, s.sd,
                ee_rise.size());
  }
  if (length.size() >= 2) {
    const Summary s = summarize(length);
    std::printf("episode length (to success, else to the end) %.2f ± %.2f s\n", s.mean, s.sd);
  }
  if (chunk_ms.size() >= 2)
    std::printf("policy: %.1f ms per %s\n", summarize(chunk_ms).mean, batch > 1 ? "batched policy call" : "action chunk");
  std::printf("wrote %s\n", (out / "eval.json").c_str());
}

// What makes two evaluations the same experiment: everything but the shard, the thread counts and where it ran.
// Parts of one sweep must agree on all of it (`merge` and `--resume` check, naming the field).
nlohmann::json eval_run_description(const ArgParser& args, const std::string& robot_name, const Shard& shard,
                                    const BatchOptions& batch) {
  nlohmann::json options;
  for (const char* key : {"task", "max-seconds", "after-success", "precision", "action-steps", "camera-map", "tokenizer",
                          "steer", "alpha", "op", "sae-mode", "scene", "sim-size", "sim-quality"})
    options[key] = args.get(key);
  const fs::path checkpoint(args.get("checkpoint"));
  return {{"command", "eval"},
          {"checkpoint", args.get("checkpoint")},
          {"weights", file_digest((checkpoint / "model.safetensors").string())},
          {"sets", args.get("sets").empty() ? std::string() : file_digest(args.get("sets"))},
          {"sae", args.get("sae").empty() ? std::string()
                                          : file_digest((fs::path(args.get("sae")) / "sae.safetensors").string())},
          {"robot", robot_name},
          {"first_seed", static_cast<uint64_t>(args.get_int64("seed"))},
          {"episodes", args.get_int("episodes")},
          {"batch", batch.lanes},
          {"options", options},
          {"shard", shard.text()}};
}

fs::path episode_file(const fs::path& out, int episode) {
  return out / "rollouts" / ("episode_" + std::to_string(episode) + ".json");
}

}  // namespace

int run_eval(int argc, char** argv) {
  ArgParser args("vlascope eval",
                 "Seeded closed-loop rollouts of a checkpoint through the robot interface (sim or the real arm):\n"
                 "success rate, cube and end-effector lift, episode length, latency; JSON, CSV, plots and videos.\n"
                 "Every finished episode is kept in <out>/rollouts/ at once, so --resume loses none, and --shard K/N\n"
                 "runs a share of the episodes that `vlascope merge` combines into the report of one run.");
  add_policy_options(args);
  add_episode_options(args);
  add_steering_options(args);
  add_live_option(args);
  add_robot_options(args);
  add_batch_options(args);
  add_workers_option(args);
  args.option("episodes", "50", "episodes; episode k resets the robot with seed + k");
  args.option("seed", "100000", "first seed (training data uses seeds from 0, so the default is unseen)");
  args.option("videos", "3", "write an MP4 of the first N episodes");
  args.option("shard", "0/1", "K/N: run only the episodes k with k mod N = K (0 ≤ K < N), for `vlascope merge`");
  args.flag("resume", "keep the episodes already in <out>/rollouts/ (same experiment, checked) and run the rest");
  args.required("out", "output directory");
  if (!args.parse(argc, argv)) return 0;
  const fs::path out(args.get("out"));
  const BatchOptions batch = batch_options(args);
  const Shard shard = parse_shard(args.get("shard"));
  require(batch.lanes == 1 || !args.get_flag("live"), "--live shows one episode at a time: leave out --batch");
  const int episodes = args.get_int("episodes"), videos = args.get_int("videos");
  require(episodes >= 1, "--episodes must be at least 1");
  require(videos >= 0, "--videos must be ≥ 0, got " + args.get("videos"));
  require(args.get_int64("seed") >= 0, "--seed must be ≥ 0, got " + args.get("seed"));
  RolloutOptions options = rollout_options(args);  // checks its options before any worker starts
  if (run_in_workers(args, "eval", episodes)) return 0;
  const uint64_t seed0 = static_cast<uint64_t>(args.get_int64("seed"));
  std::unique_ptr<Policy> policy = load_policy(args);
  // One robot (the real arm, or one simulator) is made here; --batch makes a simulator per lane on its thread.
  std::shared_ptr<Robot> robot = make_robot(args);
  const std::unique_ptr<Steering> steering = steering_from(args, *policy);
  const std::unique_ptr<SplicedSae> sae = sae_splice_from(args, *policy);

  // The experiment's description; a resumed run must be the same experiment.
  const nlohmann::json run = eval_run_description(args, robot->name(), shard, batch);
  std::map<int, RolloutResult> finished;
  for (int k : start_or_resume(out, run, shard, args.get_flag("resume"), episodes,
                               [&](int k) { return episode_file(out, k); }))
    finished.emplace(k, read_rollout_file(episode_file(out, k).string()));
  if (args.get_flag("resume")) std::printf("resume: %zu finished episodes kept from %s\n", finished.size(), (out / "rollouts").c_str());

  std::vector<int> todo;  // episode indices this process runs
  std::vector<uint64_t> seeds;
  for (int k = 0; k < episodes; ++k)
    if (shard.owns(k) && !finished.count(k)) {
      todo.push_back(k);
      seeds.push_back(seed0 + static_cast<uint64_t>(k));
    }
  const std::unique_ptr<LiveView> live = make_live_view(args, *policy, out, robot->control_hz());
  const double control_hz = robot->control_hz();
  const std::vector<std::string> camera_names = robot->camera_names();

  std::vector<std::unique_ptr<VideoWriter>> video(todo.size());
  options.frames_every_step = true;  // for the episodes that have an observer (videos, the live view)
  RolloutCallbacks callbacks;
  callbacks.start = [&](int i) -> RolloutObserver {
    const int k = todo[static_cast<size_t>(i)];
    if (k < videos)
      video[static_cast<size_t>(i)] = std::make_unique<VideoWriter>(
          (out / ("episode_" + std::to_string(k) + ".mp4")).string(), control_hz);
    VideoWriter* v = video[static_cast<size_t>(i)].get();
    if (!v && !live) return {};
    return [&, v, k](int, const Observation& obs, const RolloutStep& step) {
      if (live) live->show(obs, step);
      if (!v) return true;
      char caption[128];
      std::snprintf(caption, sizeof caption, "seed %llu  t %.1fs  ee z %.3f m%s",
                    static_cast<unsigned long long>(seed0 + k), step.time, step.end_effector.position[2],
                    step.task && step.task->success ? "  SUCCESS" : "");
      v->write(video_frame(obs, camera_names, caption));
      return true;
    };
  };
  ProgressBar bar("eval", static_cast<int64_t>(todo.size()), "episodes");
  int successes = 0, done = 0;
  for (const auto& [k, r] : finished) successes += r.success;
  callbacks.done = [&](int i, const RolloutResult& r) {
    if (video[static_cast<size_t>(i)]) video[static_cast<size_t>(i)]->close();
    write_rollout_file(episode_file(out, todo[static_cast<size_t>(i)]).string(), r);
    successes += r.success;
    char status[64];
    std::snprintf(status, sizeof status, "success %d/%d", successes, ++done + static_cast<int>(finished.size()));
    bar.set_status(status);
    bar.advance();
  };
  const auto wall0 = std::chrono::steady_clock::now();
  std::vector<RolloutResult> ran = run_rollouts(lane_robots(args, robot), *policy, seeds, options, batch, callbacks);
  const double wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  bar.finish();
  for (size_t i = 0; i < todo.size(); ++i) finished.emplace(todo[i], std::move(ran[i]));

  std::vector<RolloutResult> results;
  for (auto& [k, r] : finished) results.push_back(std::move(r));
  write_eval_report(out, run, results, wall_seconds, static_cast<int>(todo.size()));
  std::printf("%zu episodes in %.1f s of wall time: %.1f episodes/min (--batch %d, %d simulation thread%s)%s\n",
              todo.size(), wall_seconds, 60.0 * static_cast<double>(todo.size()) / std::max(1e-9, wall_seconds),
              batch.lanes, batch.threads, batch.threads == 1 ? "" : "s",
              shard.count > 1 ? ("; shard " + shard.text() + ": combine the shards with `vlascope merge`").c_str() : "");
  if (live) std::printf("live view: %.1f ms per frame (%s)\n", live->ms_per_frame(), live->window() ? "window" : "live.mp4");
  if (live) live->print_mirror_gap();
  return 0;
}

void merge_eval_shards(const ShardedRun& shards, const fs::path& out, std::optional<RunTime> time) {
  const int episodes = shards.run.at("episodes").get<int>();
  const uint64_t seed0 = shards.run.at("first_seed").get<uint64_t>();
  std::vector<RolloutResult> results;
  double wall_seconds = 0;
  for (int k = 0; k < episodes; ++k) {
    const std::string& dir = shards.dir_of(k);
    const fs::path file = episode_file(dir, k);
    require(fs::exists(file), "merge: episode " + std::to_string(k) + " (seed " + std::to_string(seed0 + k) +
                                  ") is missing from " + dir + ": that shard did not finish; run it again with --resume");
    results.push_back(read_rollout_file(file.string()));
    require(results.back().seed == seed0 + static_cast<uint64_t>(k),
            "merge: " + file.string() + " holds seed " + std::to_string(results.back().seed) + ", expected " +
                std::to_string(seed0 + k));
    wall_seconds += results.back().wall_seconds;
  }
  fs::create_directories(out);
  nlohmann::json run = shards.run;
  run["shard"] = "merged from " + std::to_string(shards.count);
  std::ofstream(out / "run.json") << run.dump(2) << "\n";
  if (time)
    write_eval_report(out, run, results, time->wall_seconds, static_cast<int>(time->rollouts_run));
  else
    write_eval_report(out, run, results, wall_seconds, episodes);  // wall time: the shards' episodes, summed
}

int run_rollout_command(int argc, char** argv) {
  ArgParser args("vlascope rollout",
                 "One closed-loop episode of a checkpoint on the robot (sim or the real arm): video, end-effector\n"
                 "trajectory (CSV) and its lift segment.");
  add_policy_options(args);
  add_episode_options(args);
  add_steering_options(args);
  add_live_option(args);
  add_robot_options(args);
  args.option("seed", "100000", "episode seed");
  args.required("out", "output directory");
  if (!args.parse(argc, argv)) return 0;
  const fs::path out(args.get("out"));
  fs::create_directories(out);
  std::unique_ptr<Policy> policy = load_policy(args);
  std::unique_ptr<Robot> robot = make_robot(args);
  const std::unique_ptr<Steering> steering = steering_from(args, *policy);
  const std::unique_ptr<SplicedSae> sae = sae_splice_from(args, *policy);
  const std::unique_ptr<LiveView> live = make_live_view(args, *policy, out, robot->control_hz());
  VideoWriter video((out / "rollout.mp4").string(), robot->control_hz());
  const uint64_t seed = static_cast<uint64_t>(args.get_int64("seed"));
  RolloutOptions options = rollout_options(args);
  options.frames_every_step = true;  // the video
  RolloutResult r = run_rollout(*robot, *policy, seed, options,
                                [&](int, const Observation& obs, const RolloutStep& step) {
                                  if (live) live->show(obs, step);
                                  char caption[96];
                                  std::snprintf(caption, sizeof caption, "t %.1fs  ee z %.3f m", step.time,
                                                step.end_effector.position[2]);
                                  video.write(video_frame(obs, robot->camera_names(), caption));
                                  return true;
                                });
  video.close();
  std::ofstream csv(out / "trajectory.csv");
  csv << "time,ee_x,ee_y,ee_z,gripper,model_ran\n";
  for (const RolloutStep& s : r.steps)
    csv << s.time << "," << s.end_effector.position[0] << "," << s.end_effector.position[1] << ","
        << s.end_effector.position[2] << "," << s.state[kGripper] << "," << s.model_ran << "\n";
  const LiftSegment lift = find_lift_segment(r.ee_trajectory());
  if (live)
    std::printf("live view: %.1f ms per frame; control loop %.1f steps/s of wall time (%s)\n", live->ms_per_frame(),
                r.steps.size() / std::max(1e-9, r.wall_seconds), live->window() ? "window" : "live.mp4");
  if (live) live->print_mirror_gap();
  std::printf("%s; %.1f s, %d chunks at %.1f ms; %s\n",
              r.success_known ? (r.success ? "success" : "failure") : "no task state (real arm)", r.seconds,
              r.model_calls, r.model_calls ? 1e3 * r.model_seconds / r.model_calls : 0.0, lift.describe().c_str());
  std::printf("wrote %s\n", out.c_str());
  return 0;
}

}  // namespace vlascope
