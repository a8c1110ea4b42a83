#include "endoked/vision/masks.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <tuple>

#include "endoked/core/error.h"
#include "endoked/data/dataset.h"
#include "endoked/data/image_codec.h"

namespace endoked::vision {

namespace {
void check_mask(const cv::Mat& m, const char* what) {
  ENDOKED_CHECK(!m.empty() && m.type() == CV_8UC1, what, ": a mask must be 8-bit, one channel");
}
}  // namespace

double box_iou(const Box& a, const Box& b) {
  const Box i{std::max(a.x0, b.x0), std::max(a.y0, b.y0), std::min(a.x1, b.x1),
              std::min(a.y1, b.y1)};
  const double inter = static_cast<double>(i.area());
  const double uni = static_cast<double>(a.area() + b.area()) - inter;
  return uni > 0 ? inter / uni : 0.0;
}

Box mask_box(const cv::Mat& mask) {
  check_mask(mask, "mask_box");
  const cv::Rect r = cv::boundingRect(mask);
  return {r.x, r.y, r.x + r.width, r.y + r.height};
}

std::vector<Component> components(const cv::Mat& mask) {
  check_mask(mask, "components");
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask != 0, labels, stats, centroids, 8, CV_32S);
  std::vector<Component> out;
  for (int k = 1; k < n; ++k) {
    const int x = stats.at<int>(k, cv::CC_STAT_LEFT), y = stats.at<int>(k, cv::CC_STAT_TOP);
    out.push_back(
        {{x, y, x + stats.at<int>(k, cv::CC_STAT_WIDTH), y + stats.at<int>(k, cv::CC_STAT_HEIGHT)},
         stats.at<int>(k, cv::CC_STAT_AREA)});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Component& a, const Component& b) { return a.area > b.area; });
  return out;
}

cv::Mat box_mask(int height, int width, const Box& box) {
  cv::Mat m = cv::Mat::zeros(height, width, CV_8UC1);
  const cv::Rect r =
      cv::Rect(box.x0, box.y0, box.width(), box.height()) & cv::Rect(0, 0, width, height);
  if (r.area() > 0) m(r).setTo(1);
  return m;
}

cv::Mat ellipse_mask(int height, int width, const Box& box) {
  cv::Mat m = cv::Mat::zeros(height, width, CV_8UC1);
  if (box.empty()) return m;
  // Pixel centres inside the ellipse through the box's edges: ((x+.5−cx)/a)² + ((y+.5−cy)/b)² ≤ 1.
  const double cx = 0.5 * (box.x0 + box.x1), cy = 0.5 * (box.y0 + box.y1);
  const double a = 0.5 * box.width(), b = 0.5 * box.height();
  for (int y = std::max(0, box.y0); y < std::min(height, box.y1); ++y) {
    const double dy = (y + 0.5 - cy) / b;
    auto* row = m.ptr<std::uint8_t>(y);
    for (int x = std::max(0, box.x0); x < std::min(width, box.x1); ++x) {
      const double dx = (x + 0.5 - cx) / a;
      if (dx * dx + dy * dy <= 1.0) row[x] = 1;
    }
  }
  return m;
}

Rle rle_encode(const cv::Mat& mask) {
  check_mask(mask, "rle_encode");
  Rle r{mask.rows, mask.cols, {}};
  std::uint8_t current = 0;
  std::uint32_t run = 0;
  for (int x = 0; x < mask.cols; ++x)
    for (int y = 0; y < mask.rows; ++y) {
      const std::uint8_t v = mask.at<std::uint8_t>(y, x) != 0 ? 1 : 0;
      if (v != current) {
        r.counts.push_back(run);
        run = 0;
        current = v;
      }
      ++run;
    }
  r.counts.push_back(run);
  return r;
}

