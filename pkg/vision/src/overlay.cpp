#include "endoked/vision/overlay.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "endoked/core/error.h"

namespace endoked::vision {

std::string encode_rgb_png(const cv::Mat& rgb) {
  ENDOKED_CHECK(!rgb.empty() && rgb.type() == CV_8UC3, "encode_rgb_png: an RGB image");
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<std::uint8_t> png;
  cv::imencode(".png", bgr, png);
  return {png.begin(), png.end()};
}

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
  return encode_rgb_png(canvas);
}

std::string line_chart_png(const std::string& title, const std::vector<Series>& series,
                           const std::string& x_label, const std::vector<double>& marks, int width,
                           int height) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const Series& s : series) {
    ENDOKED_CHECK(s.x.size() == s.y.size(), "line chart '", title, "': series '", s.name, "' has ",
                  s.x.size(), " x and ", s.y.size(), " y values");
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  }
  if (!(x0 <= x1)) return {};
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad;
  y1 += pad;
  const int left = 64, right = 16, top = 28, bottom = 40;
  cv::Mat canvas(height, width, CV_8UC3, cv::Scalar(255, 255, 255));
  const cv::Rect plot(left, top, width - left - right, height - top - bottom);
  auto px = [&](double x, double y) {
    return cv::Point(plot.x + static_cast<int>(std::lround((x - x0) / (x1 - x0) * plot.width)),
                     plot.y + static_cast<int>(std::lround((y1 - y) / (y1 - y0) * plot.height)));
  };
  const cv::Scalar ink(40, 40, 40), grid(225, 225, 225);
  const auto font = cv::FONT_HERSHEY_SIMPLEX;
  for (int k = 0; k <= 4; ++k) {
    const double y = y0 + (y1 - y0) * k / 4.0;
    cv::line(canvas, px(x0, y), px(x1, y), grid, 1);
    cv::putText(canvas, fmt::format("{:.3g}", y), {4, px(x0, y).y + 4}, font, 0.38, ink, 1,
                cv::LINE_AA);
  }
  for (const double m : marks)
    if (m >= x0 && m <= x1)
      for (int y = plot.y; y < plot.y + plot.height; y += 8)
        cv::line(canvas, {px(m, y0).x, y}, {px(m, y0).x, std::min(y + 4, plot.y + plot.height)},
                 cv::Scalar(150, 150, 150), 1);
  cv::rectangle(canvas, plot, ink, 1);
  cv::putText(canvas, title, {left, 18}, font, 0.5, ink, 1, cv::LINE_AA);
  cv::putText(canvas, fmt::format("{:.4g}", x0), {plot.x - 4, height - 22}, font, 0.38, ink, 1,
              cv::LINE_AA);
  cv::putText(canvas, fmt::format("{:.4g}", x1), {plot.x + plot.width - 24, height - 22}, font,
              0.38, ink, 1, cv::LINE_AA);
  cv::putText(canvas, x_label, {plot.x + plot.width / 2 - 20, height - 8}, font, 0.42, ink, 1,
              cv::LINE_AA);
  static const cv::Scalar colours[] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},
                                       {214, 39, 40},  {148, 103, 189}, {140, 86, 75}};
  for (std::size_t k = 0; k < series.size(); ++k) {
    const Series& s = series[k];
    const cv::Scalar c = colours[k % 6];
    bool have = false;
    cv::Point last;
    for (std::size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        have = false;
        continue;
      }
      const cv::Point p = px(s.x[i], s.y[i]);
      if (have) cv::line(canvas, last, p, c, 2, cv::LINE_AA);
      cv::circle(canvas, p, 2, c, cv::FILLED, cv::LINE_AA);
      last = p;
      have = true;
    }
    const int ly = top + 14 + 16 * static_cast<int>(k);
    cv::line(canvas, {plot.x + plot.width - 150, ly - 4}, {plot.x + plot.width - 130, ly - 4}, c,
             2);
    cv::putText(canvas, s.name, {plot.x + plot.width - 125, ly}, font, 0.4, ink, 1, cv::LINE_AA);
  }
  return encode_rgb_png(canvas);
}

}  // namespace endoked::vision
