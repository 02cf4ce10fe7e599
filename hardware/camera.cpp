#include "hardware/camera.h"

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "common/error.h"

namespace vlascope {

namespace {
double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

bool all_digits(const std::string& s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos; }
}  // namespace

std::vector<CameraConfig> parse_camera_specs(const std::string& spec, const CameraConfig& defaults) {
  std::vector<CameraConfig> out;
  if (spec.empty()) return out;
  // Device paths may contain ':' (/dev/v4l/by-path/pci-0000:00:14.0-…), so the optional size and rate are
  // taken from the end only.
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    const std::string item = spec.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    const std::string bad =
        "--cameras: cannot parse '" + item + "' (expected name=device[:WxH][@fps], e.g. wrist=/dev/video2:640x480@30)";
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) throw Error(bad);
    CameraConfig c = defaults;
    c.name = item.substr(0, eq);
    for (char ch : c.name)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') throw Error(bad);
    std::string device = item.substr(eq + 1);
    if (size_t at = device.rfind('@'); at != std::string::npos) {
      const std::string rate = device.substr(at + 1);
      char* end = nullptr;
      const double fps = std::strtod(rate.c_str(), &end);
      if (rate.empty() || *end != '\0' || !(fps > 0 && fps <= 1000))
        throw Error("--cameras: bad frame rate in '" + item + "'");
      c.fps = fps;
      device.resize(at);
    }
    if (size_t colon = device.rfind(':'); colon != std::string::npos) {
      const std::string size = device.substr(colon + 1);
      const size_t x = size.find('x');
      if (x != std::string::npos && x > 0 && all_digits(size.substr(0, x)) && all_digits(size.substr(x + 1))) {
        c.width = std::stoi(size.substr(0, x));
        c.height = std::stoi(size.substr(x + 1));
        if (!(c.width > 0 && c.height > 0 && c.width <= 8192 && c.height <= 8192))
          throw Error("--cameras: bad size in '" + item + "'");
        device.resize(colon);
      }
    }
    if (device.empty()) throw Error(bad);
    c.device = device;
    for (const CameraConfig& other : out)
      require(other.name != c.name, "--cameras: camera name '" + c.name + "' given twice");
    out.push_back(c);
  }
  return out;
}

struct Camera::Capture {
  cv::VideoCapture cap;
};

