#include "endoked/data/transforms.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <opencv2/imgproc.hpp>

#include "endoked/core/error.h"

namespace endoked::data {

// ---------------- per-image functions ----------------

cv::Mat warp(const cv::Mat& image, const cv::Matx23d& m, cv::Size out, int interpolation) {
  cv::Mat dst;
  cv::warpAffine(image, dst, cv::Mat(m), out, interpolation, cv::BORDER_CONSTANT, cv::Scalar());
  return dst;
}

void flip_boxes(std::vector<Box>& boxes, cv::Size size, bool horizontal) {
  const float W = static_cast<float>(size.width), H = static_cast<float>(size.height);
  for (Box& b : boxes)
    b = horizontal ? Box{W - b.x1, b.y0, W - b.x0, b.y1, b.label}
                   : Box{b.x0, H - b.y1, b.x1, H - b.y0, b.label};
}

Box map_box(const Box& b, const cv::Matx23d& m, cv::Size out) {
  const double xs[4] = {b.x0, b.x1, b.x0, b.x1}, ys[4] = {b.y0, b.y0, b.y1, b.y1};
  double x0 = 1e30, y0 = 1e30, x1 = -1e30, y1 = -1e30;
  for (int i = 0; i < 4; ++i) {
    const double x = m(0, 0) * xs[i] + m(0, 1) * ys[i] + m(0, 2);
    const double y = m(1, 0) * xs[i] + m(1, 1) * ys[i] + m(1, 2);
    x0 = std::min(x0, x);
    x1 = std::max(x1, x);
    y0 = std::min(y0, y);
    y1 = std::max(y1, y);
  }
  auto clip = [](double v, double hi) { return static_cast<float>(std::clamp(v, 0.0, hi)); };
  return {clip(x0, out.width), clip(y0, out.height), clip(x1, out.width), clip(y1, out.height),
          b.label};
}

void adjust_colour(cv::Mat& rgb, double brightness, double contrast, double saturation,
                   double hue) {
  ENDOKED_CHECK(rgb.type() == CV_8UC3, "adjust_colour expects 8-bit RGB");
  if (hue != 0.0) {
    cv::Mat hsv;
    cv::cvtColor(rgb, hsv, cv::COLOR_RGB2HSV);  // H in [0, 180)
    const int shift = static_cast<int>(std::lround(hue * 180.0));
    for (int y = 0; y < hsv.rows; ++y) {
      auto* p = hsv.ptr<cv::Vec3b>(y);
      for (int x = 0; x < hsv.cols; ++x)
        p[x][0] = static_cast<uchar>((p[x][0] + shift + 180) % 180);
    }
    cv::cvtColor(hsv, rgb, cv::COLOR_HSV2RGB);
  }
  if (brightness == 1.0 && contrast == 1.0 && saturation == 1.0) return;
  const double mean_grey = contrast != 1.0
                               ? cv::mean(rgb).val[0] * 0.299 + cv::mean(rgb).val[1] * 0.587 +
                                     cv::mean(rgb).val[2] * 0.114
                               : 0.0;
  for (int y = 0; y < rgb.rows; ++y) {
    auto* p = rgb.ptr<cv::Vec3b>(y);
    for (int x = 0; x < rgb.cols; ++x) {
      float c[3] = {p[x][0] * static_cast<float>(brightness),
                    p[x][1] * static_cast<float>(brightness),
                    p[x][2] * static_cast<float>(brightness)};
      const float grey = 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2];
      for (int k = 0; k < 3; ++k) {
        float v = grey + static_cast<float>(saturation) * (c[k] - grey);
        v = static_cast<float>(mean_grey * brightness) +
            static_cast<float>(contrast) * (v - static_cast<float>(mean_grey * brightness));
        p[x][k] = cv::saturate_cast<uchar>(v);
      }
    }
  }
}

