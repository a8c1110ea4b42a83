#include "endoked/data/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

namespace endoked::data {
namespace {

std::vector<std::int64_t> epoch_union(std::int64_t n, int batch, int world, Tail tail,
                                      std::int64_t cursor = 0) {
  std::vector<std::int64_t> all;
  std::int64_t steps = -1;
  for (int r = 0; r < world; ++r) {
    EpochPlan p(n, 9, 3, batch, r, world, tail, cursor);
    if (steps < 0) steps = p.steps();
    EXPECT_EQ(p.steps(), steps) << "ranks disagree on the number of steps";
    for (std::int64_t s = 0; s < p.steps(); ++s) {
      const auto b = p.batch(s);
      EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
      all.insert(all.end(), b.begin(), b.end());
    }
  }
  return all;
}

TEST(Sampler, PermutationDependsOnSeedAndEpochOnly) {
  const auto a = epoch_permutation(100, 1, 0);
  EXPECT_EQ(a, epoch_permutation(100, 1, 0));
  EXPECT_NE(a, epoch_permutation(100, 1, 1));
  EXPECT_NE(a, epoch_permutation(100, 2, 0));
  std::set<std::int64_t> s(a.begin(), a.end());
  EXPECT_EQ(s.size(), 100u);
}

TEST(Sampler, PartialTailUnionIsTheEpochWithoutDuplicates) {
  for (int world = 1; world <= 4; ++world)
    for (std::int64_t n : {1, 7, 50, 97}) {
      auto all = epoch_union(n, 3, world, Tail::kPartial);
      std::sort(all.begin(), all.end());
      std::vector<std::int64_t> expect(static_cast<std::size_t>(n));
      std::iota(expect.begin(), expect.end(), 0);
      EXPECT_EQ(all, expect) << "n=" << n << " world=" << world;
    }
}

TEST(Sampler, DropAndPadTails) {
  const std::int64_t n = 50;
  const int batch = 4, world = 3;  // G = 12: 4 full steps, 2 left over
  auto dropped = epoch_union(n, batch, world, Tail::kDrop);
  EXPECT_EQ(dropped.size(), 48u);
  const auto perm = epoch_permutation(n, 9, 3);
  std::set<std::int64_t> first48(perm.begin(), perm.begin() + 48);
  EXPECT_EQ(std::set<std::int64_t>(dropped.begin(), dropped.end()), first48);
  auto padded = epoch_union(n, batch, world, Tail::kPad);
  EXPECT_EQ(padded.size(), 60u);  // 5 full steps
  std::set<std::int64_t> distinct(padded.begin(), padded.end());
  EXPECT_EQ(distinct.size(), 50u);  // every sample; 10 seen twice
}

TEST(Sampler, ResumeAtACursorOnAnotherWorldSize) {
  const std::int64_t n = 103;
  const int batch = 5;
  // Four steps on 3 ranks, then the rest on 2 ranks.
  std::vector<std::int64_t> seen;
  std::int64_t cursor = 0;
  for (int r = 0; r < 3; ++r) {
    EpochPlan p(n, 9, 3, batch, r, 3, Tail::kPartial);
    for (int s = 0; s < 4; ++s) {
      const auto b = p.batch(s);
      seen.insert(seen.end(), b.begin(), b.end());
    }
    cursor = p.cursor_after(4);
  }
  EXPECT_EQ(cursor, 60);
  auto rest = epoch_union(n, batch, 2, Tail::kPartial, cursor);
  const auto perm = epoch_permutation(n, 9, 3);
  std::vector<std::int64_t> expect_rest(perm.begin() + cursor, perm.end());
  std::sort(rest.begin(), rest.end());
  std::sort(expect_rest.begin(), expect_rest.end());
  EXPECT_EQ(rest, expect_rest);
  std::vector<std::int64_t> all = seen;
  all.insert(all.end(), rest.begin(), rest.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(n));
}

TEST(Sampler, BadShapesAreErrors) {
  EXPECT_ANY_THROW(EpochPlan(10, 1, 0, 0, 0, 1, Tail::kDrop));
  EXPECT_ANY_THROW(EpochPlan(10, 1, 0, 2, 2, 2, Tail::kDrop));
  EXPECT_ANY_THROW(EpochPlan(10, 1, 0, 2, 0, 1, Tail::kDrop, 11));
  EXPECT_ANY_THROW(parse_tail("wrap"));
}

}  // namespace
}  // namespace endoked::data
