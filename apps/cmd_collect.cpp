// vlascope collect: scripted pick-and-lift demonstrations, simulated and rendered, written to a dataset directory.
//
// Attempt k uses seed (--seed + k) and variant variants[k % n], whatever the thread count, so a dataset is a
// function of its options. Episodes are written in attempt order; with --resume a collection continues after the
// last attempt stored in the directory (its "collect.attempt" scalar).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "apps/commands.h"
#include "apps/sim_episodes.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/plot.h"
#include "common/progress.h"
#include "dataset/dataset.h"

namespace vlascope {

namespace {

struct VariantTally {
  int attempts = 0, successes = 0, written = 0;
  double lift_sum = 0, duration_sum = 0;
};

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
  if (reader.num_episodes() > 0) {
    require(reader.info(0).cameras == cameras, directory + " holds other cameras than --cameras; resume with the same");
    const Frame first = reader.frame(0, 0);
    const Image& image = first.images.at(cameras.front());
    require(image.width == width && image.height == height, directory + " holds " + std::to_string(image.width) + "x" +
                                                                std::to_string(image.height) +
                                                                " images; resume with the same --size");
  }
  return next;
}

}  // namespace

int run_collect(int argc, char** argv) {
  ArgParser args("vlascope collect",
                 "Record scripted pick-and-lift demonstrations in the MuJoCo digital twin into an episode dataset\n"
                 "(one HDF5 file per episode, see dataset/README.md). States and actions are stored in LeRobot\n"
                 "units; every frame carries the expert's phase (reach, grasp, lift, hold) and the cube position.\n"
                 "Variants (high, low, fast, slow) share the instruction \"" +
                     std::string(kPickInstruction) + "\".");
  args.required("out", "dataset directory (created if missing)");
  args.option("episodes", "20", "episodes the dataset holds when done (failed attempts are skipped)");
  args.option("variants", "high,low,fast,slow", "expert variants, cycled attempt by attempt");
  args.option("seed", "0", "base seed: attempt k simulates seed + k");
  args.option("size", "128", "image size, N or WxH");
  args.option("cameras", "scene,wrist", "cameras to record");
  args.option("quality", "fast", "render quality: fast (training) or nice (shadows, reflections, anti-aliasing)");
  args.option("threads", "1", "simulation threads (each with its own simulator and OpenGL context)");
  args.option("noise", "1", "scale of the expert's per-episode variation (0 = nominal plans)");
  args.option("scene", "", "MJCF scene (default: scenes/pick_cube.xml)");
  args.option("plot", "", "write the cube height over time of the written episodes, coloured by variant, to this PNG");
  args.flag("segmentation", "also store the per-pixel segmentation of every camera (sim/segmentation.h)");
  args.flag("resume", "continue a collection in --out after its last stored attempt");
  args.flag("keep-failures", "also store episodes in which the expert failed (success = false)");
  if (!args.parse(argc, argv)) return 0;

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
