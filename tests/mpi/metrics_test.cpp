#include "endoked/distributed/metrics.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "world.h"

namespace endoked {
namespace {

using testing::world;

TEST(Metrics, SumsCountsConfusionAndScores) {
  auto& c = world();
  const int n = c.size();
  EXPECT_DOUBLE_EQ(dist::reduce_sum(c, 0.5 * c.rank()), 0.25 * n * (n - 1));
  EXPECT_EQ(dist::reduce_count(c, c.rank() + 1), static_cast<std::int64_t>(n * (n + 1) / 2));
  // rank r saw 1 true-positive and r false-negatives
  at::Tensor cm = at::zeros({2, 2}, at::kLong);
  cm[1][1] = 1;
  cm[1][0] = c.rank();
  const at::Tensor all = dist::reduce_confusion(c, cm);
  EXPECT_EQ(all[1][1].item<std::int64_t>(), n);
  EXPECT_EQ(all[1][0].item<std::int64_t>(), n * (n - 1) / 2);
  EXPECT_EQ(all[0][0].item<std::int64_t>(), 0);
  // scores: rank r contributes r + 1 values equal to r
  const at::Tensor scores = at::full({c.rank() + 1}, static_cast<float>(c.rank()));
  const at::Tensor gathered = dist::gather_scores(c, scores);
  ASSERT_EQ(gathered.size(0), n * (n + 1) / 2);
  EXPECT_EQ(gathered[0].item<float>(), 0.0f);
  EXPECT_EQ(gathered[gathered.size(0) - 1].item<float>(), static_cast<float>(n - 1));
  EXPECT_EQ(gathered.sum().item<float>(), [&] {
    float s = 0;
    for (int r = 0; r < n; ++r) s += static_cast<float>(r * (r + 1));
    return s;
  }());
}

}  // namespace
}  // namespace endoked