Camera::Camera(CameraConfig config) : config_(std::move(config)), capture_(std::make_unique<Capture>()) {
  const std::string& dev = config_.device;
  require(!config_.name.empty(), "camera with device '" + dev + "': no name");
  is_device_ = all_digits(dev) || dev.rfind("/dev/", 0) == 0;
  if (!is_device_ && dev.find("://") == std::string::npos && !std::filesystem::exists(dev))
    fail("no such file or device");
  bool opened = false;
  try {
    if (all_digits(dev))
      opened = capture_->cap.open(std::stoi(dev), cv::CAP_V4L2);
    else if (dev.rfind("/dev/", 0) == 0)
      opened = capture_->cap.open(dev, cv::CAP_V4L2);
    else
      opened = capture_->cap.open(dev, cv::CAP_ANY);
  } catch (const cv::Exception& e) {
    fail(std::string("cannot open: ") + e.what());
  }
  if (!opened || !capture_->cap.isOpened())
    fail(is_device_ ? "cannot open (unplugged? wrong index? `v4l2-ctl --list-devices` lists cameras)"
                    : "cannot open (no such file or unsupported format)");
  if (is_device_) {
    capture_->cap.set(cv::CAP_PROP_FOURCC, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'));
    capture_->cap.set(cv::CAP_PROP_FRAME_WIDTH, config_.width);
    capture_->cap.set(cv::CAP_PROP_FRAME_HEIGHT, config_.height);
    capture_->cap.set(cv::CAP_PROP_FPS, config_.fps);
    capture_->cap.set(cv::CAP_PROP_BUFFERSIZE, 1);
  }
  first_time_ = now_s();
  thread_ = std::thread([this] { run(); });
  std::unique_lock<std::mutex> lock(mutex_);
  const bool ok = arrived_.wait_for(lock, std::chrono::duration<double>(config_.timeout_s),
                                    [&] { return frame_.index > 0 || !failure_.empty(); });
  if (!ok || frame_.index == 0) {
    const std::string why = failure_.empty() ? "no frame within " + std::to_string(config_.timeout_s) + " s" : failure_;
    stop_ = true;
    lock.unlock();
    thread_.join();
    fail(why);
  }
}

Camera::~Camera() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Camera::fail(const std::string& why) const {
  throw Error("camera '" + config_.name + "' (" + config_.device + "): " + why);
}

void Camera::run() {
  cv::Mat bgr, rgb, sized;
  const double period = 1.0 / config_.fps;
  double next = now_s();
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
    }
    bool ok = false;
    try {
      ok = capture_->cap.read(bgr) && !bgr.empty();
    } catch (const cv::Exception& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      failure_ = std::string("capture failed: ") + e.what();
      arrived_.notify_all();
      return;
    }
    if (!ok) {
      std::lock_guard<std::mutex> lock(mutex_);
      failure_ = is_device_ ? "the device stopped delivering frames (unplugged?)" : "end of the video";
      arrived_.notify_all();
      return;
    }
    if (bgr.channels() == 1)
      cv::cvtColor(bgr, rgb, cv::COLOR_GRAY2RGB);
    else if (bgr.channels() == 4)
      cv::cvtColor(bgr, rgb, cv::COLOR_BGRA2RGB);
    else
      cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    if (rgb.cols != config_.width || rgb.rows != config_.height)
      cv::resize(rgb, sized, cv::Size(config_.width, config_.height), 0, 0, cv::INTER_AREA);
    else
      sized = rgb;
    Image image(config_.width, config_.height, 3);
    for (int y = 0; y < sized.rows; ++y) std::memcpy(image.at(0, y), sized.ptr(y), static_cast<size_t>(sized.cols) * 3);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (frame_.index > 0 && frame_.image.pixels == image.pixels)
        ++identical_run_;
      else
        identical_run_ = 0;
      frame_.image = std::move(image);
      frame_.timestamp = now_s();
      ++frame_.index;
    }
    arrived_.notify_all();
    if (!is_device_) {  // a file plays back at the camera's rate, not as fast as it decodes
      next += period;
      const double wait = next - now_s();
      if (wait > 0)
        std::this_thread::sleep_for(std::chrono::duration<double>(wait));
      else
        next = now_s();
    }
  }
}

void Camera::check_health_locked(double now) {
  if (config_.max_identical_frames > 0 && identical_run_ >= config_.max_identical_frames)
    fail("frozen: the last " + std::to_string(identical_run_ + 1) + " frames are identical");
  const double age = now - frame_.timestamp;
  if (age > config_.timeout_s) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "no new frame for %.2f s (frozen or disconnected)%s%s", age,
                  failure_.empty() ? "" : ": ", failure_.c_str());
    fail(buf);
  }
}

CameraFrame Camera::latest() {
  std::lock_guard<std::mutex> lock(mutex_);
  check_health_locked(now_s());
  returned_index_ = frame_.index;
  return frame_;
}

CameraFrame Camera::read() {
  std::unique_lock<std::mutex> lock(mutex_);
  arrived_.wait_for(lock, std::chrono::duration<double>(config_.timeout_s),
                    [&] { return frame_.index > returned_index_ || !failure_.empty(); });
  if (frame_.index <= returned_index_) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "no new frame within %.2f s (frozen or disconnected)%s%s", config_.timeout_s,
                  failure_.empty() ? "" : ": ", failure_.c_str());
    fail(buf);
  }
  check_health_locked(now_s());
  returned_index_ = frame_.index;
  return frame_;
}

double Camera::measured_fps() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const double span = frame_.timestamp - first_time_;
  return span > 0 ? static_cast<double>(frame_.index) / span : 0;
}

}  // namespace vlascope
