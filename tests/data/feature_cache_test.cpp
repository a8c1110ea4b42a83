// The image-feature cache: rows by content key per store shard, visible once committed, parts
// rolled over at a size, concurrent runs merged in the manifest, a damaged or missing part a
// counted miss, a cache of another model shape refused with its manifest named.
#include "endoked/data/feature_cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "../common/test_util.h"
#include "endoked/core/error.h"
#include "endoked/data/store.h"

namespace endoked::data {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

std::vector<float> row(int seed, std::int64_t n) {
  std::vector<float> v(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(seed) + 0.001f * i;
  return v;
}

TEST(FeatureCache, RowsByKeyPerShardVisibleOnceCommitted) {
  TempDir dir;
  const std::int64_t n = 1000;
  FeatureCache cache(dir / "cache", "m1", n, {{"what", "test"}});
  EXPECT_EQ(cache.dir(), dir / "cache/m1");
  std::vector<nlohmann::json> parts;
  for (int s = 0; s < 2; ++s) {
    auto w = cache.open(s, 3 * n * 4);  // three rows a part
    std::vector<float> out(n);
    EXPECT_FALSE(w->get("k0", out.data()));
    for (int k = 0; k < 5; ++k)
      w->put("s" + std::to_string(s) + "k" + std::to_string(k), row(10 * s + k, n).data());
    EXPECT_FALSE(w->get("s0k0", out.data()));  // not before the commit
    EXPECT_EQ(w->added(), 5);
    parts.push_back(w->close());
    EXPECT_EQ(parts.back().size(), 2u);  // 3 + 2 rows
  }
  EXPECT_EQ(cache.commit(parts), 10);

  // Another process: each shard sees its own rows.
  FeatureCache again(dir / "cache", "m1", n, {});
  auto r0 = again.open(0), r1 = again.open(1);
  std::vector<float> out(n);
  ASSERT_TRUE(r0->get("s0k4", out.data()));
  EXPECT_EQ(out, row(4, n));
  ASSERT_TRUE(r1->get("s1k2", out.data()));
  EXPECT_EQ(out, row(12, n));
  EXPECT_FALSE(r0->get("s1k2", out.data()));
  EXPECT_EQ(r0->hits(), 1);
  EXPECT_EQ(r0->damaged(), 0);
  EXPECT_EQ(r0->close().size(), 0u);  // nothing added, no part

  // A part written and not committed (a killed run) is never read.
  {
    auto w = again.open(0);
    w->put("orphan", row(7, n).data());
    w->close();
  }
  FeatureCache third(dir / "cache", "m1", n, {});
  EXPECT_FALSE(third.open(0)->get("orphan", out.data()));

  // Another shape under the same model: refused, the manifest named.
  try {
    FeatureCache wrong(dir / "cache", "m1", n + 1, {});
    ADD_FAILURE() << "opened with another row size";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("m1/manifest.json"), std::string::npos) << e.what();
  }
}

TEST(FeatureCache, ConcurrentRunsMergeAndMissingPartsAreMisses) {
  TempDir dir;
  const std::int64_t n = 64;
  FeatureCache a(dir / "c", "m", n, {}), b(dir / "c", "m", n, {});
  auto wa = a.open(0), wb = b.open(0);
  wa->put("a", row(1, n).data());
  wb->put("b", row(2, n).data());
  const auto pa = wa->close(), pb = wb->close();
  EXPECT_EQ(a.commit({pa}), 1);
  EXPECT_EQ(b.commit({pb}), 2);  // b read the manifest again under the lock
  FeatureCache c(dir / "c", "m", n, {});
  std::vector<float> out(n);
  auto r = c.open(0);
  EXPECT_TRUE(r->get("a", out.data()));
  EXPECT_TRUE(r->get("b", out.data()));

  // A part gone: a warning and a miss; the other part still serves.
  fs::remove(dir / ("c/m/" + pb[0]["file"].get<std::string>()));
  FeatureCache d(dir / "c", "m", n, {});
  auto r2 = d.open(0);
  EXPECT_TRUE(r2->get("a", out.data()));
  EXPECT_FALSE(r2->get("b", out.data()));
  EXPECT_EQ(Manifest::load(dir / "c/m").kind, "feature_cache");
}

TEST(FeatureCache, PartNames) {
  EXPECT_EQ(feature_part_name(3, "ab12", 0), "s00003-ab12-0.h5");
  EXPECT_EQ(feature_part_shard("s00003-ab12-0.h5"), 3);
  EXPECT_EQ(feature_part_shard("shard-00003.h5"), -1);
  EXPECT_EQ(feature_part_shard("manifest.json"), -1);
}

}  // namespace
}  // namespace endoked::data
