// vlascope collect: scripted pick-and-lift demonstrations, simulated and rendered, written to a dataset directory.
//
// Attempt k uses seed (--seed + k) and variant variants[k % n], whatever the thread count, so a dataset is a
// function of its options. Episodes are written in attempt order; with --resume a collection continues after the
// last attempt stored in the directory (its "collect.attempt" scalar).
//
// With --robot so100 the demonstrations are teleoperated on the real arm instead (a leader arm moved by hand, the
// follower copying it through hardware/teleop.h) and stored in the same format, labelled with --variant.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "apps/commands.h"
#include "apps/robot_factory.h"
#include "apps/sim_episodes.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/image_io.h"
#include "common/plot.h"
#include "common/progress.h"
#include "dataset/dataset.h"
#include "hardware/stop_signal.h"
#include "hardware/teleop.h"

namespace vlascope {

namespace {

struct VariantTally {
  int attempts = 0, successes = 0, written = 0;
  double lift_sum = 0, duration_sum = 0;
};

// Episodes added to a dataset must have its cameras and image size (training batches them together).
void check_same_images(const std::string& directory, const DatasetReader& reader,
                       const std::vector<std::string>& cameras, int width, int height, const std::string& verb) {
  if (reader.num_episodes() == 0) return;
  require(reader.info(0).cameras == cameras,
          directory + " holds other cameras than --cameras; " + verb + " with the same");
  const Frame first = reader.frame(0, 0);
  const Image& image = first.images.at(cameras.front());
  require(image.width == width && image.height == height, directory + " holds " + std::to_string(image.width) + "x" +
                                                              std::to_string(image.height) + " images; " + verb +
                                                              " with the same --size");
}

// Where a resumed collection continues: one past the largest attempt already stored.
int next_attempt(const std::string& directory, uint64_t base_seed, const std::vector<std::string>& cameras, int width,
                 int height) {
  DatasetReader reader(directory);
  int next = 0;
  for (int e = 0; e < reader.num_episodes(); ++e) {
    const EpisodeInfo& info = reader.info(e);
    auto attempt = info.scalars.find("collect.attempt");
    auto seed = info.scalars.find("collect.base_seed");
    require(attempt != info.scalars.end() && seed != info.scalars.end(),
            reader.path(e) + " was not written by `vlascope collect` (no collect.attempt); cannot resume");
    require(static_cast<uint64_t>(seed->second) == base_seed, directory + " was collected with --seed " +
                                                                  std::to_string(static_cast<uint64_t>(seed->second)) +
                                                                  "; resume with the same seed");
    next = std::max(next, static_cast<int>(attempt->second) + 1);
  }
  check_same_images(directory, reader, cameras, width, height, "resume");
  return next;
}

// The --robot value on the command line ("sim" when absent), read before parsing: the two kinds of collection
// take different options.
std::string requested_robot(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--robot") && i + 1 < argc) return argv[i + 1];
    if (!std::strncmp(argv[i], "--robot=", 8)) return argv[i] + 8;
  }
  return "sim";
}

// Lines typed on stdin, read without blocking: the follower must keep following the leader (and the watchdog
// keep being fed) while the operator decides when to start or stop.
class TypedLines {
 public:
  // A complete line if one has been typed, else nullopt (also once input has ended).
  std::optional<std::string> poll() {
    read_available();
    const size_t newline = buffer_.find('\n');
    if (newline == std::string::npos) return std::nullopt;
    std::string line = buffer_.substr(0, newline);
    buffer_.erase(0, newline + 1);
    return line;
  }
  // Input has ended (/dev/null, a closed pipe) and every line has been taken: nobody will press Enter.
  bool ended() {
    read_available();
    return ended_ && buffer_.find('\n') == std::string::npos;
  }