cv::Mat normalise(const cv::Mat& rgb, const cv::Vec3f& mean, const cv::Vec3f& std) {
  ENDOKED_CHECK(rgb.type() == CV_8UC3, "normalise expects 8-bit RGB");
  cv::Mat out(rgb.size(), CV_32FC3);
  const cv::Vec3f scale(1.0f / (255.0f * std[0]), 1.0f / (255.0f * std[1]),
                        1.0f / (255.0f * std[2]));
  const cv::Vec3f shift(-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]);
  for (int y = 0; y < rgb.rows; ++y) {
    const auto* s = rgb.ptr<cv::Vec3b>(y);
    auto* d = out.ptr<cv::Vec3f>(y);
    for (int x = 0; x < rgb.cols; ++x)
      for (int k = 0; k < 3; ++k) d[x][k] = s[x][k] * scale[k] + shift[k];
  }
  return out;
}

void apply_affine(Sample& s, const cv::Matx23d& m, cv::Size out) {
  s.image = warp(s.image, m, out, cv::INTER_LINEAR);
  if (!s.mask.empty()) s.mask = warp(s.mask, m, out, cv::INTER_NEAREST);
  // Box edges are not pixel centres: shift to centre coordinates, map, shift back.
  cv::Matx23d edges = m;
  edges(0, 2) += 0.5 - 0.5 * (m(0, 0) + m(0, 1));
  edges(1, 2) += 0.5 - 0.5 * (m(1, 0) + m(1, 1));
  std::vector<Box> kept;
  for (const Box& b : s.boxes) {
    const Box nb = map_box(b, edges, out);
    if (nb.x1 - nb.x0 >= 1.0f && nb.y1 - nb.y0 >= 1.0f) kept.push_back(nb);
  }
  s.boxes = std::move(kept);
}

// ---------------- transforms ----------------

namespace {

cv::Size spec_size(const TransformSpec& s) {
  ENDOKED_CHECK(s.size.size() == 2 && s.size[0] > 0 && s.size[1] > 0, "transform '", s.name,
                "' needs size: [width, height]");
  return {s.size[0], s.size[1]};
}

// Scales the source rectangle (x, y, w, h) onto the whole output.
cv::Matx23d crop_to(double x, double y, double w, double h, cv::Size out) {
  const double sx = out.width / w, sy = out.height / h;
  // pixel centres: out = (in + 0.5) * s - 0.5
  return {sx, 0, (0.5 - x) * sx - 0.5, 0, sy, (0.5 - y) * sy - 0.5};
}

class Resize final : public Transform {
 public:
  explicit Resize(cv::Size size) : size_(size) {}
  std::string name() const override { return "resize"; }
  void apply(Sample& s, Rng&) const override {
    const cv::Size in = s.image.size();
    cv::Mat out;
    cv::resize(s.image, out, size_, 0, 0, cv::INTER_LINEAR);
    s.image = out;
    if (!s.mask.empty()) cv::resize(s.mask, s.mask, size_, 0, 0, cv::INTER_NEAREST);
    const float fx = static_cast<float>(size_.width) / in.width,
                fy = static_cast<float>(size_.height) / in.height;
    for (Box& b : s.boxes) b = {b.x0 * fx, b.y0 * fy, b.x1 * fx, b.y1 * fy, b.label};
  }
  cv::Size2d needed_input(cv::Size2d) const override {
    return {double(size_.width), double(size_.height)};
  }

