#include "endoked/vision/refine.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

#include "endoked/core/error.h"
#include "endoked/vision/sam.h"

namespace endoked::vision {

void Refiner::compute_features(const std::vector<cv::Mat>&, const std::vector<float*>&) const {
  ENDOKED_FAIL("the ", name(), " refiner has no image features");
}

Refined Refiner::refine_with(const cv::Mat& image, const std::vector<Box>& boxes,
                             const cv::Mat& cam, const float*) const {
  return refine(image, boxes, cam);
}

namespace {

cv::Mat union_of(int h, int w, const std::vector<Box>& boxes, bool ellipse) {
  cv::Mat m = cv::Mat::zeros(h, w, CV_8UC1);
  for (const Box& b : boxes) m |= ellipse ? ellipse_mask(h, w, b) : box_mask(h, w, b);
  return m;
}

class BoxRefiner final : public Refiner {
 public:
  explicit BoxRefiner(bool ellipse) : ellipse_(ellipse) {}
  std::string name() const override { return ellipse_ ? "ellipse" : "box"; }
  Refined refine(const cv::Mat& image, const std::vector<Box>& boxes,
                 const cv::Mat& cam) const override {
    return score_mask(union_of(image.rows, image.cols, boxes, ellipse_), boxes, cam);
  }

 private:
  bool ellipse_;
};

class CamRefiner final : public Refiner {
 public:
  explicit CamRefiner(CamRefineOptions o) : o_(o) {}
  std::string name() const override { return "cam"; }
  bool needs_cam() const override { return true; }
  Refined refine(const cv::Mat& image, const std::vector<Box>& boxes,
                 const cv::Mat& cam) const override {
    ENDOKED_CHECK(!cam.empty() && cam.size() == image.size(),
                  "the cam refiner needs the image's CAM (localise.save_cams)");
    const cv::Mat region = union_of(image.rows, image.cols, boxes, o_.ellipse);
    cv::Mat mask = (cam >= o_.threshold) & (region != 0);
    return score_mask(mask / 255, boxes, cam);
  }

 private:
  CamRefineOptions o_;
};

class GrabCutRefiner final : public Refiner {
 public:
  explicit GrabCutRefiner(GrabCutOptions o) : o_(o) {
    ENDOKED_CHECK(
        o_.iterations >= 1 && o_.size >= 16 && o_.margin >= 0 && o_.core >= 0 && o_.core < 1,
        "refine.grabcut: iterations ≥ 1, size ≥ 16, margin ≥ 0 and core in [0, 1) "
        "required");
  }
  std::string name() const override { return "grabcut"; }
  Refined refine(const cv::Mat& image, const std::vector<Box>& boxes,
                 const cv::Mat& cam) const override {
    const int h = image.rows, w = image.cols;
    const double s = std::min(1.0, static_cast<double>(o_.size) / std::max(h, w));
    cv::Mat small = image, small_cam = cam;
    if (s < 1.0) {
      cv::resize(image, small, cv::Size(), s, s, cv::INTER_AREA);
      if (!cam.empty()) cv::resize(cam, small_cam, small.size(), 0, 0, cv::INTER_AREA);
    }
    cv::Mat out = cv::Mat::zeros(h, w, CV_8UC1);
    int fallbacks = 0;
    for (const Box& b : boxes) {
      const Box sb{static_cast<int>(std::floor(b.x0 * s)), static_cast<int>(std::floor(b.y0 * s)),
                   std::max(static_cast<int>(std::ceil(b.x1 * s)),
                            static_cast<int>(std::floor(b.x0 * s)) + 1),
                   std::max(static_cast<int>(std::ceil(b.y1 * s)),
                            static_cast<int>(std::floor(b.y0 * s)) + 1)};
      cv::Mat m;
      if (!one_box(small, small_cam, sb, m)) {
        ++fallbacks;
        out |= o_.ellipse ? ellipse_mask(h, w, b) : box_mask(h, w, b);
        continue;
      }
      if (s < 1.0) cv::resize(m, m, image.size(), 0, 0, cv::INTER_NEAREST);
      out |= m;
    }
    Refined r = score_mask(out, boxes, cam);
    r.scores["fallbacks"] = fallbacks;
    return r;
  }

