// SAM in LibTorch on tiny random configurations (the same code paths as SAM ViT-B/L/H and
// MobileSAM, small widths and depths): written and re-read through the torch.save zip reader,
// configuration read back from keys and shapes, shapes, determinism, batching, prompt scaling,
// mask upscaling, stability score, and key errors. The number-by-number check against the
// official code is benchmarks/sam_reference.sh (its data is not a test dependency).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/core.hpp>

#include <algorithm>
#include <filesystem>

#include "../common/tiny_sam.h"
#include "endoked/core/error.h"
#include "endoked/vision/refine.h"
#include "endoked/vision/sam.h"
#include "endoked/vision/weights.h"

namespace endoked::vision::sam {
namespace {

using testing::random_sam;
using testing::tiny_sam_config;

std::string temp_file(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("endoked-sam-" + name)).string();
}

class SamTiny : public ::testing::TestWithParam<std::string> {};

TEST_P(SamTiny, SavedAndReadBackGivesTheSameModelAndConfig) {
  const Config c = tiny_sam_config(GetParam());
  Sam a = random_sam(c, 1);
  const std::string path = temp_file(GetParam() + ".pt");
  save_state_dict(state_dict_from(a.module()), path);
  Sam b = Sam::load(path);
  std::filesystem::remove(path);
  EXPECT_EQ(b.config().encoder, c.encoder);
  if (c.encoder == "vit") {
    EXPECT_EQ(b.config().vit.heads, 2);
    EXPECT_EQ(b.config().vit.window, 3);
    EXPECT_EQ(b.config().vit.global_blocks, std::vector<int>{1});
    EXPECT_EQ(b.config().vit.img_size, 64);
    EXPECT_EQ(b.config().vit.mlp_dim, 32);
  } else {
    EXPECT_EQ(b.config().tiny.dims, c.tiny.dims);
    EXPECT_EQ(b.config().tiny.depths, c.tiny.depths);
    EXPECT_EQ(std::vector<int>(b.config().tiny.heads.begin() + 1, b.config().tiny.heads.end()),
              (std::vector<int>{2, 3, 4}));
    EXPECT_EQ(std::vector<int>(b.config().tiny.windows.begin() + 1, b.config().tiny.windows.end()),
              (std::vector<int>{5, 7, 8}));
  }
  EXPECT_EQ(b.config().prompt.mask_chans, 8);
  EXPECT_EQ(b.config().decoder.mlp_dim, 64);
  EXPECT_EQ(a.weights_sha256(), b.weights_sha256());
  EXPECT_EQ(variant_name(b.config()), "custom");

  torch::manual_seed(5);
  const int64_t side = c.prompt.image_size, g = side / 16;
  const at::Tensor x = torch::randn({2, 3, side, side});
  const at::Tensor ea = a.encode(x), eb = b.encode(x);
  ASSERT_EQ(ea.sizes(), (std::vector<int64_t>{2, 32, g, g}));
  EXPECT_TRUE(torch::equal(ea, eb));
  EXPECT_TRUE(torch::equal(ea, a.encode(x)));  // deterministic
  // Batched = one at a time.
  EXPECT_LT((a.encode(x.slice(0, 1, 2)) - ea.slice(0, 1, 2)).abs().max().item<double>(), 1e-5);
  EXPECT_GT(ea.std().item<double>(), 0.1);

  // Prompts: two boxes at once = each alone; multimask gives 3 masks, single-mask 1.
  const at::Tensor boxes = torch::tensor({{4.0f, 8.0f, 40.0f, 50.0f}, {10.0f, 2.0f, 30.0f, 20.0f}});
  auto [sparse, dense] = b.prompt({}, {}, boxes, {});
  ASSERT_EQ(sparse.sizes(), (std::vector<int64_t>{2, 2, 32}));
  ASSERT_EQ(dense.sizes(), (std::vector<int64_t>{2, 32, g, g}));
  const at::Tensor emb = eb.slice(0, 0, 1);
  auto [logits, iou] = b.decode(emb, sparse, dense, true);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 3, 4 * g, 4 * g}));
  ASSERT_EQ(iou.sizes(), (std::vector<int64_t>{2, 3}));
  auto [s1, d1] = b.prompt({}, {}, boxes.slice(0, 1, 2), {});
  auto [l1, i1] = b.decode(emb, s1, d1, true);
  EXPECT_LT((l1[0] - logits[1]).abs().max().item<double>(), 1e-4);
  EXPECT_LT((i1[0] - iou[1]).abs().max().item<double>(), 1e-5);
  auto [single, single_iou] = b.decode(emb, sparse, dense, false);
  ASSERT_EQ(single.sizes(), (std::vector<int64_t>{2, 1, 4 * g, 4 * g}));
  EXPECT_FALSE(torch::allclose(single[0][0], logits[0][0]));  // token 0, not token 1

  // Points without a box get a padding point; with a box they do not.
  const at::Tensor pts = torch::tensor({{{20.0f, 30.0f}}});
  const at::Tensor lab = torch::tensor({{1}}, torch::kLong);
  EXPECT_EQ(b.prompt(pts, lab, {}, {}).first.size(1), 2);
  EXPECT_EQ(b.prompt(pts, lab, boxes.slice(0, 0, 1), {}).first.size(1), 3);
  EXPECT_FALSE(
      torch::allclose(b.prompt(pts, lab, {}, {}).first[0][0],
                      b.prompt(pts, torch::tensor({{0}}, torch::kLong), {}, {}).first[0][0]));
  // A mask prompt replaces the no-mask embedding.
  const auto masked = b.prompt({}, {}, boxes.slice(0, 0, 1), torch::randn({1, 1, 4 * g, 4 * g}));
  ASSERT_EQ(masked.second.sizes(), (std::vector<int64_t>{1, 32, g, g}));
  EXPECT_GT((masked.second - dense.slice(0, 0, 1)).abs().max().item<double>(), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Encoders, SamTiny, ::testing::Values("tiny_vit", "vit"));