cv::Mat rle_decode(const Rle& rle) {
  ENDOKED_CHECK(rle.height >= 0 && rle.width >= 0, "RLE: negative size");
  cv::Mat m = cv::Mat::zeros(rle.height, rle.width, CV_8UC1);
  const std::uint64_t total =
      static_cast<std::uint64_t>(rle.height) * static_cast<std::uint64_t>(rle.width);
  std::uint64_t at = 0;
  std::uint8_t v = 0;
  for (const std::uint32_t c : rle.counts) {
    ENDOKED_CHECK(at + c <= total, "RLE: counts add up to more than ", rle.height, " × ", rle.width,
                  " pixels");
    if (v)
      for (std::uint64_t k = at; k < at + c; ++k)
        m.at<std::uint8_t>(static_cast<int>(k % static_cast<std::uint64_t>(rle.height)),
                           static_cast<int>(k / static_cast<std::uint64_t>(rle.height))) = 1;
    at += c;
    v = static_cast<std::uint8_t>(1 - v);
  }
  ENDOKED_CHECK(at == total, "RLE: counts add up to ", at, " pixels, not ", rle.height, " × ",
                rle.width);
  return m;
}

std::string rle_counts_string(const std::vector<std::uint32_t>& counts) {
  std::string s;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    std::int64_t x = counts[i];
    if (i > 2) x -= counts[i - 2];
    bool more = true;
    while (more) {
      int c = static_cast<int>(x & 0x1f);
      x >>= 5;  // arithmetic shift: a negative difference ends at −1
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      s.push_back(static_cast<char>(c + 48));
    }
  }
  return s;
}

std::vector<std::uint32_t> rle_counts_parse(std::string_view s, const std::string& where) {
  std::vector<std::uint32_t> counts;
  std::size_t p = 0;
  while (p < s.size()) {
    std::int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      ENDOKED_CHECK(p < s.size() && k < 7, where, ": malformed RLE counts string at character ", p);
      const int c = static_cast<unsigned char>(s[p]) - 48;
      ENDOKED_CHECK(c >= 0 && c < 64, where, ": malformed RLE counts string at character ", p);
      x |= static_cast<std::int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= -(static_cast<std::int64_t>(1) << (5 * k));
    }
    if (counts.size() > 2) x += counts[counts.size() - 2];
    ENDOKED_CHECK(x >= 0 && x <= 0xffffffffLL, where, ": RLE count out of range");
    counts.push_back(static_cast<std::uint32_t>(x));
  }
  return counts;
}

std::string encode_mask_png(const cv::Mat& mask) {
  check_mask(mask, "encode_mask_png");
  std::vector<std::uint8_t> png;
  const cv::Mat m = mask != 0;  // 0/255
  cv::imencode(".png", m, png, {cv::IMWRITE_PNG_BILEVEL, 1});
  return {png.begin(), png.end()};
}

std::string encode_map_png(const cv::Mat& map) {
  ENDOKED_CHECK(!map.empty() && map.channels() == 1, "encode_map_png: a one-channel map");
  cv::Mat m;
  map.convertTo(m, CV_8U, 255.0);  // saturating, rounded
  std::vector<std::uint8_t> png;
  cv::imencode(".png", m, png);
  return {png.begin(), png.end()};
}

cv::Mat binarise_truth(const cv::Mat& truth) {
  ENDOKED_CHECK(!truth.empty() && truth.channels() == 1, "a truth mask must have one channel");
  cv::Mat t;
  truth.convertTo(t, CV_8U);
  double lo = 0, hi = 0;
  cv::minMaxLoc(t, &lo, &hi);
  cv::Mat out = hi <= 1 ? (t > 0) : (t > 127);
  return out / 255;
}

cv::Mat decode_mask(std::string_view bytes, const std::string& where) {
  cv::Mat grey;
  try {
    grey = data::decode_gray(bytes);
  } catch (const std::exception& e) {
    ENDOKED_FAIL(where, ": not a mask image (", e.what(), ")");
  }
  ENDOKED_CHECK(!grey.empty(), where, ": not a mask image");
  return binarise_truth(grey);
}

cv::Mat decode_cam(std::string_view png, const std::string& where) {
  if (png.empty()) return {};
  cv::Mat grey;
  try {
    grey = data::decode_gray(png);
  } catch (const std::exception& e) {
    ENDOKED_FAIL(where, ": the CAM does not decode: ", e.what());
  }
  cv::Mat cam;
  grey.convertTo(cam, CV_32F, 1.0 / 255.0);
  return cam;
}

std::vector<Box> parse_boxes(const std::string& text, const std::string& where) {
  std::vector<Box> out;
  for (const auto& b : data::parse_box_list(text, where))
    out.push_back({static_cast<int>(b[0]), static_cast<int>(b[1]), static_cast<int>(b[2]),
                   static_cast<int>(b[3]), b[4]});
  return out;
}

