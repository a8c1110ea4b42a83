#include "endoked/vision/seg_metrics.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "endoked/core/error.h"
#include "endoked/vision/masks.h"

namespace endoked::vision {
namespace {

constexpr double kEps = std::numeric_limits<double>::epsilon();  // numpy's np.spacing(1)
constexpr double kInf = std::numeric_limits<double>::infinity();

double mean_of(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// 2·mean / (mean² + 1 + std + eps), std with n − 1 (0 below two values).
double object_similarity(const std::vector<double>& x) {
  const double m = mean_of(x);
  double ss = 0;
  for (double v : x) ss += (v - m) * (v - m);
  const double sd = x.size() > 1 ? std::sqrt(ss / static_cast<double>(x.size() - 1)) : 0.0;
  return 2 * m / (m * m + 1 + sd + kEps);
}

// The SSIM-like score of one quadrant.
double quadrant_score(const cv::Mat& p, const cv::Mat& g) {
  const double n = static_cast<double>(p.total());
  const double x = cv::mean(p)[0], y = cv::mean(g)[0];
  double sx = 0, sy = 0, sxy = 0;
  for (int r = 0; r < p.rows; ++r)
    for (int c = 0; c < p.cols; ++c) {
      const double a = p.at<double>(r, c) - x, b = g.at<double>(r, c) - y;
      sx += a * a;
      sy += b * b;
      sxy += a * b;
    }
  const double d = std::max(n - 1, 1.0);
  sx /= d;
  sy /= d;
  sxy /= d;
  const double alpha = 4 * x * y * sxy, beta = (x * x + y * y) * (sx + sy);
  if (alpha != 0) return alpha / (beta + kEps);
  return beta == 0 ? 1.0 : 0.0;
}

double s_measure(const cv::Mat& p, const cv::Mat& g /* CV_64F 0/1 */, const cv::Mat& fg) {
  const double y = cv::mean(g)[0];
  if (y == 0) return 1 - cv::mean(p)[0];
  if (y == 1) return cv::mean(p)[0];
  std::vector<double> in, out;
  double cy = 0, cx = 0;
  for (int r = 0; r < p.rows; ++r)
    for (int c = 0; c < p.cols; ++c) {
      if (fg.at<std::uint8_t>(r, c)) {
        in.push_back(p.at<double>(r, c));
        cy += r;
        cx += c;
      } else {
        out.push_back(1 - p.at<double>(r, c));
      }
    }
  const double object = object_similarity(in) * y + object_similarity(out) * (1 - y);
  // The centroid rounded half to even (numpy's round), + 1 (MATLAB's 1:X ranges).
  const int h = p.rows, w = p.cols;
  const int ry = static_cast<int>(std::nearbyint(cy / static_cast<double>(in.size()))) + 1;
  const int rx = static_cast<int>(std::nearbyint(cx / static_cast<double>(in.size()))) + 1;
  const double area = static_cast<double>(h) * w;
  const std::array<cv::Rect, 4> parts = {cv::Rect(0, 0, rx, ry), cv::Rect(rx, 0, w - rx, ry),
                                         cv::Rect(0, ry, rx, h - ry),
                                         cv::Rect(rx, ry, w - rx, h - ry)};
  double region = 0;
  for (const cv::Rect& q : parts) {
    if (q.width <= 0 || q.height <= 0) continue;  // weight 0
    region += quadrant_score(p(q), g(q)) * (static_cast<double>(q.area()) / area);
  }
  return std::max(0.0, 0.5 * object + 0.5 * region);
}

double mean_e_measure(const cv::Mat& p, const cv::Mat& fg) {
  std::array<double, 256> fg_hist{}, bg_hist{};
  for (int r = 0; r < p.rows; ++r)
    for (int c = 0; c < p.cols; ++c) {
      const int v = static_cast<int>(p.at<double>(r, c) * 255);  // truncated, as astype(uint8)
      (fg.at<std::uint8_t>(r, c) ? fg_hist : bg_hist)[static_cast<std::size_t>(v)] += 1;
    }
  const double size = static_cast<double>(p.total());
  double gt_fg = 0;
  for (double v : fg_hist) gt_fg += v;
  double tp = 0, fp = 0, total = 0;
  for (int level = 255; level >= 0; --level) {  // the map ≥ level
    tp += fg_hist[static_cast<std::size_t>(level)];
    fp += bg_hist[static_cast<std::size_t>(level)];
    const double pred_fg = tp + fp, pred_bg = size - pred_fg;
    double sum = 0;
    if (gt_fg == 0) {
      sum = pred_bg;
    } else if (gt_fg == size) {
      sum = pred_fg;
    } else {
      const double fn = gt_fg - tp, tn = pred_bg - fn;
      const double mp = pred_fg / size, mg = gt_fg / size;
      const std::array<std::array<double, 3>, 4> parts = {
          {{tp, 1 - mp, 1 - mg}, {fp, 1 - mp, -mg}, {fn, -mp, 1 - mg}, {tn, -mp, -mg}}};
      for (const auto& [n, a, b] : parts) {
        const double align = 2 * a * b / (a * a + b * b + kEps);
        sum += (align + 1) * (align + 1) / 4 * n;
      }
    }
    total += sum / (size - 1 + kEps);
  }
  return total / 256;
}

double weighted_f(const cv::Mat& p, const cv::Mat& g, const cv::Mat& fg) {
  if (cv::countNonZero(fg) == 0) return 0;
  cv::Mat dist, nearest;
  distance_to_nonzero(fg, dist, nearest);
  cv::Mat e = cv::abs(p - g);
  cv::Mat et = e.clone();
  for (int r = 0; r < p.rows; ++r)
    for (int c = 0; c < p.cols; ++c)
      if (!fg.at<std::uint8_t>(r, c)) {
        const int k = nearest.at<int>(r, c);
        et.at<double>(r, c) = e.at<double>(k / p.cols, k % p.cols);
      }
  // MATLAB's fspecial('gaussian', 7, 5).
  cv::Mat kernel(7, 7, CV_64F);
  for (int r = 0; r < 7; ++r)
    for (int c = 0; c < 7; ++c)
      kernel.at<double>(r, c) = std::exp(-((r - 3) * (r - 3) + (c - 3) * (c - 3)) / (2.0 * 25));
  kernel /= cv::sum(kernel)[0];
  cv::Mat ea;
  cv::filter2D(et, ea, CV_64F, kernel, cv::Point(-1, -1), 0, cv::BORDER_CONSTANT);
  double tp_fg_error = 0, fg_count = 0, fp = 0;
  for (int r = 0; r < p.rows; ++r)
    for (int c = 0; c < p.cols; ++c) {
      const double err = e.at<double>(r, c), smooth = ea.at<double>(r, c);
      if (fg.at<std::uint8_t>(r, c)) {
        tp_fg_error += smooth < err ? smooth : err;
        fg_count += 1;
      } else {
        fp += err * (2 - std::exp(std::log(0.5) / 5 * dist.at<double>(r, c)));
      }
    }
  const double tpw = fg_count - tp_fg_error;
  const double recall = 1 - tp_fg_error / fg_count;
  const double precision = tpw / (tpw + fp + kEps);
  return 2 * recall * precision / (recall + precision + kEps);
}

}  // namespace

cv::Mat normalised_map(const cv::Mat& prediction, cv::Size size) {
  ENDOKED_CHECK(!prediction.empty() && prediction.channels() == 1,
                "a prediction must be a one-channel map");
  // The reference's order of operations (v / 255, then (p − min) / (max − min)), so that
  // ⌊p·255⌋ in the E-measure falls on the same level.
  double lo = 0, hi = 0;
  cv::minMaxLoc(prediction, &lo, &hi);
  const double scale = prediction.depth() == CV_8U && hi > 1 ? 255.0 : 1.0;
  cv::Mat p;
  prediction.convertTo(p, CV_64F);
  if (p.size() != size) cv::resize(p, p, size, 0, 0, cv::INTER_LINEAR);
  p.forEach<double>([scale](double& v, const int*) { v = v / scale; });
  cv::minMaxLoc(p, &lo, &hi);
  if (hi > lo) p.forEach<double>([lo, hi](double& v, const int*) { v = (v - lo) / (hi - lo); });
  return p;
}

void distance_to_nonzero(const cv::Mat& mask, cv::Mat& distance, cv::Mat& nearest) {
  ENDOKED_CHECK(mask.type() == CV_8UC1, "distance_to_nonzero takes an 8-bit mask");
  const int h = mask.rows, w = mask.cols;
  // Along each column: the squared distance to the nearest nonzero pixel and its row.
  std::vector<double> col(static_cast<std::size_t>(h) * w, kInf);
  std::vector<int> col_row(static_cast<std::size_t>(h) * w, -1);
  for (int c = 0; c < w; ++c) {
    int last = -1;
    for (int r = 0; r < h; ++r) {
      if (mask.at<std::uint8_t>(r, c)) last = r;
      if (last >= 0) {
        col[static_cast<std::size_t>(r) * w + c] = static_cast<double>(r - last) * (r - last);
        col_row[static_cast<std::size_t>(r) * w + c] = last;
      }
    }
    last = -1;
    for (int r = h - 1; r >= 0; --r) {
      if (mask.at<std::uint8_t>(r, c)) last = r;
      const auto i = static_cast<std::size_t>(r) * w + c;
      if (last >= 0 && static_cast<double>(last - r) * (last - r) < col[i]) {
        col[i] = static_cast<double>(last - r) * (last - r);
        col_row[i] = last;
      }
    }
  }
  // Along each row: the lower envelope of the columns' parabolas (Felzenszwalb & Huttenlocher).
  distance.create(h, w, CV_64F);
  nearest.create(h, w, CV_32S);
  std::vector<int> v(static_cast<std::size_t>(w));
  std::vector<double> z(static_cast<std::size_t>(w) + 1);
  for (int r = 0; r < h; ++r) {
    const double* f = col.data() + static_cast<std::size_t>(r) * w;
    int k = -1;
    for (int q = 0; q < w; ++q) {
      if (std::isinf(f[q])) continue;
      while (k >= 0) {
        const int p = v[static_cast<std::size_t>(k)];
        const double s =
            ((f[q] + static_cast<double>(q) * q) - (f[p] + static_cast<double>(p) * p)) /
            (2.0 * (q - p));
        if (s > z[static_cast<std::size_t>(k)]) {
          ++k;
          v[static_cast<std::size_t>(k)] = q;
          z[static_cast<std::size_t>(k)] = s;
          z[static_cast<std::size_t>(k) + 1] = kInf;
          break;
        }
        --k;
      }
      if (k < 0) {
        k = 0;
        v[0] = q;
        z[0] = -kInf;
        z[1] = kInf;
      }
    }
    int j = 0;
    for (int x = 0; x < w; ++x) {
      if (k < 0) {
        distance.at<double>(r, x) = kInf;
        nearest.at<int>(r, x) = -1;
        continue;
      }
      while (z[static_cast<std::size_t>(j) + 1] < x) ++j;
      const int p = v[static_cast<std::size_t>(j)];
      distance.at<double>(r, x) = std::sqrt(static_cast<double>(x - p) * (x - p) + f[p]);
      nearest.at<int>(r, x) = col_row[static_cast<std::size_t>(r) * w + p] * w + p;
    }
  }
}

PolypScores polyp_scores(const cv::Mat& prediction, const cv::Mat& truth) {
  const cv::Mat fg = binarise_truth(truth);  // 0/1
  cv::Mat g;
  fg.convertTo(g, CV_64F);
  const cv::Mat p = normalised_map(prediction, fg.size());
  PolypScores s;
  const SegmentationScore d = segmentation_score(prediction, truth);
  s.dice = d.dice;
  s.iou = d.iou;
  s.mae = cv::mean(cv::abs(p - g))[0];
  s.s_measure = s_measure(p, g, fg);
  s.mean_e_measure = mean_e_measure(p, fg);
  s.weighted_f = weighted_f(p, g, fg);
  return s;
}

}  // namespace endoked::vision
