#include "sim/renderer.h"

#include <GL/osmesa.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/error.h"

namespace vlascope {

const char* quality_name(RenderQuality quality) { return quality == RenderQuality::kFast ? "fast" : "nice"; }

RenderQuality parse_quality(const std::string& name) {
  if (name == "fast") return RenderQuality::kFast;
  if (name == "nice") return RenderQuality::kNice;
  throw Error("unknown render quality '" + name + "' (expected fast or nice)");
}

Renderer::Renderer(const mjModel* model, RenderQuality quality, int width, int height)
    : model_(model), quality_(quality) {
  require(model != nullptr, "Renderer: no model");
  // llvmpipe hands every frame to its own rasteriser threads by default; for frames this small the hand-off costs
  // more than the drawing (scene 128²: 4.0 ms wall vs 3.1 ms drawn in the calling thread), and collection already
  // renders one simulator per thread. A user's own LP_NUM_THREADS wins.
  setenv("LP_NUM_THREADS", "0", /*overwrite=*/0);
  // Depth 24, stencil 8 (MuJoCo's shadows and reflections use the stencil buffer).
  gl_context_ = OSMesaCreateContextExt(OSMESA_RGBA, 24, 8, 0, nullptr);
  require(gl_context_ != nullptr, "OSMesa: cannot create an offscreen OpenGL context (is libosmesa6 installed?)");
  mjv_defaultScene(&scene_);
  mjr_defaultContext(&context_);
  mjv_defaultOption(&options_);
  mjv_defaultCamera(&camera_);
  // Exactly the size asked for (not the model's offwidth/offheight): MuJoCo clears the whole offscreen buffer every
  // frame, and in software GL a 640×480 clear costs more than drawing a 128² frame.
  ensure_size(width > 0 ? width : model->vis.global.offwidth, height > 0 ? height : model->vis.global.offheight);
}

Renderer::~Renderer() {
  if (gl_context_) {
    make_current();
    mjr_freeContext(&context_);
    mjv_freeScene(&scene_);
    OSMesaDestroyContext(static_cast<OSMesaContext>(gl_context_));
  }
}

void Renderer::make_current() {
  auto ctx = static_cast<OSMesaContext>(gl_context_);
  if (OSMesaGetCurrentContext() == ctx) return;
  bool ok = OSMesaMakeCurrent(ctx, gl_buffer_.data(), GL_UNSIGNED_BYTE, buffer_width_, buffer_height_);
  require(ok, "OSMesa: cannot make the offscreen context current");
}

// MuJoCo renders into an offscreen framebuffer of the model's <visual><global offwidth/offheight>; a bigger
// frame than that needs a new mjrContext. The model's visual settings are borrowed for the call and restored.
void Renderer::ensure_size(int width, int height) {
  if (width <= buffer_width_ && height <= buffer_height_) return;
  buffer_width_ = std::max(width, buffer_width_);
  buffer_height_ = std::max(height, buffer_height_);
  gl_buffer_.assign(static_cast<size_t>(buffer_width_) * buffer_height_ * 4, 0);
  auto ctx = static_cast<OSMesaContext>(gl_context_);
  require(OSMesaMakeCurrent(ctx, gl_buffer_.data(), GL_UNSIGNED_BYTE, buffer_width_, buffer_height_),
          "OSMesa: cannot make the offscreen context current");

  auto* m = const_cast<mjModel*>(model_);
  const mjVisual saved = m->vis;
  m->vis.global.offwidth = buffer_width_;
  m->vis.global.offheight = buffer_height_;
  if (quality_ == RenderQuality::kFast) {
    m->vis.quality.offsamples = 0;
    m->vis.quality.shadowsize = 0;
  } else {
    m->vis.quality.offsamples = std::max(m->vis.quality.offsamples, 4);
  }
  mjr_freeContext(&context_);
  mjr_makeContext(m, &context_, mjFONTSCALE_50);
  m->vis = saved;
  mjr_setBuffer(mjFB_OFFSCREEN, &context_);
  require(context_.currentBuffer == mjFB_OFFSCREEN, "MuJoCo: offscreen rendering is not supported by this OpenGL");

  if (!scene_.maxgeom) mjv_makeScene(model_, &scene_, 2000);
  scene_.flags[mjRND_SHADOW] = quality_ == RenderQuality::kNice;
  scene_.flags[mjRND_REFLECTION] = quality_ == RenderQuality::kNice;
  scene_.flags[mjRND_SKYBOX] = 1;  // cheap (~0.3 ms at 128²) and keeps the background from being black
}

void Renderer::update_scene(const mjData* data, int camera_id) {
  require(camera_id >= -1 && camera_id < model_->ncam, "Renderer: camera id " + std::to_string(camera_id) +
                                                           " out of range (the model has " +
                                                           std::to_string(model_->ncam) + " cameras)");
  if (camera_id >= 0) {
    camera_.type = mjCAMERA_FIXED;
    camera_.fixedcamid = camera_id;
  } else {
    camera_.type = mjCAMERA_FREE;
    for (int i = 0; i < 3; ++i) camera_.lookat[i] = model_->stat.center[i];
    camera_.distance = 1.5 * model_->stat.extent;
  }
  // mjv_updateScene only reads the state; its signature predates const-correctness.
  mjv_updateScene(model_, const_cast<mjData*>(data), &options_, nullptr, &camera_, mjCAT_ALL, &scene_);
}

namespace {

// Copies a bottom-up buffer of `channels` values per pixel into top-down order.
template <typename T>
void flip_rows(const T* src, T* dst, int width, int height, int channels) {
  const size_t row = static_cast<size_t>(width) * channels;
  for (int y = 0; y < height; ++y) std::memcpy(dst + y * row, src + (height - 1 - y) * row, row * sizeof(T));
}

}  // namespace

void Renderer::render(const mjData* data, int camera_id, int width, int height, Image* rgb, std::vector<float>* depth) {
  require(width > 0 && height > 0,
          "Renderer: image size must be positive, got " + std::to_string(width) + "x" + std::to_string(height));
  make_current();
  ensure_size(width, height);
  update_scene(data, camera_id);
  mjrRect viewport{0, 0, width, height};
  mjr_render(viewport, &scene_, &context_);
  const size_t n = static_cast<size_t>(width) * height;
  readback_rgb_.resize(n * 3);
  readback_depth_.resize(n);
  mjr_readPixels(rgb ? readback_rgb_.data() : nullptr, depth ? readback_depth_.data() : nullptr, viewport, &context_);
  if (rgb) {
    *rgb = Image(width, height, 3);
    flip_rows(readback_rgb_.data(), rgb->pixels.data(), width, height, 3);
  }
  if (depth) {
    // OpenGL's depth buffer holds z_buffer = (1/near − 1/z) / (1/near − 1/far) (perspective, no reversed Z in
    // MuJoCo 2.2); invert it to metres.
    const double extent = model_->stat.extent;
    const double znear = model_->vis.map.znear * extent, zfar = model_->vis.map.zfar * extent;
    depth->resize(n);
    for (int y = 0; y < height; ++y) {
      const float* src = readback_depth_.data() + static_cast<size_t>(height - 1 - y) * width;
      float* dst = depth->data() + static_cast<size_t>(y) * width;
      for (int x = 0; x < width; ++x) {
        double zb = src[x];
        dst[x] = static_cast<float>(znear / (1.0 - zb * (1.0 - znear / zfar)));
      }
    }
  }
}

void Renderer::render_geom_ids(const mjData* data, int camera_id, int width, int height,
                               std::vector<int32_t>* geom_ids) {
  require(width > 0 && height > 0, "Renderer: image size must be positive");
  make_current();
  ensure_size(width, height);
  update_scene(data, camera_id);
  unsigned char saved[mjNRNDFLAG];
  std::memcpy(saved, scene_.flags, sizeof(saved));
  scene_.flags[mjRND_SEGMENT] = 1;
  scene_.flags[mjRND_IDCOLOR] = 1;
  scene_.flags[mjRND_SHADOW] = 0;
  scene_.flags[mjRND_REFLECTION] = 0;
  scene_.flags[mjRND_SKYBOX] = 0;
  mjrRect viewport{0, 0, width, height};
  mjr_render(viewport, &scene_, &context_);
  std::memcpy(scene_.flags, saved, sizeof(scene_.flags));
  const size_t n = static_cast<size_t>(width) * height;
  readback_rgb_.resize(n * 3);
  mjr_readPixels(readback_rgb_.data(), nullptr, viewport, &context_);
  geom_ids->resize(n);
  for (int y = 0; y < height; ++y) {
    const unsigned char* src = readback_rgb_.data() + static_cast<size_t>(height - 1 - y) * width * 3;
    int32_t* dst = geom_ids->data() + static_cast<size_t>(y) * width;
    for (int x = 0; x < width; ++x) {
      // IDCOLOR encodes (segid + 1) in the colour's 24 bits; segid indexes the scene's geom list.
      int32_t segid = (src[3 * x] | src[3 * x + 1] << 8 | src[3 * x + 2] << 16) - 1;
      int32_t id = -1;
      if (segid >= 0 && segid < scene_.ngeom && scene_.geoms[segid].objtype == mjOBJ_GEOM)
        id = scene_.geoms[segid].objid;
      dst[x] = id;
    }
  }
}

}  // namespace vlascope
