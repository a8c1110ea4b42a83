// The MIL heads: their definitions (attention sums to 1, permutation invariance, DSMIL's loss),
// the student's loss and the teachers' fusion by hand, and that a head learns a toy problem.
#include "endoked/vision/mil.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "../common/test_util.h"

namespace endoked::vision {
namespace {

TEST(Mil, AttentionMilIsAPermutationInvariantWeightedMean) {
  torch::manual_seed(1);
  for (const bool gated : {true, false}) {
    AttentionMil head(16, 8, gated);
    torch::NoGradGuard no_grad;
    const auto x = torch::randn({5, 16});
    const MilOutput out = head->forward(x);
    EXPECT_EQ(out.instance_scores.sizes(), (std::vector<int64_t>{5}));
    EXPECT_EQ(out.bag_logit.dim(), 0);
    EXPECT_NEAR(out.attention.sum().item<double>(), 1.0, 1e-6);
    EXPECT_TRUE(torch::allclose(out.attention, torch::softmax(out.instance_scores, 0)));
    const auto perm = torch::tensor({3, 0, 4, 1, 2}, torch::kLong);
    const MilOutput p = head->forward(x.index_select(0, perm));
    EXPECT_NEAR(p.bag_logit.item<double>(), out.bag_logit.item<double>(), 1e-5);
    EXPECT_TRUE(torch::allclose(p.instance_scores, out.instance_scores.index_select(0, perm)));
  }
  EXPECT_THROW_MSG(AttentionMil(16)->forward(torch::randn({0, 16})), "a bag is [K ≥ 1, 16]");
}

TEST(Mil, DsMilLossIsHalfBagHalfMaxInstance) {
  torch::manual_seed(2);
  DsMil head(12, 6);
  const auto x = torch::randn({4, 12});
  const MilOutput out = head->forward(x);
  EXPECT_NEAR(out.attention.sum().item<double>(), 1.0, 1e-6);
  auto bce = [](double logit, double y) {
    const double p = 1 / (1 + std::exp(-logit));
    return -(y * std::log(p) + (1 - y) * std::log(1 - p));
  };
  const double bag = out.bag_logit.item<double>(), top = out.instance_scores.max().item<double>();
  for (const double y : {0.0, 1.0})
    EXPECT_NEAR(head->loss(out, y).item<double>(), 0.5 * bce(bag, y) + 0.5 * bce(top, y), 1e-5);
  // Gradients reach every part: instance classifier, query, value and bag classifier.
  head->loss(out, 1.0).backward();
  for (const auto& p : head->named_parameters())
    EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key();
}

TEST(Mil, StudentLossFusionAndNormalisationByHand) {
  const auto l = torch::zeros({1});
  // σ(0) = 0.5: −0.5·log 0.5 for a positive target, the same for a negative one.
  EXPECT_NEAR(weighted_soft_bce(l, torch::ones({1})).item<double>(), 0.5 * std::log(2.0), 1e-6);
  EXPECT_NEAR(weighted_soft_bce(l, torch::zeros({1}), 0.5, 0.25).item<double>(),
              0.25 * std::log(2.0), 1e-6);
  EXPECT_NEAR(weighted_soft_bce(torch::full({1}, 2.0), torch::full({1}, 0.25), 1, 1).item<double>(),
              -(0.25 * std::log(1 / (1 + std::exp(-2.0))) + 0.75 * std::log(1 - 1 / (1 + std::exp(-2.0)))),
              1e-5);
  EXPECT_THROW_MSG(weighted_soft_bce(l, l, 0.0, 0.5), "weights must be > 0");

  EXPECT_TRUE(torch::allclose(minmax_normalise(torch::tensor({1.0, 3.0, 2.0})), torch::tensor({0.0, 1.0, 0.5})));
  EXPECT_TRUE(torch::equal(minmax_normalise(torch::full({3}, 7.0)), torch::zeros({3})));

  const auto t1 = torch::tensor({1.0, 0.2, 0.6}), t2 = torch::tensor({0.0, 0.6, 0.6});
  const auto fused = fuse_teachers(t1, t2, torch::tensor({1, 1, 0}), 3, 1);
  EXPECT_TRUE(torch::allclose(fused, torch::tensor({0.75, 0.3, 0.0})));
  EXPECT_THROW_MSG(fuse_teachers(t1, t2, torch::tensor({1, 1, 0}), 0, 0), "not both 0");
}

// Positive bags hold one instance whose first feature is raised; each head learns the
// bag labels, and its attention points at that instance in most positive bags (chance: 1 in 6;
// measured: attention MIL 26, DSMIL 28 of 32 at this seed).
TEST(Mil, HeadsLearnWhichInstanceMakesABagPositive) {
  torch::manual_seed(3);
  const int bags = 64, k = 6, d = 8;
  std::vector<torch::Tensor> x;
  std::vector<int> key;
  for (int b = 0; b < bags; ++b) {
    auto bag = torch::randn({k, d});
    const int at = b % 2 ? static_cast<int>(b / 2 % k) : -1;
    if (at >= 0) bag[at][0] += 3.0;
    x.push_back(bag);
    key.push_back(at);
  }
  // Trains a head on the bags; returns {bags classified right, positive bags whose key instance
  // has the highest instance score}.
  auto train = [&](auto head) {
    torch::optim::Adam opt(head->parameters(), torch::optim::AdamOptions(0.01));
    for (int epoch = 0; epoch < 30; ++epoch)
      for (int b = 0; b < bags; ++b) {
        opt.zero_grad();
        const MilOutput out = head->forward(x[static_cast<std::size_t>(b)]);
        head->loss(out, key[static_cast<std::size_t>(b)] >= 0 ? 1.0 : 0.0).backward();
        opt.step();
      }
    torch::NoGradGuard no_grad;
    int right = 0, found = 0;
    for (int b = 0; b < bags; ++b) {
      const MilOutput out = head->forward(x[static_cast<std::size_t>(b)]);
      right += (out.bag_logit.item<double>() > 0) == (key[static_cast<std::size_t>(b)] >= 0);
      if (key[static_cast<std::size_t>(b)] >= 0)
        found += out.instance_scores.argmax().item<int64_t>() == key[static_cast<std::size_t>(b)];
    }
    return std::pair<int, int>{right, found};
  };
  const auto [right, found] = train(AttentionMil(d, 16, true));
  EXPECT_GE(right, 60) << "attention MIL: bag accuracy " << right << "/64";
  EXPECT_GE(found, 22) << "attention MIL: key instance first in " << found << "/32 positive bags";
  const auto [ds_right, ds_found] = train(DsMil(d, 16));
  EXPECT_GE(ds_right, 56) << "DSMIL: bag accuracy " << ds_right << "/64";
  EXPECT_GE(ds_found, 22) << "DSMIL: key instance first in " << ds_found << "/32 positive bags";
  std::printf("attention MIL %d/64 bags, %d/32 keys; DSMIL %d/64 bags, %d/32 keys\n", right, found,
              ds_right, ds_found);
}

}  // namespace
}  // namespace endoked::vision
