#pragma once
// Pictures a person looks at: an image with its CAM, boxes and mask drawn over it, a montage of
// such tiles with captions, and line charts of training curves.
#include <opencv2/core/mat.hpp>

#include <string>
#include <vector>

#include "endoked/vision/masks.h"

namespace endoked::vision {

/// RGB CV_8UC3 `image` with, when given: the CAM (CV_32FC1 in [0, 1]) blended as a heat map,
/// the mask's outline in green, the boxes in yellow; scaled so its longer side is `size`.
cv::Mat overlay(const cv::Mat& image, const cv::Mat& cam, const std::vector<Box>& boxes,
                const cv::Mat& mask, int size = 192);

/// Tiles (RGB CV_8UC3, any sizes up to `size`) on a grid of `columns`, each with its caption
/// under it. Returns PNG bytes (empty when there are no tiles).
std::string montage_png(const std::vector<cv::Mat>& tiles, const std::vector<std::string>& captions,
                        int columns = 6, int size = 192);

/// RGB CV_8UC3 → PNG bytes.
std::string encode_rgb_png(const cv::Mat& rgb);

/// One line of a chart: y values at x positions (same length; NaN values leave a gap).
struct Series {
  std::string name;
  std::vector<double> x, y;
};
/// A line chart of `series` (one colour each, a legend), the axes fitted to the data, labelled
/// with their ranges; vertical dashed lines at `marks` (e.g. round boundaries). Returns PNG bytes
/// (empty when no series has a finite point).
std::string line_chart_png(const std::string& title, const std::vector<Series>& series,
                           const std::string& x_label, const std::vector<double>& marks = {},
                           int width = 640, int height = 320);

}  // namespace endoked::vision
