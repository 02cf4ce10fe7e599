// vlascope render: PNG frames and an MP4 of one episode, each camera shown as RGB beside its segmentation (and
// optionally depth). The episode comes from a dataset (its stored images; segmentation from the dataset, or from
// re-simulating the recorded actions if it has none) or is simulated fresh by the expert (nice quality by default).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "apps/commands.h"
#include "apps/sim_episodes.h"
#include "common/cli.h"
#include "common/error.h"
#include "common/image_io.h"
#include "common/progress.h"
#include "dataset/dataset.h"
#include "hardware/units.h"
#include "sim/segmentation.h"

namespace vlascope {

namespace {

struct Panel {  // what one camera shows at one frame
  Image rgb, segmentation;
  std::vector<float> depth;
};

// A legend of the segmentation classes, as wide as `width`.
Image segmentation_legend(int width) {
  Image legend(width, 16, 3, 20);
  int x = 4;
  for (int c = 1; c < kNumSegmentClasses; ++c) {
    put_text(legend, kSegmentClassNames[c], x, 12, 0.35, kSegmentColours[c].data());
    x += 8 + 7 * static_cast<int>(std::string(kSegmentClassNames[c]).size());
  }
  return legend;
}

// One row per camera: RGB | segmentation [| depth], each scaled to `display` pixels tall, then a caption.
Image compose(const std::vector<std::string>& cameras, const std::vector<Panel>& panels, int display,
              const std::string& caption) {
  std::vector<Image> rows;
  for (size_t c = 0; c < cameras.size(); ++c) {
    const Panel& p = panels[c];
    const int width = std::max(1, p.rgb.width * display / std::max(1, p.rgb.height));
    std::vector<Image> cells{resize(p.rgb, width, display, /*nearest=*/p.rgb.height < display / 2)};
    if (!p.segmentation.empty()) cells.push_back(resize(colorize_segmentation(p.segmentation), width, display, true));
    if (!p.depth.empty()) {  // nearest surface to 1 m beyond it, so the far plane does not wash out the scene
      const float nearest = *std::min_element(p.depth.begin(), p.depth.end());
      cells.push_back(
          resize(colormap(p.depth, p.rgb.width, p.rgb.height, nearest, nearest + 1.0f, false), width, display, true));
    }
    Image row = hstack(cells, 4);
    put_text(row, cameras[c], 6, 14);
    rows.push_back(row);
  }
  Image body = vstack(rows, 4);
  return with_caption(vstack({body, segmentation_legend(body.width)}), caption);
}

}  // namespace

int run_render(int argc, char** argv) {
  ArgParser args("vlascope render",
                 "Render one episode as PNG frames and an MP4: every camera's RGB beside its segmentation\n"
                 "(background, table, cube, gripper, arm), optionally with depth. Either from a dataset\n"
                 "(--dataset, --episode) or simulated fresh by the scripted expert (--variant, --seed).");
  args.required("out", "output directory (frames/frame_NNNNNN.png and episode.mp4)");
  args.option("dataset", "", "dataset directory to render an episode of");
  args.option("episode", "0", "episode index in --dataset");
  args.option("variant", "high", "expert variant for a fresh episode (high, low, fast, slow)");
  args.option("seed", "0", "seed of a fresh episode");
  args.option("cameras", "scene,wrist", "cameras of a fresh episode");
  args.option("size", "256", "image size of a fresh episode, N or WxH");
  args.option("quality", "nice", "render quality of a fresh episode: fast or nice");
  args.option("display", "256", "height of each panel in the output (pixels)");
  args.option("stride", "1", "write every n-th frame as PNG (the MP4 has all frames)");
  args.option("scene", "", "MJCF scene (default: scenes/pick_cube.xml)");
  args.flag("depth", "add a depth panel per camera (nearest surface … 1 m beyond)");
  args.flag("no-png", "write the MP4 only");
  if (!args.parse(argc, argv)) return 0;

  const std::string out = args.get("out");
  const int display = args.get_int("display"), stride = args.get_int("stride");
  const bool with_depth = args.get_flag("depth"), write_frames = !args.get_flag("no-png");
  require(display >= 32 && display <= 2048, "--display must be 32..2048");
  require(stride >= 1, "--stride must be at least 1");

  // Gather the episode: per frame, per camera panels, plus a caption.
  std::vector<std::string> cameras;
  std::vector<std::vector<Panel>> panels;
  std::vector<std::string> captions;
  double fps = 30;
  std::string title;

  if (!args.get("dataset").empty()) {
    DatasetReader reader(args.get("dataset"));
    const int episode = args.get_int("episode");
    require(episode >= 0 && episode < reader.num_episodes(), "--episode " + std::to_string(episode) + ": " +
                                                                 args.get("dataset") + " has " +
                                                                 std::to_string(reader.num_episodes()) + " episodes");
    const EpisodeInfo& info = reader.info(episode);
    cameras = info.cameras;
    fps = info.fps;
    title = "episode " + std::to_string(episode) + "  " + info.variant + "  seed " + std::to_string(info.seed);
    const int n = reader.num_frames(episode);
    ProgressBar bar("load", n, "frames");
    // Without stored segmentation (or when depth is asked), re-simulate the recorded actions to render them.
    std::unique_ptr<Simulator> sim;
    const Frame first = reader.frame(episode, 0, true, true);
    const bool need_sim = with_depth || first.segmentation.size() < cameras.size();
    if (need_sim) {
      require(info.robot == "sim", reader.path(episode) + " was recorded on '" + info.robot +
                                       "' and stores no segmentation; nothing to render it from");
      SimOptions base;
      base.cameras = {};
      base.scene = args.get("scene");
      sim = std::make_unique<Simulator>(sim_options_from(info, base));
      sim->reset(info.seed);
    }
    for (int k = 0; k < n; ++k) {
      Frame frame = reader.frame(episode, k, true, true);
      std::vector<Panel> row;
      for (const std::string& camera : cameras) {
        Panel p;
        p.rgb = frame.images.at(camera);
        if (auto it = frame.segmentation.find(camera); it != frame.segmentation.end()) p.segmentation = it->second;
        if (sim) {
          RenderRequest request;
          request.rgb = false;
          request.segmentation = p.segmentation.empty();
          request.depth = with_depth;
          RenderOutput r = sim->render(camera, p.rgb.width, p.rgb.height, request);
          if (request.segmentation) p.segmentation = std::move(r.segmentation);
          p.depth = std::move(r.depth);
        }
        row.push_back(std::move(p));
      }
      if (sim) {
        JointVector action;
        for (int j = 0; j < kNumJoints; ++j) action[j] = frame.action[j];
        sim->act(from_lerobot(action));
      }
      panels.push_back(std::move(row));
      char caption[160];
      std::snprintf(caption, sizeof caption, "%s   t %.2f s   %s", title.c_str(), frame.timestamp,
                    phase_name(frame.phase));
      captions.push_back(caption);
      bar.advance();
    }
  } else {
    SimOptions options;
    options.scene = args.get("scene");
    options.cameras = args.get_list("cameras");
    options.quality = parse_quality(args.get("quality"));
    parse_image_size(args.get("size"), "size", &options.image_width, &options.image_height);
    Simulator sim(options);
    cameras = options.cameras;
    fps = sim.control_hz();
    const ExpertParams params = expert_variant(args.get("variant"));
    const uint64_t seed = static_cast<uint64_t>(args.get_int64("seed"));
    title = params.variant + "  seed " + std::to_string(seed);
    ProgressBar bar("simulate", 1, "episodes");
    ExpertEpisode result =
        run_expert_episode(sim, params, seed, [&](int, const Observation& obs, const JointVector&, ExpertPhase phase) {
          std::vector<Panel> row;
          for (const std::string& camera : cameras) {
            Panel p;
            p.rgb = obs.images.at(camera);
            RenderRequest request;
            request.rgb = false;
            request.segmentation = true;
            request.depth = with_depth;
            RenderOutput r = sim.render(camera, p.rgb.width, p.rgb.height, request);
            p.segmentation = std::move(r.segmentation);
            p.depth = std::move(r.depth);
            row.push_back(std::move(p));
          }
          panels.push_back(std::move(row));
          char caption[160];
          std::snprintf(caption, sizeof caption, "%s   t %.2f s   %s", title.c_str(), obs.timestamp,
                        expert_phase_name(phase));
          captions.push_back(caption);
        });
    bar.advance();
    bar.finish();
    std::printf("simulated %s seed %llu: %d frames, success %s, cube lifted %.3f m\n", params.variant.c_str(),
                static_cast<unsigned long long>(seed), result.frames, result.success ? "yes" : "no",
                result.max_cube_lift);
  }

  std::filesystem::create_directories(std::filesystem::path(out) / "frames");
  const std::string video_path = (std::filesystem::path(out) / "episode.mp4").string();
  VideoWriter video(video_path, fps);
  int pngs = 0;
  ProgressBar bar("render", static_cast<int64_t>(panels.size()), "frames");
  for (size_t k = 0; k < panels.size(); ++k) {
    Image image = compose(cameras, panels[k], display, captions[k]);
    video.write(image);
    if (write_frames && k % stride == 0) {
      char name[64];
      std::snprintf(name, sizeof name, "frame_%06zu.png", k);
      write_png((std::filesystem::path(out) / "frames" / name).string(), image);
      ++pngs;
    }
    bar.advance();
  }
  video.close();
  bar.finish();
  std::printf("%s: %d frames (%d PNG in %s/frames)\n", video_path.c_str(), video.frames(), pngs, out.c_str());
  return 0;
}

}  // namespace vlascope