TEST(Sam, MobileSamConfigurationIsReadFromShapes) {
  Config c;  // the defaults are MobileSAM's (vit_t)
  Sam s(c);
  const Config r = config_of(state_dict_from(s.module()), "vit_t");
  EXPECT_EQ(variant_name(r), "vit_t");
  EXPECT_EQ(r.tiny.heads, (std::vector<int>{0, 4, 5, 10}));
  EXPECT_EQ(r.tiny.windows, (std::vector<int>{0, 7, 14, 7}));
  EXPECT_EQ(r.tiny.mlp_ratio, 4);
  EXPECT_EQ(r.tiny.classes, 1000);
  EXPECT_EQ(r.prompt.grid, 64);
  EXPECT_EQ(r.decoder.mlp_dim, 2048);
  EXPECT_EQ(r.decoder.iou_depth, 3);
  // 439 tensors, as in the official mobile_sam.pt.
  EXPECT_EQ(state_dict_from(s.module()).size(), 439u);
}

TEST(Sam, KeyErrorsNameTheKeys) {
  Sam s = random_sam(tiny_sam_config("tiny_vit"), 2);
  const StateDict good = state_dict_from(s.module());
  auto expect_error = [](const StateDict& st, const std::string& needle) {
    try {
      Sam::from_state(st, "ckpt.pt");
      ADD_FAILURE() << "loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("ckpt.pt"), std::string::npos) << e.what();
    }
  };
  StateDict missing = good;
  missing.erase(std::find_if(missing.begin(), missing.end(), [](const auto& kv) {
    return kv.first == "mask_decoder.transformer.layers.1.norm3.bias";
  }));
  expect_error(missing, "mask_decoder.transformer.layers.1.norm3.bias");
  StateDict extra = good;
  extra.emplace_back("mask_decoder.extra_head.weight", torch::zeros({3}));
  expect_error(extra, "mask_decoder.extra_head.weight");
  StateDict shaped = good;
  for (auto& [k, t] : shaped)
    if (k == "prompt_encoder.not_a_point_embed.weight") t = torch::zeros({1, 31});
  expect_error(shaped, "prompt_encoder.not_a_point_embed.weight");
  expect_error({{"backbone.conv1.weight", torch::zeros({1})}}, "neither a SAM ViT");
}

