#pragma once
// Pictures a person looks at: an image with its CAM, boxes and mask drawn over it, and a
// montage of such tiles with captions.
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

}  // namespace endoked::vision
