// The refiners on a drawn frame: a dark-red lesion of irregular outline on textured pink
// mucosa, its box with some slack, and a blurred CAM over it.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "endoked/core/error.h"
#include "endoked/vision/refine.h"

namespace endoked::vision {
namespace {

struct Scene {
  cv::Mat image, truth, cam;
  Box box;
};

Scene scene() {
  Scene s;
  const int h = 240, w = 320;
  s.image = cv::Mat(h, w, CV_8UC3, cv::Scalar(220, 140, 130));
  cv::Mat noise(h, w, CV_8UC3);
  cv::randn(noise, cv::Scalar(0, 0, 0), cv::Scalar(12, 12, 12));
  s.image += noise;
  s.truth = cv::Mat::zeros(h, w, CV_8UC1);
  // An egg shape: an ellipse with a smaller one bulging out of its side.
  cv::ellipse(s.truth, {150, 120}, {60, 40}, 20, 0, 360, 1, -1);
  cv::ellipse(s.truth, {200, 140}, {25, 20}, 0, 0, 360, 1, -1);
  s.image.setTo(cv::Scalar(150, 40, 50), s.truth);
  cv::GaussianBlur(s.image, s.image, {5, 5}, 1.5);
  const Box tight = mask_box(s.truth);
  s.box = {tight.x0 - 6, tight.y0 - 6, tight.x1 + 6, tight.y1 + 6};
  s.truth.convertTo(s.cam, CV_32F);
  cv::GaussianBlur(s.cam, s.cam, {0, 0}, 12);
  double hi = 0;
  cv::minMaxLoc(s.cam, nullptr, &hi);
  s.cam /= hi;
  return s;
}

double dice(const cv::Mat& a, const cv::Mat& b) {
  const double i = cv::countNonZero(a & b);
  return 2 * i / (cv::countNonZero(a) + cv::countNonZero(b));
}

TEST(Refine, EveryRefinerBeatsOrMatchesTheBoxHere) {
  const Scene s = scene();
  const RefinerOptions o;
  std::map<std::string, double> d;
  for (const std::string name : {"box", "ellipse", "grabcut", "cam"}) {
    const auto r = make_refiner(name, o);
    EXPECT_EQ(r->name(), name);
    const Refined out = r->refine(s.image, {s.box}, s.cam);
    ASSERT_EQ(out.mask.size(), s.image.size()) << name;
    d[name] = dice(out.mask, s.truth);
    EXPECT_GE(out.quality, 0.0) << name;
    EXPECT_LE(out.quality, 1.0) << name;
    EXPECT_EQ(judge_mask(out, MaskRules{}), "") << name;
  }
  EXPECT_NEAR(d["box"],
              2.0 * cv::countNonZero(s.truth) /
                  (cv::countNonZero(s.truth) + static_cast<double>(s.box.area())),
              1e-9);
  EXPECT_GT(d["ellipse"], d["box"]);
  EXPECT_GT(d["grabcut"], 0.9);  // clear colour contrast: GrabCut finds the outline
  EXPECT_GT(d["grabcut"], d["ellipse"]);
  EXPECT_GT(d["cam"], d["box"]);
  EXPECT_TRUE(make_refiner("cam", o)->needs_cam());
  EXPECT_THROW(make_refiner("cam", o)->refine(s.image, {s.box}, cv::Mat()), Error);
}

TEST(Refine, ScoresAndEveryRejectReason) {
  const Scene s = scene();
  const Refined box = make_refiner("box", {})->refine(s.image, {s.box}, cv::Mat());
  EXPECT_DOUBLE_EQ(box.scores["box_share"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(box.scores["main_share"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(box.scores["cam_mean"].get<double>(), -1.0);
  EXPECT_NEAR(box.quality, M_PI / 4, 0.02);  // without a CAM: IoU with the ellipse
  const MaskRules rules;
  const int h = s.image.rows, w = s.image.cols;
  const auto judge = [&](const cv::Mat& m, const std::vector<Box>& boxes) {
    return judge_mask(score_mask(m, boxes, cv::Mat()), rules);
  };
  EXPECT_EQ(judge(cv::Mat::zeros(h, w, CV_8UC1), {s.box}), "empty");
  EXPECT_EQ(judge(box_mask(h, w, {0, 0, 5, 5}), {{0, 0, 5, 5}}), "too_small");
  EXPECT_EQ(judge(box_mask(h, w, {0, 0, w, h}), {{0, 0, w, h}}), "too_large");
  EXPECT_EQ(judge(box_mask(h, w, {0, 0, 30, 30}), {{0, 0, 100, 100}}), "box_share");
  cv::Mat two = box_mask(h, w, {0, 0, 40, 40}) | box_mask(h, w, {60, 0, 100, 40});
  EXPECT_EQ(judge(two, {{0, 0, 100, 40}}), "fragmented");
  MaskRules lenient = rules;
  lenient.min_main_share = 0;
  EXPECT_EQ(judge_mask(score_mask(two, {{0, 0, 100, 40}}, cv::Mat()), lenient), "");
}

TEST(Refine, GrabCutFallsBackWhenItCannotStart) {
  const Scene s = scene();
  // A box over the whole frame leaves no background: the ellipse stands in, and says so.
  const Box all{0, 0, s.image.cols, s.image.rows};
  const Refined r = make_refiner("grabcut", {})->refine(s.image, {all}, cv::Mat());
  EXPECT_EQ(r.scores["fallbacks"].get<int>(), 1);
  EXPECT_EQ(cv::countNonZero(r.mask != ellipse_mask(s.image.rows, s.image.cols, all)), 0);
}

TEST(Refine, RegistryNamesAndAddsRefiners) {
  EXPECT_EQ(refiner_names(), (std::vector<std::string>{"box", "cam", "ellipse", "grabcut", "sam"}));
  try {
    make_refiner("unet", {});
    FAIL() << "no unet refiner is registered";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("box, cam, ellipse, grabcut, sam"), std::string::npos);
  }
  struct Empty final : Refiner {
    std::string name() const override { return "empty"; }
    Refined refine(const cv::Mat& image, const std::vector<Box>& boxes,
                   const cv::Mat& cam) const override {
      return score_mask(cv::Mat::zeros(image.size(), CV_8UC1), boxes, cam);
    }
  };
  register_refiner("empty", [](const RefinerOptions&) { return std::make_unique<Empty>(); });
  const Scene s = scene();
  EXPECT_EQ(judge_mask(make_refiner("empty", {})->refine(s.image, {s.box}, s.cam), {}), "empty");
}

}  // namespace
}  // namespace endoked::vision
