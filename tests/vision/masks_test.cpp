// Box and mask geometry, COCO RLE (the pycocotools counts string), mask PNGs and the PraNet
// Dice / IoU, on masks made by hand.
#include <gtest/gtest.h>

#include <opencv2/imgproc.hpp>

#include <random>

#include "endoked/core/error.h"
#include "endoked/vision/masks.h"
#include "endoked/vision/resnet.h"

namespace endoked::vision {
namespace {

TEST(Masks, BoxGeometry) {
  EXPECT_DOUBLE_EQ(box_iou({0, 0, 10, 10}, {5, 0, 15, 10}), 50.0 / 150.0);
  EXPECT_DOUBLE_EQ(box_iou({0, 0, 10, 10}, {20, 20, 30, 30}), 0.0);
  EXPECT_DOUBLE_EQ(box_iou({}, {}), 0.0);
  cv::Mat m = box_mask(20, 30, {3, 4, 13, 9});
  EXPECT_EQ(cv::countNonZero(m), 50);
  const Box b = mask_box(m);
  EXPECT_EQ(b.x0, 3);
  EXPECT_EQ(b.y0, 4);
  EXPECT_EQ(b.x1, 13);
  EXPECT_EQ(b.y1, 9);
  EXPECT_TRUE(mask_box(cv::Mat::zeros(5, 5, CV_8UC1)).empty());
  EXPECT_EQ(cv::countNonZero(box_mask(10, 10, {-5, -5, 3, 3})), 9);  // clipped
  // The inscribed ellipse covers π/4 of a large box.
  const cv::Mat e = ellipse_mask(200, 300, {20, 30, 220, 130});
  EXPECT_NEAR(cv::countNonZero(e) / (200.0 * 100.0), M_PI / 4, 0.01);
  EXPECT_EQ(mask_box(e).x0, 20);
  EXPECT_EQ(mask_box(e).y1, 130);
}

TEST(Masks, ComponentsLargestFirstEightConnected) {
  cv::Mat m = cv::Mat::zeros(20, 20, CV_8UC1);
  m(cv::Rect(0, 0, 2, 2)).setTo(1);
  m.at<std::uint8_t>(2, 2) = 1;  // diagonal neighbour: the same component (8-connected)
  m(cv::Rect(10, 10, 5, 4)).setTo(1);
  const auto c = components(m);
  ASSERT_EQ(c.size(), 2U);
  EXPECT_EQ(c[0].area, 20);
  EXPECT_EQ(c[0].box.x0, 10);
  EXPECT_EQ(c[1].area, 5);
  EXPECT_EQ(c[1].box.x1, 3);
}

TEST(Masks, RleIsColumnMajorAndStartsWithZeros) {
  // 3 × 2, column-major: column 0 = (0, 1, 1), column 1 = (1, 0, 0).
  cv::Mat m = (cv::Mat_<std::uint8_t>(3, 2) << 0, 1, 1, 0, 1, 0);
  const Rle r = rle_encode(m);
  EXPECT_EQ(r.height, 3);
  EXPECT_EQ(r.width, 2);
  EXPECT_EQ(r.counts, (std::vector<std::uint32_t>{1, 3, 2}));
  const Rle ones = rle_encode(cv::Mat::ones(2, 2, CV_8UC1));
  EXPECT_EQ(ones.counts, (std::vector<std::uint32_t>{0, 4}));
  EXPECT_EQ(cv::countNonZero(rle_decode(r) != m), 0);
  EXPECT_THROW(rle_decode({3, 2, {1, 3, 3}}), Error);
  EXPECT_THROW(rle_decode({3, 2, {1, 3}}), Error);
}

TEST(Masks, RleCountsStringAsPycocotoolsWritesIt) {
  // Worked by hand from pycocotools' rleToString: differences after the second count, 5 bits
  // per character from '0', 0x20 = more, 0x10 = the sign of the last group.
  EXPECT_EQ(rle_counts_string({0, 5, 3}), "053");
  EXPECT_EQ(rle_counts_string({100}), "T3");
  EXPECT_EQ(rle_counts_string({2, 10, 3, 4}), "2:3J");  // 4 − 10 = −6 → 'J'
  EXPECT_EQ(rle_counts_parse("2:3J", "t"), (std::vector<std::uint32_t>{2, 10, 3, 4}));
  EXPECT_EQ(rle_counts_parse("T3", "t"), (std::vector<std::uint32_t>{100}));
  EXPECT_THROW(rle_counts_parse("T", "t"), Error);    // "more" with nothing after it
  EXPECT_THROW(rle_counts_parse("0 ", "t"), Error);   // below '0'
  EXPECT_THROW(rle_counts_parse("00J", "t"), Error);  // a negative count
  std::mt19937 gen(3);
  for (int trial = 0; trial < 20; ++trial) {
    cv::Mat m(37, 53, CV_8UC1);
    cv::randu(m, 0, 2);
    cv::Mat blob = cv::Mat::zeros(37, 53, CV_8UC1);
    cv::circle(blob, {static_cast<int>(gen() % 53), static_cast<int>(gen() % 37)},
               static_cast<int>(gen() % 30), 1, -1);
    if (trial % 2) m = blob;
    const Rle r = rle_encode(m);
    const Rle back{37, 53, rle_counts_parse(rle_counts_string(r.counts), "t")};
    EXPECT_EQ(back.counts, r.counts);
    EXPECT_EQ(cv::countNonZero(rle_decode(back) != m), 0);
  }
}

TEST(Masks, PngsRoundTrip) {
  cv::Mat m = ellipse_mask(40, 60, {5, 5, 50, 30});
  const std::string png = encode_mask_png(m);
  EXPECT_EQ(png.substr(1, 3), "PNG");
  EXPECT_EQ(png[24], 1);  // bit depth 1
  EXPECT_EQ(cv::countNonZero(decode_mask(png, "m.png") != m), 0);
  EXPECT_THROW(decode_mask("not an image", "bad.png"), Error);
  cv::Mat map(4, 4, CV_32FC1, cv::Scalar(0.5));
  EXPECT_EQ(decode_mask(encode_map_png(map), "cam").at<std::uint8_t>(0, 0), 1);  // 128 > 127
}

TEST(Masks, BoxListsAndCamsParseOrNameTheirPlace) {
  const auto boxes = parse_boxes("[[1, 2, 30, 40, 0.75], [5.9, 6, 7, 8]]", "t");
  ASSERT_EQ(boxes.size(), 2u);
  EXPECT_EQ(boxes[0].x0, 1);
  EXPECT_EQ(boxes[0].y1, 40);
  EXPECT_DOUBLE_EQ(boxes[0].score, 0.75);
  EXPECT_EQ(boxes[1].x0, 5);
  EXPECT_DOUBLE_EQ(boxes[1].score, 0.0);
  EXPECT_TRUE(parse_boxes("[]", "t").empty());
  for (const char* bad :
       {"[[1, 2, 3]]", "{\"a\": 1}", "[[1, 2, 3, \"x\"]]", "[[1,2,3,4,5,6]]", "[["}) {
    try {
      parse_boxes(bad, "boxes of 'EX1/00.jpg'");
      ADD_FAILURE() << bad << " parsed";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("boxes of 'EX1/00.jpg'"), std::string::npos) << e.what();
    }
  }
  cv::Mat map(4, 5, CV_32F, cv::Scalar(0.5f));
  map.at<float>(1, 2) = 1.0f;
  const cv::Mat cam = decode_cam(encode_map_png(map), "t");
  ASSERT_EQ(cam.size(), map.size());
  EXPECT_NEAR(cam.at<float>(1, 2), 1.0f, 1e-6);
  EXPECT_NEAR(cam.at<float>(0, 0), 128.0f / 255.0f, 1e-6);
  EXPECT_TRUE(decode_cam("", "t").empty());
  EXPECT_THROW(decode_cam("not a png", "t"), Error);
}

TEST(Masks, SegmentationScoreAsPraNet) {
  const cv::Mat truth = box_mask(10, 10, {0, 0, 5, 10}) * 255;  // 50 pixels, 8-bit 0/255
  const cv::Mat pred = box_mask(10, 10, {0, 0, 10, 5}) * 255;   // 50 pixels, 25 shared
  SegmentationScore s = segmentation_score(pred, truth);
  EXPECT_DOUBLE_EQ(s.dice, 0.5);
  EXPECT_DOUBLE_EQ(s.iou, 25.0 / 75.0);
  // Min–max normalised: a probability map 0.2 / 0.3 binarises like 0 / 1.
  cv::Mat prob(10, 10, CV_32FC1, cv::Scalar(0.2));
  prob(cv::Rect(0, 0, 5, 10)).setTo(0.3);
  EXPECT_DOUBLE_EQ(segmentation_score(prob, truth).dice, 1.0);
  // Ground truth > 127: a truth of 100s is empty; a 0/1 truth counts its ones.
  EXPECT_DOUBLE_EQ(segmentation_score(pred, cv::Mat(10, 10, CV_8UC1, cv::Scalar(100))).dice, 0.0);
  EXPECT_DOUBLE_EQ(segmentation_score(pred, truth / 255).dice, 0.5);
  // A prediction of another size is resized to the truth's.
  cv::Mat big;
  cv::resize(truth, big, {40, 40}, 0, 0, cv::INTER_NEAREST);
  EXPECT_NEAR(segmentation_score(big, truth).dice, 1.0, 1e-9);
  EXPECT_DOUBLE_EQ(
      segmentation_score(cv::Mat::zeros(10, 10, CV_8UC1), cv::Mat::zeros(10, 10, CV_8UC1)).dice,
      1.0);
}

TEST(Masks, DetectionMatchesComponentsAtIoUHalf) {
  cv::Mat truth = box_mask(100, 100, {10, 10, 30, 30}) | box_mask(100, 100, {60, 60, 90, 90});
  cv::Mat pred = box_mask(100, 100, {12, 10, 32, 30}) | box_mask(100, 100, {0, 70, 5, 75});
  const Detection d = detect(pred, truth);
  EXPECT_EQ(d.predicted, 2);
  EXPECT_EQ(d.truth, 2);
  EXPECT_EQ(d.matched, 1);  // the shifted box (IoU 18·20 / 22·20 ≈ 0.82); the stray one misses
  EXPECT_NEAR(d.box_iou, box_iou({0, 10, 32, 75}, {10, 10, 90, 90}), 1e-12);
  EXPECT_DOUBLE_EQ(detect(cv::Mat::zeros(9, 9, CV_8UC1), cv::Mat::zeros(9, 9, CV_8UC1)).box_iou,
                   1.0);
  cv::Mat prob(10, 10, CV_32FC1, cv::Scalar(0.1));
  prob(cv::Rect(2, 2, 3, 3)).setTo(0.9);
  EXPECT_EQ(cv::countNonZero(binarise_prediction(prob, {20, 20})), 36);
}

TEST(Masks, AveragePrecisionAsVocAllPoint) {
  const Box a{10, 10, 30, 30}, b{50, 50, 70, 70};
  const std::vector<std::vector<Box>> truth = {{a}, {b}};
  // 0.9 hits a, 0.8 misses, 0.7 hits b: P/R (1, .5), (.5, .5), (2/3, 1) → .5·1 + .5·2/3.
  std::vector<ScoredBox> p = {{0, {11, 10, 30, 31}, 0.9}, {0, {80, 80, 90, 90}, 0.8},
                              {1, {50, 52, 70, 70}, 0.7}};
  EXPECT_NEAR(average_precision(p, truth), 0.5 + 0.5 * 2.0 / 3.0, 1e-12);
  // Order does not matter (scores do); a second box on a matched truth is a false positive.
  std::swap(p[0], p[2]);
  EXPECT_NEAR(average_precision(p, truth), 0.5 + 0.5 * 2.0 / 3.0, 1e-12);
  p.push_back({1, {50, 50, 70, 70}, 0.95});  // now the best on b; the 0.7 one is a duplicate
  // (.95 tp, .9 tp, .8 fp, .7 fp): P/R (1, .5), (1, 1), … → 1.
  EXPECT_NEAR(average_precision(p, truth), 1.0, 1e-12);
  // Below the IoU bar nothing counts; no truth at all gives 0.
  EXPECT_NEAR(average_precision({{0, {20, 20, 40, 40}, 1.0}}, truth), 0.0, 1e-12);
  EXPECT_NEAR(average_precision({{0, {20, 20, 40, 40}, 1.0}}, truth, 0.1), 0.5, 1e-12);
  EXPECT_EQ(average_precision(p, {{}, {}}), 0.0);
  EXPECT_THROW(average_precision({{5, a, 1.0}}, truth), Error);
}

TEST(Masks, DilatedResNetKeepsParametersAndDoublesTheMap) {
  auto a = make_resnet("resnet18", 1, 8), b = make_resnet("resnet18", 1, 8, 16);
  EXPECT_EQ(a->named_parameters().size(), b->named_parameters().size());
  for (const auto& p : a->named_parameters())
    EXPECT_EQ(p.value().sizes(), b->named_parameters()[p.key()].sizes()) << p.key();
  const auto x = torch::randn({1, 3, 64, 64});
  EXPECT_EQ(a->features(x).size(2), 2);
  EXPECT_EQ(b->features(x).size(2), 4);
  EXPECT_EQ(make_resnet("resnet50", 0, 4, 8)->features(x).size(3), 8);
  EXPECT_THROW(make_resnet("resnet18", 1, 8, 4), Error);
}

}  // namespace
}  // namespace endoked::vision