 private:
  void read_available() {
    while (!ended_) {
      pollfd p{STDIN_FILENO, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) return;
      char chunk[256];
      const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) return;
      if (n <= 0) ended_ = true;
      else buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  std::string buffer_;
  bool ended_ = false;
};

// One dataset frame from a teleoperation tick: the follower's state and observation, the leader's position as the
// action (what LeRobot records), the cube unknown.
Frame teleop_frame(const TeleopTick& tick, int width, int height) {
  Frame frame;
  frame.timestamp = tick.time;
  for (int j = 0; j < kNumJoints; ++j) {
    frame.state[j] = static_cast<float>(tick.follower[j]);
    frame.action[j] = static_cast<float>(tick.leader[j]);
  }
  const Pose& ee = tick.observation->end_effector;
  for (int i = 0; i < 3; ++i) frame.ee_position[i] = static_cast<float>(ee.position[i]);
  for (int i = 0; i < 4; ++i) frame.ee_quaternion[i] = static_cast<float>(ee.quaternion[i]);
  frame.object_position.fill(std::numeric_limits<float>::quiet_NaN());
  for (const auto& [camera, image] : tick.observation->images) frame.images[camera] = resize(image, width, height);
  return frame;
}

int run_collect_so100(int argc, char** argv) {
  ArgParser args("vlascope collect --robot so100",
                 "Record teleoperated demonstrations on the real SO-100 into an episode dataset, in the format of the\n"
                 "simulated collection (dataset/README.md): a leader arm moved by hand, the follower copying it through\n"
                 "its safety chain (as `vlascope teleop`). States are the follower's readings, actions the leader's\n"
                 "positions (LeRobot units), the end effector comes from the simulator's kinematics, the cube position\n"
                 "is NaN (unknown). Episodes are appended to --out; each is labelled with --variant.\n"
                 "Per episode: Enter starts it (or, when stdin has ended, it starts by itself), a --countdown gives time\n"
                 "to take the leader, and it ends after --seconds or on Enter; then Enter keeps it, d + Enter discards\n"
                 "it. Between episodes the follower keeps following. Ctrl-C stops with the follower's torque off.");
  args.option("robot", "so100", "so100 here (sim: the scripted expert, `vlascope collect --help`)");
  add_robot_options(args, RobotOptions::kSo100Only);
  add_leader_options(args);
  args.required("out", "dataset directory (created if missing; episodes are appended)");
  args.required("variant", "label of the demonstrations, e.g. high, low, fast or slow");
  args.option("episodes", "10", "episodes to record");
  args.option("task", kPickInstruction, "instruction stored with the episodes");
  args.option("seconds", "20", "length of an episode (0: until Enter)");
  args.option("countdown", "3", "seconds from the start to the recording");
  args.option("size", "128", "stored image size, N or WxH (camera frames are resized; simulated datasets use 128)");
  if (!args.parse(argc, argv)) return 0;
  const std::string out = args.get("out"), variant = args.get("variant");
  const int episodes = args.get_int("episodes");
  const double seconds = args.get_double("seconds"), countdown = args.get_double("countdown");
  require(episodes > 0, "--episodes must be positive");
  require(seconds >= 0 && countdown >= 0, "--seconds and --countdown must not be negative");
  require(!variant.empty(), "--variant is empty");
  int width = 0, height = 0;
  parse_image_size(args.get("size"), "size", &width, &height);
  require(!args.get("cameras").empty(), "--robot so100: collect needs --cameras (the policy learns from images)");

  install_stop_signal_handler();
  So100Leader leader(leader_config_from(args));
  std::unique_ptr<So100Follower> follower = make_so100_follower(args);
  const std::vector<std::string> cameras = follower->camera_names();
  if (std::filesystem::exists(out) && !list_episode_files(out).empty())
    check_same_images(out, DatasetReader(out), cameras, width, height, "record");
  DatasetWriter writer(out);
  const int already = writer.num_episodes();
  std::fprintf(stderr, "collect: leader %s → follower %s at %.0f Hz, cameras %zu, variant '%s'; %s holds %d episodes\n",
               leader.arm().port().c_str(), follower->port().c_str(), follower->control_hz(), cameras.size(),
               variant.c_str(), out.c_str(), already);

  TypedLines typed;
  // Follows the leader for `duration` seconds (0: no limit), handing every tick to `record` if given. With
  // until_enter, a typed line ends it (and is returned), and so does the end of input.
  auto follow = [&](double duration, bool until_enter,
                    const std::function<void(const TeleopTick&)>& record) -> std::optional<std::string> {
    std::optional<std::string> line;
    TeleopOptions o;
    o.duration_s = duration;
    o.observe = static_cast<bool>(record);
    o.on_tick = [&](const TeleopTick& tick) {
      if (record) record(tick);
      if (!until_enter) return true;
      line = typed.poll();
      return !line && !typed.ended();
    };
    run_teleop(leader, *follower, o);
    return line;
  };

  int written = 0;
  try {
    while (written < episodes && !stop_requested()) {
      const int k = written + 1;
      if (!typed.ended()) {
        std::fprintf(stderr, "episode %d/%d: press Enter to start (the follower follows the leader meanwhile)\n", k,
                     episodes);
        follow(0, true, {});
      }
      require(seconds > 0 || !typed.ended(), "--seconds 0 ends episodes on Enter, but stdin has ended");
      for (int left = static_cast<int>(std::ceil(countdown)); left > 0 && !stop_requested(); --left) {
        std::fprintf(stderr, "episode %d/%d starts in %d…\n", k, episodes, left);
        follow(std::min(1.0, countdown - (left - 1)), false, {});
      }
      if (stop_requested()) break;
      if (seconds > 0)
        std::fprintf(stderr, "episode %d/%d: recording for %.0f s%s\n", k, episodes, seconds,
                     typed.ended() ? "" : " (Enter ends it sooner)");
      else
        std::fprintf(stderr, "episode %d/%d: recording until Enter\n", k, episodes);
      std::vector<Frame> frames;
      ProgressBar bar("episode " + std::to_string(k), static_cast<int64_t>(std::lround(seconds * follower->control_hz())),
                      "frames");
      const SafetyCounters before = follower->safety_counters();
      follow(seconds, !typed.ended(), [&](const TeleopTick& tick) {
        frames.push_back(teleop_frame(tick, width, height));
        bar.advance();
      });
      bar.finish();
      if (stop_requested()) break;
      require(!frames.empty(), "collect: episode " + std::to_string(k) + " recorded no frames");
      if (!typed.ended()) {
        std::fprintf(stderr, "episode %d/%d: %zu frames, %.1f s; Enter keeps it, d + Enter discards it\n", k,
                     episodes, frames.size(), frames.back().timestamp);
        const std::optional<std::string> answer = follow(0, true, {});
        if (answer && !answer->empty() && (answer->front() == 'd' || answer->front() == 'D')) {
          std::fprintf(stderr, "episode %d/%d discarded\n", k, episodes);
          continue;
        }
      }
      EpisodeInfo info;
      info.instruction = args.get("task");
      info.variant = variant;
      info.robot = follower->name();
      info.source = "teleop";
      info.seed = static_cast<uint64_t>(already + written);  // no randomisation on a real arm: the seed is a label
      info.success = true;  // the operator keeps demonstrations that did the task (training uses successful ones)
      info.fps = follower->control_hz();
      info.cameras = cameras;
      const SafetyCounters after = follower->safety_counters();  // how faithfully the follower copied the leader
      info.scalars["teleop.step_clamps"] = static_cast<double>(after.step_clamps - before.step_clamps);
      info.scalars["teleop.limit_clamps"] = static_cast<double>(after.limit_clamps - before.limit_clamps);
      info.scalars["teleop.overruns"] = static_cast<double>(after.overruns - before.overruns);
      writer.write(info, frames);
      ++written;
    }
  } catch (const Error&) {
    if (!stop_requested()) throw;
  }
  follower->stop();
  std::printf("%s: %d episodes written (%d now)\n", out.c_str(), written, already + written);
  if (stop_requested()) std::fprintf(stderr, "collect: stopped by Ctrl-C; follower torque is off\n");
  return 0;
}

}  // namespace

int run_collect(int argc, char** argv) {
  ArgParser args("vlascope collect",
                 "Record scripted pick-and-lift demonstrations in the MuJoCo digital twin into an episode dataset\n"
                 "(one HDF5 file per episode, see dataset/README.md). States and actions are stored in LeRobot\n"
                 "units; every frame carries the expert's phase (reach, grasp, lift, hold) and the cube position.\n"
                 "Variants (high, low, fast, slow) share the instruction \"" +
                     std::string(kPickInstruction) + "\".\n"
                     "With --robot so100: teleoperated demonstrations on the real arm (`vlascope collect --robot so100\n"
                     "--help`).");
  if (requested_robot(argc, argv) == "so100") return run_collect_so100(argc, argv);
  args.option("robot", "sim", "sim (the scripted expert in MuJoCo) or so100 (teleoperation on the real arm)");
  args.required("out", "dataset directory (created if missing)");
  args.option("episodes", "20", "episodes the dataset holds when done (failed attempts are skipped)");
  args.option("variants", "high,low,fast,slow", "expert variants, cycled attempt by attempt");
  args.option("seed", "0", "base seed: attempt k simulates seed + k");
  args.option("size", "128", "image size, N or WxH");
  args.option("cameras", "scene,wrist", "cameras to record");
  args.option("quality", "fast", "render quality: fast (training) or nice (shadows, reflections, anti-aliasing)");
  args.option("threads", "1", "simulation threads (each with its own simulator and OpenGL context)");
  args.option("noise", "1", "scale of the expert's per-episode variation (0 = nominal plans)");
  args.option("execution-noise", "0", "rad: targets sent while reaching drift from the recorded plan (DART; sim/expert.h)");
  args.option("scene", "", "MJCF scene (default: scenes/pick_cube.xml)");
  args.option("plot", "", "write the cube height over time of the written episodes, coloured by variant, to this PNG");
  args.flag("segmentation", "also store the per-pixel segmentation of every camera (sim/segmentation.h)");
  args.flag("resume", "continue a collection in --out after its last stored attempt");
  args.flag("keep-failures", "also store episodes in which the expert failed (success = false)");
  if (!args.parse(argc, argv)) return 0;
  require(args.get("robot") == "sim", "--robot: collect records with sim or so100, not '" + args.get("robot") + "'");

  const std::string out = args.get("out");
  const int episodes = args.get_int("episodes");
  const uint64_t base_seed = static_cast<uint64_t>(args.get_int64("seed"));
  const int threads = args.get_int("threads");
  const bool segmentation = args.get_flag("segmentation"), keep_failures = args.get_flag("keep-failures");
  require(episodes > 0, "--episodes must be positive");
  require(threads >= 1 && threads <= 64, "--threads must be 1..64");
  std::vector<ExpertParams> variants;
  for (const std::string& name : args.get_list("variants")) {
    variants.push_back(expert_variant(name));
    variants.back().noise = args.get_double("noise");
    variants.back().execution_noise = args.get_double("execution-noise");
  }
  require(!variants.empty(), "--variants is empty");
  SimOptions options;
  options.scene = args.get("scene");
  options.cameras = args.get_list("cameras");
  options.quality = parse_quality(args.get("quality"));
  parse_image_size(args.get("size"), "size", &options.image_width, &options.image_height);
  require(!options.cameras.empty(), "--cameras is empty");
  { Simulator check(options); }  // fails early, naming the scene or camera, before anything touches --out

  // Resume or start.
  int first_attempt = 0;
  if (std::filesystem::exists(out) && !list_episode_files(out).empty()) {
    const int existing = static_cast<int>(list_episode_files(out).size());
    require(args.get_flag("resume"), out + " already holds " + std::to_string(existing) +
                                         " episodes; pass --resume to continue it, or choose another --out");
    first_attempt = next_attempt(out, base_seed, options.cameras, options.image_width, options.image_height);
  }
  DatasetWriter writer(out);
  const int already = writer.num_episodes();
  if (already >= episodes) {
    std::printf("%s already holds %d episodes (asked for %d); nothing to do\n", out.c_str(), already, episodes);
    return 0;
  }
  const int wanted = episodes - already;
  // A bound on attempts so that a broken setup (every attempt failing) stops instead of running forever.
  const int max_attempts = first_attempt + 2 * wanted + 20;

  // Workers simulate attempts in any order; the main thread writes them in attempt order.
  std::mutex mutex;
  std::condition_variable ready;
  std::map<int, RecordedEpisode> done;
  std::optional<std::string> worker_error;
  std::atomic<int> next{first_attempt};
  std::atomic<bool> stop{false};
  auto worker = [&]() {
    try {
      Simulator sim(options);
      while (!stop) {
        const int attempt = next++;
        if (attempt >= max_attempts) break;
        const ExpertParams& params = variants[attempt % variants.size()];
        RecordedEpisode episode = record_expert_episode(sim, params, base_seed + attempt, segmentation);
        std::unique_lock<std::mutex> lock(mutex);
        // Keep at most a few finished episodes waiting (they hold all their images).
        ready.wait(lock, [&] { return stop || done.empty() || attempt < done.begin()->first + 2 * threads; });
        done.emplace(attempt, std::move(episode));
        ready.notify_all();
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mutex);
      worker_error = e.what();
      stop = true;
      ready.notify_all();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(worker);

  std::map<std::string, VariantTally> tally;
  LinePlot plot{"Cube height above the table in the written episodes", "time (s)", "cube centre height (m)"};
  std::map<std::string, int> plot_colour;
  int written = 0, attempts = 0, successes = 0;
  ProgressBar bar("collect", wanted, "episodes");
  try {
    for (int attempt = first_attempt; written < wanted && attempt < max_attempts; ++attempt) {
      RecordedEpisode episode;
      {
        std::unique_lock<std::mutex> lock(mutex);
        ready.wait(lock, [&] { return worker_error || done.count(attempt); });
        if (worker_error) throw Error("collect: " + *worker_error);
        episode = std::move(done.at(attempt));
        done.erase(attempt);
        ready.notify_all();
      }
      ++attempts;
      VariantTally& t = tally[episode.info.variant];
      ++t.attempts;
      t.successes += episode.info.success;
      if (episode.info.success || keep_failures) {
        episode.info.scalars["collect.attempt"] = attempt;
        episode.info.scalars["collect.base_seed"] = static_cast<double>(base_seed);
        writer.write(episode.info, episode.frames);
        ++written;
        ++t.written;
        t.lift_sum += episode.result.max_cube_lift;
        t.duration_sum += episode.result.duration;
        std::vector<double> time, height;
        for (const Frame& f : episode.frames) time.push_back(f.timestamp), height.push_back(f.object_position[2]);
        const int colour =
            plot_colour.emplace(episode.info.variant, static_cast<int>(plot_colour.size())).first->second;
        const bool first_of_variant = t.written == 1;
        Series& line = plot.add(first_of_variant ? episode.info.variant : "", time, height);
        line.colour = palette(colour);
        bar.advance();
      }
      successes += episode.info.success;
      char status[64];
      std::snprintf(status, sizeof status, "expert success %d/%d", successes, attempts);
      bar.set_status(status);
    }
  } catch (...) {
    stop = true;
    ready.notify_all();
    for (std::thread& t : pool) t.join();
    throw;
  }
  stop = true;
  ready.notify_all();
  for (std::thread& t : pool) t.join();
  bar.finish();

  std::printf("%s: %d episodes written (%d now), %d attempts, %.0f s\n", out.c_str(), written, already + written,
              attempts, bar.elapsed_seconds());
  std::printf("%-8s %9s %9s %8s %12s %12s\n", "variant", "attempts", "success", "written", "mean lift", "mean length");
  for (const auto& [name, t] : tally)
    std::printf("%-8s %9d %8.1f%% %8d %10.3f m %10.2f s\n", name.c_str(), t.attempts,
                100.0 * t.successes / std::max(1, t.attempts), t.written, t.lift_sum / std::max(1, t.written),
                t.duration_sum / std::max(1, t.written));
  if (!args.get("plot").empty() && written > 0) {
    plot.save(args.get("plot"));
    std::printf("plot: %s\n", args.get("plot").c_str());
  }
  require(written == wanted, "collect: stopped after " + std::to_string(attempts) + " attempts with only " +
                                 std::to_string(written) + " successful episodes");
  return 0;
}

}  // namespace vlascope
