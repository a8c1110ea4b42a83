#include "endoked/vision/overlay.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "endoked/core/error.h"

namespace endoked::vision {

cv::Mat overlay(const cv::Mat& image, const cv::Mat& cam, const std::vector<Box>& boxes,
                const cv::Mat& mask, int size) {
  ENDOKED_CHECK(!image.empty() && image.type() == CV_8UC3, "overlay: an RGB image");
  cv::Mat out = image.clone();
  if (!cam.empty()) {
    cv::Mat heat, c8;
    cam.convertTo(c8, CV_8U, 255.0);
    cv::applyColorMap(c8, heat, cv::COLORMAP_JET);  // BGR
    cv::cvtColor(heat, heat, cv::COLOR_BGR2RGB);
    if (heat.size() != out.size()) cv::resize(heat, heat, out.size());
    cv::addWeighted(out, 0.6, heat, 0.4, 0, out);
  }
  const int thick = std::max(1, std::max(out.cols, out.rows) / 160);
  if (!mask.empty()) {
    std::vector<std::vector<cv::Point>> contours;
    cv::findContours(mask != 0, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
    cv::drawContours(out, contours, -1, cv::Scalar(0, 255, 0), thick);
  }
  for (const Box& b : boxes)
    cv::rectangle(out, cv::Rect(b.x0, b.y0, b.width(), b.height()), cv::Scalar(255, 230, 0), thick);
  const double s = static_cast<double>(size) / std::max(out.cols, out.rows);
  cv::resize(out, out, cv::Size(), s, s, cv::INTER_AREA);
  return out;
}

std::string montage_png(const std::vector<cv::Mat>& tiles, const std::vector<std::string>& captions,
                        int columns, int size) {
  if (tiles.empty()) return {};
  const int caption = 18;
  const int n = static_cast<int>(tiles.size());
  const int cols = std::min(columns, n), rows = (n + cols - 1) / cols;
  cv::Mat canvas(rows * (size + caption), cols * size, CV_8UC3, cv::Scalar(30, 30, 30));
  for (int i = 0; i < n; ++i) {
    const int x = (i % cols) * size, y = (i / cols) * (size + caption);
    const cv::Mat& t = tiles[static_cast<std::size_t>(i)];
    const cv::Rect r(x, y, std::min(size, t.cols), std::min(size, t.rows));
    t(cv::Rect(0, 0, r.width, r.height)).copyTo(canvas(r));
    if (static_cast<std::size_t>(i) < captions.size())
      cv::putText(canvas, captions[static_cast<std::size_t>(i)], {x + 3, y + size + caption - 5},
                  cv::FONT_HERSHEY_SIMPLEX, 0.4, cv::Scalar(235, 235, 235), 1, cv::LINE_AA);
  }
  cv::Mat bgr;
  cv::cvtColor(canvas, bgr, cv::COLOR_RGB2BGR);
  std::vector<std::uint8_t> png;
  cv::imencode(".png", bgr, png);
  return {png.begin(), png.end()};
}

}  // namespace endoked::vision