 private:
  cv::Size size_;
};

// torchvision's RandomResizedCrop: up to 10 draws of (area fraction, log-uniform aspect), then
// the central crop at the closest allowed ratio.
class RandomResizedCrop final : public Transform {
 public:
  RandomResizedCrop(cv::Size size, std::vector<double> scale, std::vector<double> ratio)
      : size_(size), scale_(std::move(scale)), ratio_(std::move(ratio)) {
    ENDOKED_CHECK(scale_.size() == 2 && 0 < scale_[0] && scale_[0] <= scale_[1] && scale_[1] <= 1,
                  "random_resized_crop.scale must be [min, max] in (0, 1]");
    ENDOKED_CHECK(ratio_.size() == 2 && 0 < ratio_[0] && ratio_[0] <= ratio_[1],
                  "random_resized_crop.ratio must be [min, max] > 0");
  }
  std::string name() const override { return "random_resized_crop"; }
  void apply(Sample& s, Rng& rng) const override {
    const double W = s.image.cols, H = s.image.rows, area = W * H;
    double x = 0, y = 0, w = W, h = H;
    bool found = false;
    for (int i = 0; i < 10 && !found; ++i) {
      const double a = area * rng.uniform(scale_[0], scale_[1]);
      const double r = std::exp(rng.uniform(std::log(ratio_[0]), std::log(ratio_[1])));
      const double cw = std::sqrt(a * r), ch = std::sqrt(a / r);
      const double u = rng.uniform(), v = rng.uniform();  // drawn every try: fixed stream length
      if (cw <= W && ch <= H) {
        w = cw;
        h = ch;
        x = u * (W - w);
        y = v * (H - h);
        found = true;
      }
    }
    if (!found) {
      const double r = W / H;
      if (r < ratio_[0]) {
        w = W;
        h = W / ratio_[0];
      } else if (r > ratio_[1]) {
        h = H;
        w = H * ratio_[1];
      }
      x = (W - w) / 2;
      y = (H - h) / 2;
    }
    apply_affine(s, crop_to(x, y, w, h, size_), size_);
  }
  cv::Size2d needed_input(cv::Size2d in) const override {
    // The smallest crop side that can be drawn: sqrt(min area · min/max ratio).
    const double area = in.width * in.height * scale_[0];
    const double min_w = std::min(in.width, std::sqrt(area * ratio_[0]));
    const double min_h = std::min(in.height, std::sqrt(area / ratio_[1]));
    const double f = std::max(size_.width / min_w, size_.height / min_h);
    return {in.width * f, in.height * f};
  }

 private:
  cv::Size size_;
  std::vector<double> scale_, ratio_;
};

class Flip final : public Transform {
 public:
  Flip(bool horizontal, double p) : horizontal_(horizontal), p_(p) {}
  std::string name() const override { return horizontal_ ? "hflip" : "vflip"; }
  void apply(Sample& s, Rng& rng) const override {
    if (!rng.bernoulli(p_)) return;
    const int code = horizontal_ ? 1 : 0;
    cv::flip(s.image, s.image, code);
    if (!s.mask.empty()) cv::flip(s.mask, s.mask, code);
    flip_boxes(s.boxes, s.image.size(), horizontal_);
  }
  bool horizontal() const { return horizontal_; }
  double p() const { return p_; }

 private:
  bool horizontal_;
  double p_;
};

class Rotate final : public Transform {
 public:
  Rotate(double degrees, double p) : degrees_(degrees), p_(p) {}
  std::string name() const override { return "rotate"; }
  void apply(Sample& s, Rng& rng) const override {
    const bool go = rng.bernoulli(p_);
    const double angle = rng.uniform(-degrees_, degrees_);
    if (!go) return;
    const cv::Point2f centre(s.image.cols / 2.0f - 0.5f, s.image.rows / 2.0f - 0.5f);
    const cv::Mat r = cv::getRotationMatrix2D(centre, angle, 1.0);
    apply_affine(s, cv::Matx23d(r), s.image.size());
  }

 private:
  double degrees_, p_;
};

class ColourJitter final : public Transform {
 public:
  explicit ColourJitter(const TransformSpec& s) : s_(s) {
    ENDOKED_CHECK(s.hue >= 0 && s.hue <= 0.5, "colour_jitter.hue must be in [0, 0.5]");
  }
  std::string name() const override { return "colour_jitter"; }
  void apply(Sample& s, Rng& rng) const override {
    const double b = rng.uniform(1 - s_.brightness, 1 + s_.brightness);
    const double c = rng.uniform(1 - s_.contrast, 1 + s_.contrast);
    const double sat = rng.uniform(1 - s_.saturation, 1 + s_.saturation);
    const double h = rng.uniform(-s_.hue, s_.hue);
    adjust_colour(s.image, b, c, sat, h);
  }

