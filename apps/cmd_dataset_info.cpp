// vlascope dataset-info <dir>: what a dataset holds, and whether every file in it is sound.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/progress.h"
#include "dataset/dataset.h"

namespace vlascope {

namespace {

std::string size_text(const ImageSize& size) { return std::to_string(size.width) + "x" + std::to_string(size.height); }

// "a (3), b (1)", most frequent first.
std::string counts_text(const std::map<std::string, int>& counts) {
  std::vector<std::pair<std::string, int>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text;
  for (const auto& [name, n] : sorted) text += (text.empty() ? "" : ", ") + name + " (" + std::to_string(n) + ")";
  return text;
}

std::string percent(int part, int whole) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", whole ? 100.0 * part / whole : 0.0);
  return buffer;
}

}  // namespace

int run_dataset_info(int argc, char** argv) {
  ArgParser args("vlascope dataset-info",
                 "Summarise an episode dataset (episodes, frames, variants, success rate, cameras and image\n"
                 "sizes) and validate every file in it: structure, shapes and metadata, and unless --quick every\n"
                 "pixel (each image chunk carries a checksum). Exits with 1 if any file is damaged.");
  args.positional("directory", "dataset directory (episode_NNNNNN.h5 files)");
  args.flag("quick", "check structure, shapes and metadata only, not every pixel");
  if (!args.parse(argc, argv)) return 0;
  const std::string directory = args.get("directory");
  const bool every_pixel = !args.get_flag("quick");

  const std::vector<std::string> files = list_episode_files(directory);
  std::vector<std::string> temporaries;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    std::string name = entry.path().filename().string();
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".h5.tmp") == 0) temporaries.push_back(name);
  }

  std::vector<EpisodeSummary> episodes;
  std::vector<std::pair<std::string, std::string>> damaged;  // file, error
  {
    ProgressBar bar("validate", static_cast<int64_t>(files.size()), "files");
    for (const std::string& file : files) {
      try {
        episodes.push_back(validate_episode_file(file, every_pixel));
      } catch (const Error& e) {
        damaged.emplace_back(file, e.what());
      }
      bar.advance();
    }
  }

  int64_t frames = 0;
  double seconds = 0;
  int min_frames = 0, max_frames = 0, successes = 0;
  std::map<std::string, int> robots, sources, instructions, fps;
  std::map<std::string, std::pair<int, int>> variants;             // variant → (episodes, successes)
  std::map<std::string, std::map<std::string, int>> camera_sizes;  // camera → "WxH[ + segmentation WxH]" → n
  std::set<uint64_t> seeds;
  for (const EpisodeSummary& e : episodes) {
    frames += e.num_frames;
    seconds += e.num_frames / e.info.fps;
    min_frames = min_frames ? std::min(min_frames, e.num_frames) : e.num_frames;
    max_frames = std::max(max_frames, e.num_frames);
    successes += e.info.success;
    ++robots[e.info.robot.empty() ? "(none)" : e.info.robot];
    ++sources[e.info.source.empty() ? "(none)" : e.info.source];
    ++instructions["\"" + e.info.instruction + "\""];
    char rate[32];
    std::snprintf(rate, sizeof rate, "%g", e.info.fps);
    ++fps[rate];
    auto& v = variants[e.info.variant.empty() ? "(unlabelled)" : e.info.variant];
    ++v.first;
    v.second += e.info.success;
    seeds.insert(e.info.seed);
    for (const std::string& camera : e.info.cameras) {
      std::string text = size_text(e.image_sizes.at(camera));
      auto seg = e.segmentation_sizes.find(camera);
      if (seg != e.segmentation_sizes.end()) text += " + segmentation " + size_text(seg->second);
      ++camera_sizes[camera][text];
    }
  }

  const int n = static_cast<int>(episodes.size());
  std::printf("dataset       %s\n", directory.c_str());
  std::printf("files         %zu episode files: %d valid, %zu damaged (%s)\n", files.size(), n, damaged.size(),
              every_pixel ? "checked every pixel" : "--quick: structure only");
  if (n > 0) {
    std::printf("episodes      %d, %lld frames, %.1f s\n", n, static_cast<long long>(frames), seconds);
    std::printf("frames/ep     min %d, mean %.1f, max %d\n", min_frames, double(frames) / n, max_frames);
    std::printf("fps           %s\n", counts_text(fps).c_str());
    std::printf("success       %d/%d (%s)\n", successes, n, percent(successes, n).c_str());
    std::printf("variants      ");
    bool first = true;
    for (const auto& [name, v] : variants) {
      std::printf("%s%s %d (success %s)", first ? "" : ", ", name.c_str(), v.first, percent(v.second, v.first).c_str());
      first = false;
    }
    std::printf("\n");
    std::printf("robots        %s\n", counts_text(robots).c_str());
    std::printf("sources       %s\n", counts_text(sources).c_str());
    std::printf("seeds         %zu distinct\n", seeds.size());
    std::printf("instructions  %s\n", counts_text(instructions).c_str());
    if (camera_sizes.empty()) std::printf("cameras       none\n");
    for (const auto& [camera, sizes] : camera_sizes)
      std::printf("camera        %s: %s\n", camera.c_str(), counts_text(sizes).c_str());
  }
  if (!temporaries.empty())
    std::printf("temporaries   %zu stale (%s%s): interrupted writes, removed by the next writer\n", temporaries.size(),
                temporaries.front().c_str(), temporaries.size() > 1 ? ", ..." : "");
  for (const auto& [file, error] : damaged) std::printf("DAMAGED       %s\n", error.c_str());
  if (!damaged.empty()) {
    std::fprintf(stderr, "vlascope dataset-info: %zu of %zu episode files are damaged\n", damaged.size(), files.size());
    return 1;
  }
  return 0;
}

}  // namespace vlascope
