// The structure loss against PraNet's definition computed with python3-torch (values below, in
// float64), with and without an ignore band; its gradient; a confident right answer costs little.
#include "endoked/vision/seg_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace endoked::vision {
namespace {

std::pair<at::Tensor, at::Tensor> example() {
  const auto opts = torch::TensorOptions().dtype(torch::kDouble);
  // The logits made in float32 (as the reference made them), then widened.
  const at::Tensor logits =
      ((torch::arange(2 * 9 * 11, torch::kFloat).reshape({2, 1, 9, 11}) * 0.37).sin() * 3)
          .to(torch::kDouble);
  const at::Tensor y = torch::arange(9, opts).view({9, 1}),
                   x = torch::arange(11, opts).view({1, 11});
  at::Tensor mask = ((y - 4).pow(2) / 9 + (x - 5).pow(2) / 16 <= 1)
                        .to(torch::kDouble)
                        .expand({2, 1, 9, 11})
                        .clone();
  mask.index_put_({1, 0, torch::indexing::Slice(), torch::indexing::Slice(0, 3)}, 0.0);
  mask.index_put_({1, 0, 0, 0}, 1.0);
  return {logits, mask};
}

TEST(StructureLoss, AsPraNetDefinesIt) {
  const auto [logits, mask] = example();
  EXPECT_NEAR(structure_loss(logits, mask).item<double>(), 1.7032834136313846, 1e-12);
  at::Tensor ignore = torch::zeros_like(mask);
  ignore.index_put_({torch::indexing::Slice(), torch::indexing::Slice(),
                     torch::indexing::Slice(3, 6), torch::indexing::Slice()},
                    1.0);
  EXPECT_NEAR(structure_loss(logits, mask, ignore).item<double>(), 1.7957908762826553, 1e-12);
}

TEST(StructureLoss, GradientAndAConfidentRightAnswer) {
  auto [logits, mask] = example();
  const at::Tensor l = logits.clone().requires_grad_(true);
  structure_loss(l, mask).backward();
  EXPECT_TRUE(torch::isfinite(l.grad()).all().item<bool>());
  EXPECT_GT(l.grad().abs().sum().item<double>(), 0);
  // Where the mask is 1 the loss pulls the logit up (negative gradient), elsewhere down.
  EXPECT_LT((l.grad() * (2 * mask - 1)).sum().item<double>(), 0);
  const at::Tensor right = (2 * mask - 1) * 12;
  EXPECT_LT(structure_loss(right, mask).item<double>(), 0.01);
  EXPECT_GT(structure_loss(-right, mask).item<double>(), 5);
  EXPECT_THROW(structure_loss(logits, mask.slice(3, 0, 5)), std::exception);
}

}  // namespace
}  // namespace endoked::vision
