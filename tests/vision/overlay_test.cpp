// Line charts (training curves) as PNG.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <limits>

#include "endoked/core/error.h"
#include "endoked/vision/overlay.h"

namespace endoked::vision {
namespace {

cv::Mat decode(const std::string& png) {
  return cv::imdecode(
      cv::Mat(1, static_cast<int>(png.size()), CV_8UC1, const_cast<char*>(png.data())),
      cv::IMREAD_COLOR);
}

TEST(LineChart, DrawsEachSeriesInItsColourAtTheRequestedSize) {
  const Series rising{"loss", {1, 2, 3, 4}, {0.1, 0.4, 0.2, 0.9}};
  const Series flat{"dice", {1, 4}, {0.5, 0.5}};
  const std::string png = line_chart_png("curves", {rising, flat}, "epoch", {2.5}, 400, 240);
  const cv::Mat img = decode(png);
  ASSERT_FALSE(img.empty());
  EXPECT_EQ(img.cols, 400);
  EXPECT_EQ(img.rows, 240);
  // The first series' colour (RGB 31, 119, 180 → BGR) and the second's (255, 127, 14) appear.
  auto count = [&](cv::Vec3b bgr) {
    int n = 0;
    for (int y = 0; y < img.rows; ++y)
      for (int x = 0; x < img.cols; ++x) n += img.at<cv::Vec3b>(y, x) == bgr;
    return n;
  };
  EXPECT_GT(count({180, 119, 31}), 50);
  EXPECT_GT(count({14, 127, 255}), 50);
}

TEST(LineChart, NothingToDrawGivesNoBytesAndMismatchedSeriesAreAnError) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(line_chart_png("empty", {}, "x").empty());
  EXPECT_TRUE(line_chart_png("nan", {{"a", {1, 2}, {nan, nan}}}, "x").empty());
  // One finite point still draws (the axes get a unit range).
  EXPECT_FALSE(line_chart_png("one", {{"a", {1, 2}, {nan, 3}}}, "x").empty());
  try {
    line_chart_png("bad", {{"a", {1, 2, 3}, {1, 2}}}, "x");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("series 'a' has 3 x and 2 y"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace endoked::vision
