// Cameras for the real arm: OpenCV capture by index (0, 1, …) or path (/dev/video2, /dev/v4l/by-id/…, or
// a video file for replay and tests), named like LeRobot's ("scene", "wrist"), with a size and frame rate.
// A capture thread keeps the newest frame with its timestamp, so reading never waits for the sensor.
//
// A camera that cannot be opened, stops delivering frames, or keeps delivering the same frame (frozen
// driver, lens cap on a dead sensor) is an Error naming the camera and its device.
//
//   auto cams = parse_camera_specs("scene=0,wrist=/dev/video2:640x480@30");
//   Camera wrist(cams[1]);
//   CameraFrame f = wrist.latest();   // RGB, f.timestamp on the steady clock
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/image.h"

namespace vlascope {

struct CameraConfig {
  std::string name;               // "scene", "wrist": the key in Observation::images
  std::string device;             // "0" (index) or a path
  int width = 640, height = 480;  // frames are delivered at this size (resized if the device differs)
  double fps = 30;
  double timeout_s = 1.0;         // no new frame for this long → frozen
  int max_identical_frames = 90;  // this many byte-identical frames in a row → frozen; 0 disables
};

// "name=device[:WxH][@fps]" entries, comma-separated. Throws Error naming the bad entry.
std::vector<CameraConfig> parse_camera_specs(const std::string& spec, const CameraConfig& defaults = {});

struct CameraFrame {
  Image image;           // RGB, width × height of the config
  double timestamp = 0;  // steady clock, seconds, when the frame arrived
  int64_t index = 0;     // frames delivered so far, from 1
};

class Camera {
 public:
  // Opens the device and waits (up to timeout_s) for the first frame. Throws Error naming the device.
  explicit Camera(CameraConfig config);
  ~Camera();
  Camera(const Camera&) = delete;
  Camera& operator=(const Camera&) = delete;

  const CameraConfig& config() const { return config_; }
  // The newest frame. Throws Error if it is older than timeout_s or the camera is frozen or gone.
  CameraFrame latest();
  // Waits for a frame newer than the last one returned (up to timeout_s). Throws Error like latest().
  CameraFrame read();
  double measured_fps() const;

 private:
  void run();
  [[noreturn]] void fail(const std::string& why) const;
  void check_health_locked(double now);

  CameraConfig config_;
  struct Capture;
  std::unique_ptr<Capture> capture_;
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  CameraFrame frame_;
  int64_t returned_index_ = 0;
  int identical_run_ = 0;
  std::string failure_;  // set by the capture thread when the device fails
  bool stop_ = false;
  bool is_device_ = false;
  double first_time_ = 0;
  std::thread thread_;
};

}  // namespace vlascope