cv::Mat binarise_prediction(const cv::Mat& prediction, cv::Size size) {
  ENDOKED_CHECK(!prediction.empty() && prediction.channels() == 1,
                "a prediction must be a one-channel map");
  cv::Mat p;
  prediction.convertTo(p, CV_32F);
  if (p.size() != size) cv::resize(p, p, size, 0, 0, cv::INTER_LINEAR);
  double lo = 0, hi = 0;
  cv::minMaxLoc(p, &lo, &hi);
  p = (p - lo) / (hi - lo + 1e-8);
  return (p > 0.5) / 255;
}

Detection detect(const cv::Mat& prediction, const cv::Mat& truth, double iou) {
  Detection d;
  const auto p = components(prediction), t = components(truth);
  d.predicted = static_cast<int>(p.size());
  d.truth = static_cast<int>(t.size());
  std::vector<std::tuple<double, std::size_t, std::size_t>> pairs;
  for (std::size_t i = 0; i < p.size(); ++i)
    for (std::size_t j = 0; j < t.size(); ++j) {
      const double v = box_iou(p[i].box, t[j].box);
      if (v >= iou) pairs.emplace_back(v, i, j);
    }
  std::sort(pairs.begin(), pairs.end(),
            [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  std::vector<bool> used_p(p.size()), used_t(t.size());
  for (const auto& [v, i, j] : pairs) {
    if (used_p[i] || used_t[j]) continue;
    used_p[i] = used_t[j] = true;
    ++d.matched;
  }
  const Box a = mask_box(prediction), b = mask_box(truth);
  d.box_iou = a.empty() && b.empty() ? 1.0 : box_iou(a, b);
  return d;
}

double average_precision(std::vector<ScoredBox> predicted,
                         const std::vector<std::vector<Box>>& truth, double iou) {
  std::size_t total = 0;
  for (const auto& t : truth) total += t.size();
  if (total == 0) return 0.0;
  std::stable_sort(predicted.begin(), predicted.end(),
                   [](const ScoredBox& a, const ScoredBox& b) { return a.score > b.score; });
  std::vector<std::vector<bool>> used(truth.size());
  for (std::size_t i = 0; i < truth.size(); ++i) used[i].assign(truth[i].size(), false);
  std::vector<double> precision, recall;
  std::size_t tp = 0, n = 0;
  for (const ScoredBox& p : predicted) {
    ++n;
    ENDOKED_CHECK(p.image >= 0 && static_cast<std::size_t>(p.image) < truth.size(),
                  "average_precision: a prediction in image ", p.image, " of ", truth.size());
    const auto& t = truth[static_cast<std::size_t>(p.image)];
    auto& u = used[static_cast<std::size_t>(p.image)];
    double best = iou;
    std::ptrdiff_t hit = -1;
    for (std::size_t j = 0; j < t.size(); ++j) {
      if (u[j]) continue;
      const double v = box_iou(p.box, t[j]);
      if (v >= best) {
        best = v;
        hit = static_cast<std::ptrdiff_t>(j);
      }
    }
    if (hit >= 0) {
      u[static_cast<std::size_t>(hit)] = true;
      ++tp;
    }
    precision.push_back(static_cast<double>(tp) / static_cast<double>(n));
    recall.push_back(static_cast<double>(tp) / static_cast<double>(total));
  }
  for (std::size_t i = precision.size(); i-- > 1;)
    precision[i - 1] = std::max(precision[i - 1], precision[i]);
  double ap = 0, last_recall = 0;
  for (std::size_t i = 0; i < precision.size(); ++i) {
    ap += (recall[i] - last_recall) * precision[i];
    last_recall = recall[i];
  }
  return ap;
}

SegmentationScore segmentation_score(const cv::Mat& prediction, const cv::Mat& truth) {
  const cv::Mat t = binarise_truth(truth);
  const cv::Mat pb = binarise_prediction(prediction, t.size()) != 0, tb = t != 0;
  const double inter = cv::countNonZero(pb & tb);
  const double np = cv::countNonZero(pb), nt = cv::countNonZero(tb);
  if (np + nt == 0) return {1.0, 1.0};
  return {2 * inter / (np + nt), inter / (np + nt - inter)};
}

}  // namespace endoked::vision
