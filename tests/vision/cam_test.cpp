// CAM, Grad-CAM++, multi-scale maps and the boxes drawn from them, on maps made by hand.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "endoked/core/error.h"
#include "endoked/vision/cam.h"

namespace endoked::vision {
namespace {

// A [H, W] map with value 1 inside the rectangle [x0, x1) × [y0, y1), 0 elsewhere.
torch::Tensor rect(int64_t h, int64_t w, int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
  auto m = torch::zeros({h, w});
  m.slice(0, y0, y1).slice(1, x0, x1).fill_(1);
  return m;
}

TEST(Cam, WeightsSelectTheChannels) {
  // Channel 0 lights the top-left, channel 1 the bottom-right; weight 2 on channel 1, −1 on 0.
  const auto f = torch::stack({rect(4, 4, 0, 0, 2, 2), rect(4, 4, 2, 2, 4, 4)});
  const auto cam = class_activation_map(f, torch::tensor({-1.0F, 2.0F}));
  EXPECT_FLOAT_EQ(cam[3][3].item<float>(), 2.0F);
  EXPECT_FLOAT_EQ(cam[0][0].item<float>(), 0.0F);  // ReLU of −1
  const auto n = normalise_cam(cam);
  EXPECT_FLOAT_EQ(n.max().item<float>(), 1.0F);
  EXPECT_FLOAT_EQ(n.min().item<float>(), 0.0F);
  EXPECT_EQ(normalise_cam(torch::full({3, 3}, 0.4)).abs().sum().item<float>(), 0.0F);
  EXPECT_THROW(class_activation_map(f, torch::ones({3})), Error);
}

TEST(Cam, GradCamPlusPlusMatchesItsClosedForm) {
  // One channel, constant gradient g: α = g² / (2g² + ΣA·g³), weight = hw · α · g, so the map
  // is weight · A.
  const auto a = rect(3, 3, 0, 0, 2, 1) * 2;  // ΣA = 4
  const double g = 0.5;
  const auto cam = grad_cam_plus_plus(a.unsqueeze(0), torch::full({1, 3, 3}, g));
  const double alpha = g * g / (2 * g * g + 4 * g * g * g);
  const double weight = 9 * alpha * g;
  EXPECT_NEAR(cam[0][0].item<double>(), weight * 2, 1e-6);
  EXPECT_NEAR(cam[2][2].item<double>(), 0.0, 1e-9);
  // A channel whose gradient is negative everywhere adds nothing.
  const auto two =
      grad_cam_plus_plus(torch::stack({a, rect(3, 3, 2, 2, 3, 3)}),
                         torch::stack({torch::full({3, 3}, g), torch::full({3, 3}, -1.0)}));
  EXPECT_NEAR(two[2][2].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(two[0][0].item<double>(), weight * 2, 1e-6);
}

TEST(Cam, MultiScaleWithFlipsFindsTheSameSpot) {
  // The "model" returns the red channel at a quarter of its input size; the blob is off-centre so
  // a flip that was not undone would move it.
  auto image = torch::zeros({3, 64, 96});
  image[0].slice(0, 10, 30).slice(1, 60, 84).fill_(1);
  const auto cam_of = [](const torch::Tensor& x) {
    return torch::nn::functional::avg_pool2d(x[0].unsqueeze(0).unsqueeze(0),
                                             torch::nn::functional::AvgPool2dFuncOptions(4))
        .squeeze(0)
        .squeeze(0);
  };
  const auto cam = multi_scale_cam(cam_of, image, {1.0, 0.5, 1.5});
  ASSERT_EQ(cam.sizes(), (std::vector<int64_t>{64, 96}));
  EXPECT_FLOAT_EQ(cam.max().item<float>(), 1.0F);
  const auto box = box_from_cam(cam, BoxRules{0.5, 0.0, 1.0, 0, true});
  EXPECT_TRUE(box.accepted) << box.reject;
  EXPECT_NEAR(box.x0, 60, 3);
  EXPECT_NEAR(box.x1, 84, 3);
  EXPECT_NEAR(box.y0, 10, 3);
  EXPECT_NEAR(box.y1, 30, 3);
  EXPECT_THROW(multi_scale_cam(cam_of, image, {0.0}), Error);
  // Batched: one call per scale and flip for the whole batch, each map as if alone.
  auto other = torch::zeros({3, 64, 96});
  other[0].slice(0, 40, 60).slice(1, 5, 40).fill_(0.3);
  const auto batch_cam_of = [](const torch::Tensor& x) {
    return torch::nn::functional::avg_pool2d(x.select(1, 0).unsqueeze(1),
                                             torch::nn::functional::AvgPool2dFuncOptions(4))
        .squeeze(1);
  };
  const auto both = multi_scale_cam(batch_cam_of, torch::stack({image, other}), {1.0, 0.5, 1.5});
  ASSERT_EQ(both.sizes(), (std::vector<int64_t>{2, 64, 96}));
  EXPECT_TRUE(torch::allclose(both[0], cam, 1e-5, 1e-6));
  EXPECT_TRUE(
      torch::allclose(both[1], multi_scale_cam(cam_of, other, {1.0, 0.5, 1.5}), 1e-5, 1e-6));
}

TEST(Cam, BoxRulesRejectWithTheirReason) {
  BoxRules r;  // 0.65, 1 %–35 %, < 3 components, border
  // A 20 × 20 blob in 100 × 100: 4 % of the image, inside.
  auto ok = box_from_cam(rect(100, 100, 30, 40, 50, 60), r);
  EXPECT_TRUE(ok.accepted);
  EXPECT_EQ(ok.x0, 30);
  EXPECT_EQ(ok.y0, 40);
  EXPECT_EQ(ok.x1, 50);
  EXPECT_EQ(ok.y1, 60);
  EXPECT_NEAR(ok.area, 0.04, 1e-12);
  EXPECT_EQ(ok.components, 1);
  EXPECT_NEAR(ok.score, 1.0, 1e-6);
  EXPECT_EQ(box_from_cam(rect(100, 100, 0, 40, 20, 60), r).reject, "border");
  EXPECT_EQ(box_from_cam(rect(100, 100, 40, 40, 45, 45), r).reject, "too_small");
  EXPECT_EQ(box_from_cam(rect(100, 100, 10, 10, 90, 90), r).reject, "too_large");
  EXPECT_EQ(box_from_cam(torch::zeros({10, 10}), r).reject, "no_foreground");
  // Three blobs: rejected; the box is still the largest one's. Two: accepted.
  auto three = rect(100, 100, 10, 10, 30, 30) + rect(100, 100, 50, 50, 60, 60) +
               rect(100, 100, 70, 10, 80, 20);
  const auto b3 = box_from_cam(three, r);
  EXPECT_EQ(b3.reject, "components");
  EXPECT_EQ(b3.components, 3);
  EXPECT_EQ(b3.x0, 10);
  EXPECT_EQ(b3.x1, 30);
  EXPECT_TRUE(
      box_from_cam(rect(100, 100, 10, 10, 30, 30) + rect(100, 100, 50, 50, 60, 60), r).accepted);
  // Diagonal neighbours are one component (8-connectivity).
  auto diagonal = rect(100, 100, 20, 20, 30, 30) + rect(100, 100, 30, 30, 40, 40);
  EXPECT_EQ(box_from_cam(diagonal, r).components, 1);
  // The rules are configurable: no border rule, and the threshold.
  BoxRules loose = r;
  loose.reject_border = false;
  EXPECT_TRUE(box_from_cam(rect(100, 100, 0, 40, 20, 60), loose).accepted);
  EXPECT_EQ(box_from_cam(rect(100, 100, 30, 40, 50, 60) * 0.6, r).reject, "no_foreground");
}

}  // namespace
}  // namespace endoked::vision
