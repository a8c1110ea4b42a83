#include "endoked/data/transforms.h"

#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include "../common/test_util.h"
#include "endoked/core/config.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/data/image_codec.h"

namespace endoked::data {
namespace {

// An image with a filled rectangle, the same rectangle as mask and box.
Sample rect_sample(int w, int h, cv::Rect r) {
  Sample s;
  s.image = cv::Mat(h, w, CV_8UC3, cv::Scalar(20, 30, 40));
  cv::rectangle(s.image, r, cv::Scalar(200, 100, 50), cv::FILLED);
  s.mask = cv::Mat::zeros(h, w, CV_8U);
  cv::rectangle(s.mask, r, cv::Scalar(255), cv::FILLED);
  s.boxes.push_back({float(r.x), float(r.y), float(r.x + r.width), float(r.y + r.height), 1});
  return s;
}

// The mask's bounding rectangle and the box agree within `tol` pixels.
void expect_mask_matches_box(const Sample& s, double tol) {
  ASSERT_EQ(s.boxes.size(), 1u);
  const cv::Rect m = cv::boundingRect(s.mask);
  const Box& b = s.boxes[0];
  EXPECT_NEAR(m.x, b.x0, tol);
  EXPECT_NEAR(m.y, b.y0, tol);
  EXPECT_NEAR(m.x + m.width, b.x1, tol);
  EXPECT_NEAR(m.y + m.height, b.y1, tol);
  EXPECT_EQ(b.label, 1);
}

TransformSpec spec(const std::string& name) {
  TransformSpec t;
  t.name = name;
  return t;
}

TEST(Transforms, FlipsMoveImageMaskAndBoxTogether) {
  Sample s = rect_sample(100, 80, {10, 20, 20, 20});
  TransformSpec h = spec("hflip");
  h.p = 1.0;
  Rng rng(1);
  make_transform(h)->apply(s, rng);
  EXPECT_FLOAT_EQ(s.boxes[0].x0, 70);
  EXPECT_FLOAT_EQ(s.boxes[0].x1, 90);
  expect_mask_matches_box(s, 0.0);
  EXPECT_EQ(s.image.at<cv::Vec3b>(25, 75)[0], 200);
  TransformSpec v = spec("vflip");
  v.p = 1.0;
  make_transform(v)->apply(s, rng);
  EXPECT_FLOAT_EQ(s.boxes[0].y0, 40);
  expect_mask_matches_box(s, 0.0);
}

TEST(Transforms, ResizeCropAndRotateKeepMaskAndBoxAligned) {
  for (std::uint64_t seed = 0; seed < 40; ++seed) {
    Sample s = rect_sample(160, 120, {40, 30, 60, 40});
    TransformSpec rrc = spec("random_resized_crop");
    rrc.size = {96, 64};
    rrc.scale = {0.5, 1.0};
    Rng rng(seed);
    make_transform(rrc)->apply(s, rng);
    ASSERT_EQ(s.image.cols, 96);
    ASSERT_EQ(s.mask.rows, 64);
    if (!s.boxes.empty() && cv::countNonZero(s.mask) > 20) expect_mask_matches_box(s, 1.5);
  }
  Sample s = rect_sample(160, 120, {40, 30, 60, 40});
  TransformSpec r = spec("resize");
  r.size = {80, 240};
  Rng rng(2);
  make_transform(r)->apply(s, rng);
  EXPECT_FLOAT_EQ(s.boxes[0].x0, 20);
  EXPECT_FLOAT_EQ(s.boxes[0].y1, 140);
  expect_mask_matches_box(s, 1.0);
  // Rotation: the box encloses the rotated rectangle.
  Sample t = rect_sample(160, 120, {60, 40, 40, 40});
  TransformSpec rot = spec("rotate");
  rot.p = 1.0;
  rot.degrees = 30;
  Rng rr(5);
  make_transform(rot)->apply(t, rr);
  const cv::Rect m = cv::boundingRect(t.mask);
  EXPECT_NEAR(m.x, t.boxes[0].x0, 1.5);
  EXPECT_NEAR(m.x + m.width, t.boxes[0].x1, 1.5);
  EXPECT_GT(m.width, 42);  // a rotated square's extent grows
}

TEST(Transforms, SameRngSameResult) {
  TransformSpec rrc = spec("random_resized_crop");
  rrc.size = {64, 64};
  TransformSpec jitter = spec("colour_jitter");
  jitter.brightness = jitter.contrast = jitter.saturation = 0.3;
  jitter.hue = 0.05;
  Pipeline p({rrc, jitter, spec("hflip")});
  Sample a = rect_sample(120, 90, {10, 10, 50, 50}), b = rect_sample(120, 90, {10, 10, 50, 50});
  Rng ra(77), rb(77);
  p.apply(a, ra);
  p.apply(b, rb);
  EXPECT_EQ(cv::norm(a.image, b.image, cv::NORM_INF), 0.0);
}

TEST(Transforms, NormaliseAndJitter) {
  cv::Mat img(2, 2, CV_8UC3, cv::Scalar(255, 0, 128));
  const cv::Mat n = normalise(img, {0.5f, 0.5f, 0.5f}, {0.5f, 0.25f, 1.0f});
  EXPECT_NEAR(n.at<cv::Vec3f>(0, 0)[0], 1.0, 1e-6);
  EXPECT_NEAR(n.at<cv::Vec3f>(0, 0)[1], -2.0, 1e-6);
  EXPECT_NEAR(n.at<cv::Vec3f>(1, 1)[2], 128 / 255.0 - 0.5, 1e-6);
  cv::Mat grey(4, 4, CV_8UC3, cv::Scalar(100, 100, 100));
  adjust_colour(grey, 1.5, 1.0, 1.0, 0.0);
  EXPECT_EQ(grey.at<cv::Vec3b>(0, 0)[1], 150);
  cv::Mat col(4, 4, CV_8UC3, cv::Scalar(200, 100, 50));
  adjust_colour(col, 1.0, 1.0, 0.0, 0.0);  // saturation 0: grey
  const auto v = col.at<cv::Vec3b>(0, 0);
  EXPECT_NEAR(v[0], v[1], 1);
  EXPECT_NEAR(v[1], v[2], 1);
  EXPECT_THROW(make_transform(spec("sharpen")), Error);
  TransformSpec bad = spec("resize");
  EXPECT_THROW(make_transform(bad), Error);
}

TEST(Transforms, DecodePlanningPicksTheDctScale) {
  TransformSpec r = spec("resize");
  r.size = {224, 224};
  Pipeline resize({spec("hflip"), r, spec("normalise")});
  EXPECT_EQ(resize.decode_size(620, 530), cv::Size(224, 224));
  TransformSpec rrc = spec("random_resized_crop");
  rrc.size = {224, 224};
  Pipeline crop({rrc});
  const cv::Size need = crop.decode_size(620, 530);
  EXPECT_GT(need.width, 620);  // small crops need every pixel: full-size decode
  EXPECT_TRUE(Pipeline({spec("hflip")}).decode_size(620, 530) == cv::Size(0, 0));

  const std::string jpeg = testing::make_jpeg(620, 530, 3);
  double scale = 0;
  const cv::Mat half = decode_rgb(jpeg, 224, 224, {}, &scale);
  EXPECT_EQ(scale, 0.5);
  EXPECT_EQ(half.cols, 310);
  EXPECT_EQ(half.rows, 265);
  const cv::Mat eighth = decode_rgb(jpeg, 70, 60, {}, &scale);
  EXPECT_EQ(scale, 0.125);
  EXPECT_EQ(eighth.cols, 78);
  const cv::Mat full = decode_rgb(jpeg, 224, 224, DecodeOptions{false}, &scale);
  EXPECT_EQ(scale, 1.0);
  EXPECT_EQ(full.cols, 620);
  // Scaled decode then resize ≈ full decode then resize.
  cv::Mat a, b;
  cv::resize(half, a, {224, 224}, 0, 0, cv::INTER_AREA);
  cv::resize(full, b, {224, 224}, 0, 0, cv::INTER_AREA);
  EXPECT_LT(cv::norm(a, b, cv::NORM_L1) / (224.0 * 224 * 3), 6.0);
  EXPECT_THROW(decode_rgb(jpeg.substr(0, jpeg.size() / 2), 0, 0), Error);
}

// A transform's spec takes only its own parameters: another transform's key is an error that
// names the file position, not a value silently ignored.
struct TransformsRoot {
  std::vector<TransformSpec> transforms;
  template <class V>
  void visit(V& v) {
    v("transforms", transforms);
  }
};

TEST(Transforms, SpecRefusesAnotherTransformsParameters) {
  using Root = TransformsRoot;
  config::Tree good;
  good.merge_text("transforms:\n  - {name: rotate, degrees: 30, p: 1}\n  - {name: hflip, p: 0.2}\n",
                  "good.yaml");
  Root r;
  config::decode(good.root(), r);
  ASSERT_EQ(r.transforms.size(), 2u);
  EXPECT_EQ(r.transforms[0].degrees, 30);
  EXPECT_EQ(r.transforms[1].p, 0.2);
  EXPECT_EQ(config::to_yaml(r).find("brightness"), std::string::npos);  // only its own keys
  config::Tree bad;
  bad.merge_text("transforms:\n  - {name: hflip, degrees: 30}\n", "bad.yaml");
  try {
    Root b;
    config::decode(bad.root(), b);
    FAIL() << "hflip accepted degrees";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("transforms[0].degrees"), std::string::npos) << m;
    EXPECT_NE(m.find("bad.yaml:2"), std::string::npos) << m;
  }
}

// A CMYK JPEG (as print workflows and some scanners write) decodes to the RGB that PIL gives for
// it; PIL (python3-pil) makes both in the test.
TEST(Transforms, CmykJpegDecodesLikePil) {
  testing::TempDir t;
  std::string out;
  const int rc = testing::run_shell(
      "/usr/bin/python3 -c \"import sys; from PIL import Image; "
      "im = Image.new('CMYK', (64, 48)); "
      "im.putdata([(x * 4, y * 5, (x + y) * 2, (x * y) % 90) for y in range(48) for x in range(64)]); "
      "im.save(sys.argv[1] + '/c.jpg', quality=95); "
      "Image.open(sys.argv[1] + '/c.jpg').convert('RGB').save(sys.argv[1] + '/c.png')\" " +
          t.path(),
      &out);
  ASSERT_EQ(rc, 0) << out;
  const std::string jpeg = files::read_all(t / "c.jpg");
  const cv::Mat ours = decode_rgb(jpeg, 0, 0);
  ASSERT_EQ(ours.cols, 64);
  ASSERT_EQ(ours.rows, 48);
  const cv::Mat pil = decode_rgb(files::read_all(t / "c.png"), 0, 0);
  const double mean_abs = cv::norm(ours, pil, cv::NORM_L1) / (64.0 * 48 * 3);
  EXPECT_LT(mean_abs, 1.0) << "mean |ours - PIL| per channel";
  EXPECT_NO_THROW(check_decodes(jpeg));
}

}  // namespace
}  // namespace endoked::data