TEST(Sam, PredictorGeometryAsTheOfficialOne) {
  // ResizeLongestSide: the two reference frames' shapes.
  EXPECT_EQ(resized_shape(529, 622, 1024), (std::array<int, 2>{871, 1024}));
  EXPECT_EQ(resized_shape(528, 610, 1024), (std::array<int, 2>{886, 1024}));
  EXPECT_EQ(resized_shape(1024, 512, 1024), (std::array<int, 2>{1024, 512}));
  // Prompt scaling: x by the width ratio, y by the height ratio.
  const at::Tensor xy =
      resize_coords(torch::tensor({{100.0f, 50.0f}, {622.0f, 529.0f}}), {529, 622}, {871, 1024});
  EXPECT_NEAR(xy[0][0].item<double>(), 100.0 * 1024 / 622, 1e-3);
  EXPECT_NEAR(xy[0][1].item<double>(), 50.0 * 871 / 529, 1e-3);
  EXPECT_NEAR(xy[1][0].item<double>(), 1024, 1e-3);
  EXPECT_NEAR(xy[1][1].item<double>(), 871, 1e-3);
  // Upscaling: a low-res map whose left 3/8 is positive, over a 64² frame whose resized image is
  // 48 × 64 (h × w), to an original of 96 × 128: the crop keeps the top 3/4, the split stays at
  // 3/8 of the width.
  at::Tensor low = -torch::ones({1, 1, 16, 16});
  low.index_put_({0, 0, torch::indexing::Slice(), torch::indexing::Slice(0, 6)}, 1.0);
  const at::Tensor up = postprocess(low, 64, {48, 64}, {96, 128});
  ASSERT_EQ(up.sizes(), (std::vector<int64_t>{1, 1, 96, 128}));
  const at::Tensor row = (up[0][0][50] > 0).to(torch::kFloat);
  EXPECT_NEAR(row.sum().item<double>(), 48.0, 1.0);
  EXPECT_GT(up[0][0][0][0].item<double>(), 0.5);
  EXPECT_LT(up[0][0][95][127].item<double>(), -0.5);
  // The three interpolations of the official predictor (to side², crop, to the original size),
  // done as F.interpolate does them, against ours (one matrix per axis), up- and downscaling.
  torch::manual_seed(9);
  const at::Tensor logits = torch::randn({2, 3, 16, 16}) * 4;
  namespace F = torch::nn::functional;
  auto interp = [](const at::Tensor& x, int64_t hh, int64_t ww) {
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{hh, ww})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  };
  for (const auto& [rs, orig] : std::vector<std::pair<std::array<int, 2>, std::array<int, 2>>>{
           {{48, 64}, {96, 128}}, {{64, 37}, {41, 23}}, {{30, 64}, {529, 1130}}}) {
    const at::Tensor official = interp(
        interp(logits, 64, 64)
            .index({"...", torch::indexing::Slice(0, rs[0]), torch::indexing::Slice(0, rs[1])}),
        orig[0], orig[1]);
    const at::Tensor ours = postprocess(logits, 64, rs, orig);
    ASSERT_EQ(ours.sizes(), official.sizes());
    EXPECT_LT((ours - official).abs().max().item<double>(), 1e-4) << orig[0] << "×" << orig[1];
  }
  // Preprocessing: normalised with SAM's mean/std, zero-padded bottom/right.
  cv::Mat img(3, 5, CV_8UC3, cv::Scalar(123, 116, 103));
  img.at<cv::Vec3b>(0, 0) = {255, 0, 0};
  const at::Tensor p = preprocess(img, 8);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{1, 3, 8, 8}));
  EXPECT_NEAR(p[0][0][0][0].item<double>(), (255 - 123.675) / 58.395, 1e-5);
  EXPECT_NEAR(p[0][1][0][0].item<double>(), (0 - 116.28) / 57.12, 1e-5);
  EXPECT_NEAR(p[0][2][1][1].item<double>(), (103 - 103.53) / 57.375, 1e-5);
  EXPECT_EQ(p[0][0][7][7].item<double>(), 0.0);
  EXPECT_EQ(p[0][0][0][6].item<double>(), 0.0);
  // Resize: the longest side to the target, a flat image stays flat.
  const cv::Mat r = resize_longest(cv::Mat(50, 100, CV_8UC3, cv::Scalar(7, 8, 9)), 64);
  EXPECT_EQ(r.rows, 32);
  EXPECT_EQ(r.cols, 64);
  EXPECT_EQ(r.at<cv::Vec3b>(10, 10), cv::Vec3b(7, 8, 9));
}

