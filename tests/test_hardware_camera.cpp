// Cameras: spec parsing, missing devices, frames with timestamps at the configured size (a video file
// stands in for a device), and frozen cameras (no new frames; identical frames) as Errors naming the camera.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/error.h"
#include "common/image_io.h"
#include "hardware/camera.h"

namespace vlascope {
namespace {

namespace fs = std::filesystem;

TEST(CameraSpecs, ParsesNamesDevicesSizesAndRates) {
  auto cams = parse_camera_specs(
      "scene=0,wrist=/dev/video2:320x240@15,top=/dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0@60");
  ASSERT_EQ(cams.size(), 3u);
  EXPECT_EQ(cams[0].name, "scene");
  EXPECT_EQ(cams[0].device, "0");
  EXPECT_EQ(cams[0].width, 640);
  EXPECT_EQ(cams[0].height, 480);
  EXPECT_DOUBLE_EQ(cams[0].fps, 30);
  EXPECT_EQ(cams[1].device, "/dev/video2");
  EXPECT_EQ(cams[1].width, 320);
  EXPECT_EQ(cams[1].height, 240);
  EXPECT_DOUBLE_EQ(cams[1].fps, 15);
  EXPECT_EQ(cams[2].device, "/dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0");
  EXPECT_DOUBLE_EQ(cams[2].fps, 60);
  EXPECT_TRUE(parse_camera_specs("").empty());
  EXPECT_THROW(parse_camera_specs("wrist"), Error);
  EXPECT_THROW(parse_camera_specs("a=0,a=1"), Error);
  EXPECT_THROW(parse_camera_specs("a=0:0x0"), Error);
}

TEST(Camera, MissingDeviceIsAnErrorNamingIt) {
  for (const char* device : {"/dev/video_vlascope_missing", "63", "/nonexistent/clip.mp4"}) {
    CameraConfig c;
    c.name = "wrist";
    c.device = device;
    c.timeout_s = 0.5;
    try {
      Camera cam(c);
      FAIL() << device;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("camera 'wrist'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(device), std::string::npos) << e.what();
    }
  }
}

fs::path write_clip(const std::string& name, int frames, bool moving) {
  fs::path dir = fs::temp_directory_path() / ("vlascope_test_cam_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path path = dir / name;
  VideoWriter writer(path.string(), 30);
  for (int i = 0; i < frames; ++i) {
    Image img(64, 48, 3, 40);
    if (moving)
      for (int y = 10; y < 30; ++y)
        for (int x = 2 * i % 44; x < 2 * i % 44 + 20; ++x) img.at(x, y)[0] = 250;
    writer.write(img);
  }
  writer.close();
  return path;
}

TEST(Camera, DeliversFramesAtTheConfiguredSizeWithTimestampsThenReportsTheStall) {
  const fs::path clip = write_clip("moving.mp4", 12, true);
  CameraConfig c;
  c.name = "scene";
  c.device = clip.string();
  c.width = 32;
  c.height = 24;
  c.fps = 30;
  c.timeout_s = 0.3;
  Camera cam(c);
  double last = 0;
  int64_t last_index = 0;
  for (int i = 0; i < 6; ++i) {
    CameraFrame f = cam.read();
    EXPECT_EQ(f.image.width, 32);
    EXPECT_EQ(f.image.height, 24);
    EXPECT_EQ(f.image.channels, 3);
    EXPECT_GT(f.timestamp, last);
    EXPECT_GT(f.index, last_index);
    last = f.timestamp;
    last_index = f.index;
  }
  // Red (R channel high) square: the frames are RGB, not OpenCV's BGR.
  CameraFrame f = cam.latest();
  int red = 0;
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 32; ++x) red += f.image.at(x, y)[0] > 150 && f.image.at(x, y)[2] < 100;
  EXPECT_GT(red, 20);
  EXPECT_GT(cam.measured_fps(), 5);
  EXPECT_LT(cam.measured_fps(), 45);
  // The clip ends: no new frames → an error naming the camera, within the timeout.
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  try {
    cam.latest();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("camera 'scene'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no new frame"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cam.read(), Error);
}

TEST(Camera, IdenticalFramesMeanAFrozenCamera) {
  const fs::path clip = write_clip("still.mp4", 20, false);
  CameraConfig c;
  c.name = "wrist";
  c.device = clip.string();
  c.width = 64;
  c.height = 48;
  c.max_identical_frames = 5;
  Camera cam(c);
  bool frozen = false;
  for (int i = 0; i < 15 && !frozen; ++i) {
    try {
      cam.read();
    } catch (const Error& e) {
      frozen = std::string(e.what()).find("frozen") != std::string::npos;
      EXPECT_NE(std::string(e.what()).find("camera 'wrist'"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(frozen);
}

}  // namespace
}  // namespace vlascope
