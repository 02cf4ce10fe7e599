#include "common/image_io.h"

#include <algorithm>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "common/error.h"

namespace vlascope {

namespace {

cv::Mat as_mat(const Image& image) {
  int type = image.channels == 1 ? CV_8UC1 : image.channels == 3 ? CV_8UC3 : CV_8UC4;
  return cv::Mat(image.height, image.width, type, const_cast<uint8_t*>(image.pixels.data()));
}

Image from_mat(const cv::Mat& mat) {
  cv::Mat continuous = mat.isContinuous() ? mat : mat.clone();
  Image image(continuous.cols, continuous.rows, continuous.channels());
  std::copy(continuous.data, continuous.data + image.pixels.size(), image.pixels.begin());
  return image;
}

cv::Mat to_bgr(const Image& image) {
  cv::Mat bgr;
  if (image.channels == 1)
    cv::cvtColor(as_mat(image), bgr, cv::COLOR_GRAY2BGR);
  else if (image.channels == 3)
    cv::cvtColor(as_mat(image), bgr, cv::COLOR_RGB2BGR);
  else
    cv::cvtColor(as_mat(image), bgr, cv::COLOR_RGBA2BGR);
  return bgr;
}

}  // namespace

void write_png(const std::string& path, const Image& image) {
  require(!image.empty(), "write_png: empty image for " + path);
  bool ok = false;
  try {
    ok = cv::imwrite(path, image.channels == 1 ? as_mat(image) : to_bgr(image));
  } catch (const cv::Exception& e) {
    throw Error("cannot write image " + path + ": " + e.what());
  }
  require(ok, "cannot write image " + path + " (does the folder exist?)");
}

Image read_png(const std::string& path) {
  cv::Mat bgr = cv::imread(path, cv::IMREAD_COLOR);
  require(!bgr.empty(), "cannot read image " + path);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return from_mat(rgb);
}

struct VideoWriter::Impl {
  cv::VideoWriter writer;
  int width = 0, height = 0;
};

VideoWriter::VideoWriter(const std::string& path, double fps) : impl_(new Impl), path_(path), fps_(fps) {}

VideoWriter::~VideoWriter() { close(); }

void VideoWriter::write(const Image& frame) {
  if (!impl_->writer.isOpened()) {
    // H.264 plays everywhere; fall back to MPEG-4 part 2 when FFmpeg has no H.264 encoder.
    for (const char* codec : {"avc1", "mp4v"}) {
      impl_->writer.open(path_, cv::VideoWriter::fourcc(codec[0], codec[1], codec[2], codec[3]), fps_,
                         cv::Size(frame.width, frame.height));
      if (impl_->writer.isOpened()) break;
    }
    require(impl_->writer.isOpened(), "cannot open video " + path_ + " for writing");
    impl_->width = frame.width;
    impl_->height = frame.height;
  }
  require(frame.width == impl_->width && frame.height == impl_->height,
          "video " + path_ + ": frame size " + std::to_string(frame.width) + "x" + std::to_string(frame.height) +
              " differs from the first frame's " + std::to_string(impl_->width) + "x" +
              std::to_string(impl_->height));
  impl_->writer.write(to_bgr(frame));
  ++frames_;
}

void VideoWriter::close() {
  if (impl_ && impl_->writer.isOpened()) impl_->writer.release();
}

Image resize(const Image& image, int width, int height, bool nearest) {
  cv::Mat out;
  cv::resize(as_mat(image), out, cv::Size(width, height), 0, 0, nearest ? cv::INTER_NEAREST : cv::INTER_LINEAR);
  return from_mat(out);
}

Image hstack(const std::vector<Image>& images, int gap) {
  int width = 0, height = 0;
  for (const Image& im : images) {
    width += im.width;
    height = std::max(height, im.height);
  }
  width += gap * std::max<int>(0, static_cast<int>(images.size()) - 1);
  Image out(width, height, 3);
  int x0 = 0;
  for (const Image& im : images) {
    Image rgb = im.channels == 3 ? im : grayscale_to_rgb(im);
    for (int y = 0; y < rgb.height; ++y)
      std::copy(rgb.at(0, y), rgb.at(0, y) + rgb.width * 3, out.at(x0, y));
    x0 += im.width + gap;
  }
  return out;
}

Image vstack(const std::vector<Image>& images, int gap) {
  int width = 0, height = 0;
  for (const Image& im : images) {
    height += im.height;
    width = std::max(width, im.width);
  }
  height += gap * std::max<int>(0, static_cast<int>(images.size()) - 1);
  Image out(width, height, 3);
  int y0 = 0;
  for (const Image& im : images) {
    Image rgb = im.channels == 3 ? im : grayscale_to_rgb(im);
    for (int y = 0; y < rgb.height; ++y) std::copy(rgb.at(0, y), rgb.at(0, y) + rgb.width * 3, out.at(0, y0 + y));
    y0 += im.height + gap;
  }
  return out;
}

Image grayscale_to_rgb(const Image& gray) {
  if (gray.channels == 3) return gray;
  Image out(gray.width, gray.height, 3);
  for (size_t i = 0; i < static_cast<size_t>(gray.width) * gray.height; ++i)
    for (int c = 0; c < 3; ++c) out.pixels[i * 3 + c] = gray.pixels[i * gray.channels];
  return out;
}

void put_text(Image& image, const std::string& text, int x, int y, double scale, const uint8_t rgb[3]) {
  cv::Mat mat = as_mat(image);  // shares the pixels
  cv::Scalar colour = rgb ? cv::Scalar(rgb[0], rgb[1], rgb[2]) : cv::Scalar(255, 255, 255);
  cv::putText(mat, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), 3, cv::LINE_AA);
  cv::putText(mat, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv::LINE_AA);
}

Image with_caption(const Image& image, const std::string& caption) {
  Image strip(image.width, 16, 3, 30);
  put_text(strip, caption, 3, 12, 0.38);
  return vstack({strip, image});
}

Image colormap(const std::vector<float>& values, int width, int height, float lo, float hi, bool jet) {
  require(values.size() == static_cast<size_t>(width) * height, "colormap: values do not match the size");
  if (lo == hi && !values.empty()) {
    auto [mn, mx] = std::minmax_element(values.begin(), values.end());
    lo = *mn;
    hi = *mx;
  }
  float span = hi > lo ? hi - lo : 1.0f;
  cv::Mat gray(height, width, CV_8UC1);
  for (int i = 0; i < width * height; ++i)
    gray.data[i] = static_cast<uint8_t>(std::clamp((values[i] - lo) / span, 0.0f, 1.0f) * 255.0f + 0.5f);
  cv::Mat bgr, rgb;
  cv::applyColorMap(gray, bgr, jet ? cv::COLORMAP_TURBO : cv::COLORMAP_VIRIDIS);
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return from_mat(rgb);
}

Image overlay(const Image& base, const Image& heat, double alpha) {
  Image rgb = grayscale_to_rgb(base);
  Image h = (heat.width == rgb.width && heat.height == rgb.height) ? heat : resize(heat, rgb.width, rgb.height);
  Image out(rgb.width, rgb.height, 3);
  for (size_t i = 0; i < out.pixels.size(); ++i)
    out.pixels[i] = static_cast<uint8_t>((1.0 - alpha) * rgb.pixels[i] + alpha * h.pixels[i] + 0.5);
  return out;
}

}  // namespace vlascope