 private:
  TransformSpec s_;
};

class Normalise final : public Transform {
 public:
  Normalise(const std::vector<double>& mean, const std::vector<double>& std) {
    ENDOKED_CHECK(mean.size() == 3 && std.size() == 3, "normalise needs 3 means and 3 stds");
    for (int k = 0; k < 3; ++k) {
      ENDOKED_CHECK_GT(std[k], 0.0, "normalise.std");
      mean_[k] = static_cast<float>(mean[k]);
      std_[k] = static_cast<float>(std[k]);
    }
  }
  std::string name() const override { return "normalise"; }
  void apply(Sample& s, Rng&) const override { s.image = normalise(s.image, mean_, std_); }
  const cv::Vec3f& mean() const { return mean_; }
  const cv::Vec3f& std() const { return std_; }

 private:
  cv::Vec3f mean_, std_;
};

}  // namespace

bool TransformSpec::takes(const std::string& key) const {
  static const std::map<std::string, std::set<std::string>> kParams = {
      {"resize", {"size"}},
      {"random_resized_crop", {"size", "scale", "ratio"}},
      {"hflip", {"p"}},
      {"vflip", {"p"}},
      {"rotate", {"p", "degrees"}},
      {"colour_jitter", {"brightness", "contrast", "saturation", "hue"}},
      {"color_jitter", {"brightness", "contrast", "saturation", "hue"}},
      {"normalise", {"mean", "std"}},
      {"normalize", {"mean", "std"}}};
  const auto it = kParams.find(name);
  return it == kParams.end() || it->second.count(key) > 0;  // unknown names fail in make_transform
}

std::unique_ptr<Transform> make_transform(const TransformSpec& s) {
  if (s.name == "resize") return std::make_unique<Resize>(spec_size(s));
  if (s.name == "random_resized_crop")
    return std::make_unique<RandomResizedCrop>(spec_size(s), s.scale, s.ratio);
  if (s.name == "hflip") return std::make_unique<Flip>(true, s.p);
  if (s.name == "vflip") return std::make_unique<Flip>(false, s.p);
  if (s.name == "rotate") return std::make_unique<Rotate>(s.degrees, s.p);
  if (s.name == "colour_jitter" || s.name == "color_jitter")
    return std::make_unique<ColourJitter>(s);
  if (s.name == "normalise" || s.name == "normalize")
    return std::make_unique<Normalise>(s.mean, s.std);
  ENDOKED_FAIL("unknown transform '", s.name,
               "' (resize, random_resized_crop, hflip, vflip, rotate, colour_jitter, normalise)");
}

Pipeline::Pipeline(const std::vector<TransformSpec>& specs) {
  for (const auto& s : specs) add(make_transform(s));
}

void Pipeline::apply(Sample& sample, Rng& rng) const {
  for (const auto& t : transforms_) t->apply(sample, rng);
}

double Pipeline::pop_final_hflip() {
  if (transforms_.empty()) return -1;
  const auto* f = dynamic_cast<const Flip*>(transforms_.back().get());
  if (!f || !f->horizontal()) return -1;
  const double p = f->p();
  transforms_.pop_back();
  return p;
}

bool Pipeline::pop_normalise(cv::Vec3f& mean, cv::Vec3f& std) {
  if (transforms_.empty()) return false;
  const auto* n = dynamic_cast<const Normalise*>(transforms_.back().get());
  if (!n) return false;
  mean = n->mean();
  std = n->std();
  transforms_.pop_back();
  return true;
}

cv::Size Pipeline::decode_size(int width, int height) const {
  for (const auto& t : transforms_) {
    const cv::Size2d need = t->needed_input(cv::Size2d(width, height));
    if (need.width > 0 || need.height > 0)
      return {static_cast<int>(std::ceil(need.width)), static_cast<int>(std::ceil(need.height))};
  }
  return {0, 0};
}

}  // namespace endoked::data