TEST(Sam, StabilityScoreAsTheAutomaticMaskGenerator) {
  at::Tensor l = torch::full({2, 4, 4}, -5.0);
  // mask 0: 4 pixels > 1, 8 pixels > -1; mask 1: nothing above -1.
  l.index_put_({0, torch::indexing::Slice(0, 2), torch::indexing::Slice()}, 0.5);
  l.index_put_({0, 0, torch::indexing::Slice()}, 2.0);
  const at::Tensor s = stability_score(l);
  EXPECT_NEAR(s[0].item<double>(), 0.5, 1e-6);
  EXPECT_EQ(s[1].item<double>(), 0.0);
}

TEST(Sam, RefinerByNameWithItsScoresAndRejects) {
  const std::string path = temp_file("refiner.pt");
  save_state_dict(state_dict_from(random_sam(tiny_sam_config("tiny_vit"), 3).module()), path);
  RefinerOptions o;
  try {
    make_refiner("sam", o);
    ADD_FAILURE() << "no checkpoint accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("refine.options.sam.checkpoint"), std::string::npos);
  }
  o.sam.checkpoint = path;
  o.sam.point = "centre";
  const auto refiner = vision::make_refiner("sam", o);
  EXPECT_EQ(refiner->name(), "sam");
  EXPECT_FALSE(refiner->needs_cam());
  cv::Mat image(90, 120, CV_8UC3);
  cv::randu(image, 0, 255);
  const std::vector<Box> boxes{{10, 20, 60, 70}, {70, 10, 110, 50}};
  const Refined a = refiner->refine(image, boxes, {});
  const Refined b = refiner->refine(image, boxes, {});
  ASSERT_EQ(a.mask.size(), image.size());
  EXPECT_EQ(cv::countNonZero(a.mask != b.mask), 0);  // deterministic
  for (const char* k : {"predicted_iou", "stability", "prompt_box_iou", "area", "box_share"})
    EXPECT_TRUE(a.scores.contains(k)) << k;
  EXPECT_GE(a.scores["stability"].get<double>(), 0.0);
  EXPECT_LE(a.scores["stability"].get<double>(), 1.0);
  EXPECT_GE(a.quality, 0.0);
  EXPECT_LE(a.quality, 1.0);
  // The refiner's own thresholds come first in judge_mask.
  o.sam.min_predicted_iou = 2.0;  // above any IoU
  const Refined c = vision::make_refiner("sam", o)->refine(image, boxes, {});
  EXPECT_EQ(c.reject, "low_predicted_iou");
  EXPECT_EQ(judge_mask(c, MaskRules{}), "low_predicted_iou");
  o.sam.min_predicted_iou = -10;
  o.sam.min_stability = 2.0;
  EXPECT_EQ(vision::make_refiner("sam", o)->refine(image, boxes, {}).reject, "unstable");
  o.sam.min_stability = 0;
  o.sam.min_prompt_box_iou = 1.5;
  EXPECT_EQ(vision::make_refiner("sam", o)->refine(image, boxes, {}).reject, "box_disagreement");
  o.sam.point = "cam_peak";
  EXPECT_TRUE(vision::make_refiner("sam", o)->needs_cam());
  o.sam.point = "corner";
  EXPECT_THROW(vision::make_refiner("sam", o), Error);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace endoked::vision::sam