 private:
  // GrabCut from one box on the (downscaled) image; false when it cannot start.
  bool one_box(const cv::Mat& image, const cv::Mat& cam, const Box& b, cv::Mat& result) const {
    const int h = image.rows, w = image.cols;
    const int mx = static_cast<int>(std::lround(o_.margin * b.width()));
    const int my = static_cast<int>(std::lround(o_.margin * b.height()));
    const cv::Rect frame(0, 0, w, h);
    const cv::Rect box = cv::Rect(b.x0, b.y0, b.width(), b.height()) & frame;
    const cv::Rect grown =
        cv::Rect(b.x0 - mx, b.y0 - my, b.width() + 2 * mx, b.height() + 2 * my) & frame;
    if (box.area() == 0) return false;
    cv::Mat gc(h, w, CV_8UC1, cv::Scalar(cv::GC_BGD));
    gc(grown).setTo(cv::GC_PR_BGD);
    if (o_.ellipse) {
      gc(box).setTo(cv::GC_PR_BGD);
      gc.setTo(cv::GC_PR_FGD, ellipse_mask(h, w, b));
    } else {
      gc(box).setTo(cv::GC_PR_FGD);
    }
    if (o_.core > 0) {
      const double cx = 0.5 * (b.x0 + b.x1), cy = 0.5 * (b.y0 + b.y1);
      const double hw = 0.5 * o_.core * b.width(), hh = 0.5 * o_.core * b.height();
      const Box core{static_cast<int>(std::floor(cx - hw)), static_cast<int>(std::floor(cy - hh)),
                     static_cast<int>(std::ceil(cx + hw)), static_cast<int>(std::ceil(cy + hh))};
      gc.setTo(cv::GC_FGD, ellipse_mask(h, w, core));
    }
    if (!cam.empty() && o_.cam_foreground > 0)
      gc.setTo(cv::GC_FGD, (cam >= o_.cam_foreground) & (box_mask(h, w, b) != 0));
    const int background =
        cv::countNonZero(gc == cv::GC_BGD) + cv::countNonZero(gc == cv::GC_PR_BGD);
    if (background < 16 || cv::countNonZero(gc == cv::GC_BGD) == 0) return false;
    cv::Mat bgd, fgd;
    cv::Mat bgr;
    cv::cvtColor(image, bgr, cv::COLOR_RGB2BGR);
    try {
      cv::grabCut(bgr, gc, cv::Rect(), bgd, fgd, o_.iterations, cv::GC_INIT_WITH_MASK);
    } catch (const cv::Exception&) {
      return false;  // e.g. too few samples of a class to fit its colour model
    }
    result = ((gc == cv::GC_FGD) | (gc == cv::GC_PR_FGD)) & (box_mask(h, w, b) != 0);
    result /= 255;
    return true;
  }
  GrabCutOptions o_;
};

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, RefinerFactory>& registry() {
  static std::map<std::string, RefinerFactory> r = {
      {"box", [](const RefinerOptions&) { return std::make_unique<BoxRefiner>(false); }},
      {"ellipse", [](const RefinerOptions&) { return std::make_unique<BoxRefiner>(true); }},
      {"grabcut",
       [](const RefinerOptions& o) { return std::make_unique<GrabCutRefiner>(o.grabcut); }},
      {"cam", [](const RefinerOptions& o) { return std::make_unique<CamRefiner>(o.cam); }},
      {"sam", [](const RefinerOptions& o) { return sam::make_refiner(o.sam); }},
  };
  return r;
}

}  // namespace

void register_refiner(const std::string& name, RefinerFactory factory) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[name] = std::move(factory);
}

std::vector<std::string> refiner_names() {
  std::lock_guard<std::mutex> lock(registry_mutex());
  std::vector<std::string> out;
  for (const auto& [name, f] : registry()) out.push_back(name);
  return out;
}

std::unique_ptr<Refiner> make_refiner(const std::string& name, const RefinerOptions& options) {
  RefinerFactory f;
  {
    std::lock_guard<std::mutex> lock(registry_mutex());
    const auto it = registry().find(name);
    if (it != registry().end()) f = it->second;
  }
  if (!f) {
    std::string known;
    for (const auto& n : refiner_names()) known += (known.empty() ? "" : ", ") + n;
    ENDOKED_FAIL("unknown refiner '", name, "' (registered: ", known, ")");
  }
  return f(options);
}

Refined score_mask(cv::Mat mask, const std::vector<Box>& boxes, const cv::Mat& cam) {
  ENDOKED_CHECK(!mask.empty() && mask.type() == CV_8UC1, "score_mask: an 8-bit mask");
  Refined r;
  r.mask = std::move(mask);
  const int h = r.mask.rows, w = r.mask.cols;
  const cv::Mat on = r.mask != 0;
  const double pixels = cv::countNonZero(on);
  const cv::Mat boxes_m = union_of(h, w, boxes, false), ellipses = union_of(h, w, boxes, true);
  const double box_pixels = cv::countNonZero(boxes_m);
  const double inside = cv::countNonZero(on & (boxes_m != 0));
  const auto comps = components(r.mask);
  const double e_inter = cv::countNonZero(on & (ellipses != 0));
  const double e_union = pixels + cv::countNonZero(ellipses) - e_inter;
  double cam_mean = -1;
  if (!cam.empty()) cam_mean = pixels > 0 ? cv::mean(cam, on)[0] : 0.0;
  r.scores = {{"box_share", box_pixels > 0 ? inside / box_pixels : 0.0},
              {"main_share", pixels > 0 ? static_cast<double>(comps.at(0).area) / pixels : 0.0},
              {"area", pixels / (static_cast<double>(h) * w)},
              {"components", comps.size()},
              {"cam_mean", cam_mean},
              {"ellipse_iou", e_union > 0 ? e_inter / e_union : 0.0}};
  r.quality = cam_mean >= 0 ? cam_mean : r.scores["ellipse_iou"].get<double>();
  return r;
}

std::string judge_mask(const Refined& r, const MaskRules& rules) {
  if (!r.reject.empty()) return r.reject;
  const double area = r.scores.value("area", 0.0);
  if (area <= 0) return "empty";
  if (area < rules.min_area) return "too_small";
  if (area > rules.max_area) return "too_large";
  if (r.scores.value("box_share", 0.0) < rules.min_box_share) return "box_share";
  if (rules.min_main_share > 0 && r.scores.value("main_share", 0.0) < rules.min_main_share)
    return "fragmented";
  return "";
}

}  // namespace endoked::vision
