// Headless rendering of MuJoCo cameras through OSMesa (software OpenGL), no display needed.
//
// One Renderer owns one OSMesa context with MuJoCo's GPU-side copy of the model (mjrContext) and a scene
// (mjvScene). It renders any camera of the model at any size: RGB, depth in metres along the optical axis, and
// per-pixel geom ids (MuJoCo's segmentation mode). A context belongs to the thread that uses it; a Renderer makes
// itself current before every frame, so several renderers can live in one thread.
//
// Quality: kFast (training data, benchmarks) renders without shadows, reflections or multisampling;
// kNice (figures) turns on shadows, reflections and 4× multisampling and is ~5–10× slower in software GL.
// Depth and segmentation are exact only without multisampling; the Simulator takes them from a fast renderer.
//
// MuJoCo draws bottom-up; every output here is top row first, like vlascope::Image.
#pragma once

#include <mujoco/mujoco.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/image.h"

namespace vlascope {

enum class RenderQuality { kFast, kNice };
const char* quality_name(RenderQuality quality);
RenderQuality parse_quality(const std::string& name);  // "fast" | "nice"; throws Error otherwise

class Renderer {
 public:
  // The model must outlive the renderer. width/height: the largest frame expected (grows on demand).
  Renderer(const mjModel* model, RenderQuality quality, int width = 0, int height = 0);
  ~Renderer();
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  RenderQuality quality() const { return quality_; }

  // Renders camera `camera_id` (-1: the free camera at the model's statistic centre) of the state in `data`
  // (kinematics must be current, e.g. after mj_forward or mj_step). Any output pointer may be null.
  //   rgb      width×height×3
  //   depth    width*height metres (distance along the camera axis; far plane where nothing is hit)
  void render(const mjData* data, int camera_id, int width, int height, Image* rgb, std::vector<float>* depth);

  // Geom id per pixel (-1 where no geom is seen). Rendered with lighting, textures and anti-aliasing off.
  void render_geom_ids(const mjData* data, int camera_id, int width, int height, std::vector<int32_t>* geom_ids);

 private:
  void make_current();
  void ensure_size(int width, int height);
  void update_scene(const mjData* data, int camera_id);

  const mjModel* model_;
  RenderQuality quality_;
  int buffer_width_ = 0, buffer_height_ = 0;
  void* gl_context_ = nullptr;  // OSMesaContext
  std::vector<unsigned char> gl_buffer_;
  mjvScene scene_;
  mjrContext context_;
  mjvOption options_;
  mjvCamera camera_;
  std::vector<unsigned char> readback_rgb_;
  std::vector<float> readback_depth_;
};

}  // namespace vlascope
