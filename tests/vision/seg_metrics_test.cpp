// The polyp segmentation metrics against a from-the-definitions reference (numpy, brute-force
// distance transform) on a 12 × 10 truth and two 8-bit predictions; perfect and empty cases; the
// exact distance transform against brute force.
#include "endoked/vision/seg_metrics.h"

#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace endoked::vision {
namespace {

cv::Mat truth_12x10() {
  const std::string bits =
      "000000000000000000000000110000000111100000111110000011111000"
      "001111100000111110000001110000000000000000000001110000000000";
  cv::Mat t(12, 10, CV_8UC1);
  for (int i = 0; i < 120; ++i) t.data[i] = bits[static_cast<std::size_t>(i)] == '1' ? 255 : 0;
  return t;
}

cv::Mat map_12x10(const std::vector<int>& v) {
  cv::Mat m(12, 10, CV_8UC1);
  for (int i = 0; i < 120; ++i)
    m.data[i] = static_cast<std::uint8_t>(v[static_cast<std::size_t>(i)]);
  return m;
}

TEST(PolypScores, AsTheReferenceDefinitions) {
  const cv::Mat truth = truth_12x10();
  // A smooth map: every metric but the weighted F-measure (its nearest-pixel ties may be broken
  // differently: a looser bound).
  const cv::Mat a = map_12x10(
      {40, 43, 48,  53,  57,  57,  53,  48,  43, 40, 42, 59, 69,  69,  65,  62,  64,  65,  60, 47,
       45, 67, 61,  86,  115, 95,  83,  84,  51, 36, 49, 66, 85,  123, 130, 145, 108, 100, 53, 61,
       53, 64, 120, 140, 170, 185, 135, 111, 81, 40, 56, 69, 115, 177, 213, 200, 156, 117, 91, 67,
       57, 80, 121, 168, 200, 199, 165, 116, 74, 50, 56, 90, 135, 180, 205, 196, 157, 110, 75, 58,
       53, 87, 104, 135, 180, 183, 137, 101, 86, 56, 49, 70, 79,  130, 125, 148, 110, 91,  68, 41,
       45, 48, 83,  77,  112, 99,  86,  81,  42, 57, 42, 35, 57,  80,  75,  62,  67,  70,  48, 29});
  const PolypScores sa = polyp_scores(a, truth);
  EXPECT_NEAR(sa.dice, 0.7796610169491526, 1e-12);
  EXPECT_NEAR(sa.iou, 0.6388888888888888, 1e-12);
  EXPECT_NEAR(sa.mae, 0.25855978260869567, 1e-12);
  EXPECT_NEAR(sa.s_measure, 0.7365738357030398, 1e-12);
  EXPECT_NEAR(sa.mean_e_measure, 0.596313310480497, 1e-12);
  EXPECT_NEAR(sa.weighted_f, 0.5950279671150371, 0.02);
  // Constant on the truth's foreground: no ties matter, the weighted F-measure exactly.
  const cv::Mat b = map_12x10(
      {0, 0, 0,   1,   3,   9,   20,  33,  39,  33,  0, 0, 0,   1,   4,   14,  33,  55, 65, 55,
       0, 0, 0,   1,   204, 204, 39,  65,  76,  65,  0, 0, 0,   204, 204, 204, 204, 55, 65, 55,
       0, 0, 204, 204, 204, 204, 204, 33,  39,  33,  0, 0, 204, 204, 204, 204, 204, 14, 17, 14,
       0, 0, 204, 204, 204, 204, 204, 4,   5,   4,   0, 0, 204, 204, 204, 204, 204, 1,  1,  1,
       0, 0, 0,   204, 204, 204, 0,   0,   0,   0,   0, 0, 0,   0,   0,   0,   0,   0,  0,  0,
       0, 0, 0,   0,   0,   0,   0,   204, 204, 204, 0, 0, 0,   0,   0,   0,   0,   0,  0,  0});
  const PolypScores sb = polyp_scores(b, truth);
  EXPECT_NEAR(sb.dice, 1.0, 1e-12);
  EXPECT_NEAR(sb.mae, 0.03888888888888889, 1e-12);
  EXPECT_NEAR(sb.s_measure, 0.9636780298097153, 1e-12);
  EXPECT_NEAR(sb.mean_e_measure, 0.9533217711648756, 1e-12);
  EXPECT_NEAR(sb.weighted_f, 0.9153067494112678, 1e-12);
}

TEST(PolypScores, PerfectEmptyAndInverse) {
  const cv::Mat truth = truth_12x10();
  const PolypScores p = polyp_scores(truth, truth);
  EXPECT_NEAR(p.dice, 1, 1e-12);
  EXPECT_NEAR(p.iou, 1, 1e-12);
  EXPECT_NEAR(p.mae, 0, 1e-12);
  EXPECT_NEAR(p.s_measure, 1, 1e-9);
  EXPECT_NEAR(p.weighted_f, 1, 1e-9);
  // 255 levels see the truth exactly (120 / 119 each); level 0 marks every pixel (1/4 each).
  EXPECT_NEAR(p.mean_e_measure, (255 * 120.0 / 119 + 0.25 * 120 / 119) / 256, 1e-9);
  const cv::Mat inverse = 255 - truth;
  const PolypScores q = polyp_scores(inverse, truth);
  EXPECT_NEAR(q.dice, 0, 1e-12);
  EXPECT_NEAR(q.mae, 1, 1e-12);
  EXPECT_LT(q.s_measure, 0.1);
  EXPECT_LT(q.weighted_f, 0.05);  // errors smoothed with the zero padding at the border
  EXPECT_LT(q.mean_e_measure, 0.1);
  // An empty truth: S = 1 − mean(map), weighted F 0; a 0/1 map reads as 0/1, not / 255.
  const cv::Mat empty = cv::Mat::zeros(12, 10, CV_8UC1);
  EXPECT_NEAR(polyp_scores(empty, empty).s_measure, 1, 1e-12);
  EXPECT_EQ(polyp_scores(empty, empty).weighted_f, 0);
  EXPECT_NEAR(polyp_scores(truth / 255, truth).s_measure, 1, 1e-9);
  // A float map of another size is resized to the truth's.
  cv::Mat big;
  cv::resize(truth, big, cv::Size(20, 24), 0, 0, cv::INTER_NEAREST);
  big.convertTo(big, CV_32F, 1.0 / 255);
  EXPECT_GT(polyp_scores(big, truth).dice, 0.9);
}

TEST(PolypScores, ExactDistanceTransformAsBruteForce) {
  std::mt19937 rng(4);
  for (int trial = 0; trial < 20; ++trial) {
    const int h = 5 + static_cast<int>(rng() % 20), w = 5 + static_cast<int>(rng() % 20);
    cv::Mat m = cv::Mat::zeros(h, w, CV_8UC1);
    const int n = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < n; ++k)
      m.at<std::uint8_t>(static_cast<int>(rng() % h), static_cast<int>(rng() % w)) = 1;
    cv::Mat d, idx;
    distance_to_nonzero(m, d, idx);
    for (int r = 0; r < h; ++r)
      for (int c = 0; c < w; ++c) {
        double best = 1e9;
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x)
            if (m.at<std::uint8_t>(y, x)) best = std::min(best, std::hypot(y - r, x - c));
        ASSERT_NEAR(d.at<double>(r, c), best, 1e-9) << trial << " " << r << "," << c;
        const int k = idx.at<int>(r, c);
        ASSERT_TRUE(m.at<std::uint8_t>(k / w, k % w));
        ASSERT_NEAR(std::hypot(k / w - r, k % w - c), best, 1e-9);
      }
  }
  cv::Mat none = cv::Mat::zeros(3, 4, CV_8UC1), d, idx;
  distance_to_nonzero(none, d, idx);
  EXPECT_TRUE(std::isinf(d.at<double>(1, 2)));
  EXPECT_EQ(idx.at<int>(1, 2), -1);
}

}  // namespace
}  // namespace endoked::vision
