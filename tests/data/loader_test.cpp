#include "endoked/data/loader.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "../common/test_util.h"
#include "endoked/core/error.h"
#include "endoked/data/store.h"
#include "endoked/distributed/communicator.h"
#include "synth_stage.h"

namespace endoked::data {
namespace {

// A record store of one exam "E" holding `images`.
void one_exam_store(const std::string& dir, const std::vector<ImageRecord>& images) {
  const std::string partial = begin_store(dir, false);
  ShardWriter w(partial, 0, "records");
  add_exam(w, ExamRecord{"E", "", "r", "{}", 0, 0}, images);
  Manifest m;
  m.kind = "records";
  m.shards.push_back(w.close());
  commit_store(dir, m);
}

// A small synthetic store with its truth sidecar, made once for the suite.
class LoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    SynthOptions o;
    o.exams = 16;
    o.seed = 4;
    o.width = 96;
    o.height = 80;
    o.min_images = 3;
    o.max_images = 5;
    o.exams_per_shard = 5;
    o.format = "store";
    o.output = *dir_ / "records";
    o.truth = *dir_ / "truth";
    o.threads = 2;
    auto comm = dist::make_local_communicator();
    recipes::run_synth(*comm, o, RunDir(*dir_ / "run", true));
  }
  static void TearDownTestSuite() { delete dir_; }

  static DatasetOptions options(const std::string& unit = "image") {
    DatasetOptions d;
    d.store = *dir_ / "records";
    d.unit = unit;
    d.sidecars = {*dir_ / "truth"};
    if (unit == "image") {
      d.mask_column = "images/mask";
      d.boxes_column = "images/boxes";
      d.label_columns = {"images/has_polyp"};
    } else {
      d.label_columns = {"exams/report_positive"};
    }
    return d;
  }
  static LoaderOptions loader(int batch, int threads) {
    LoaderOptions l;
    l.batch_size = batch;
    l.threads = threads;
    l.seed = 13;
    TransformSpec crop;
    crop.name = "random_resized_crop";
    crop.size = {48, 40};
    crop.scale = {0.6, 1.0};
    TransformSpec flip;
    flip.name = "hflip";
    TransformSpec norm;
    norm.name = "normalise";
    l.transforms = {crop, flip, norm};
    return l;
  }
  static std::vector<Batch> epoch(std::shared_ptr<const Dataset> d, const LoaderOptions& o,
                                  int rank = 0, int world = 1, std::int64_t cursor = 0) {
    Loader loader(std::move(d), o, 2, rank, world, cursor);
    std::vector<Batch> out;
    Batch b;
    while (loader.next(b)) out.push_back(b);
    EXPECT_EQ(static_cast<std::int64_t>(out.size()), loader.steps());
    return out;
  }
  static testing::TempDir* dir_;
};
testing::TempDir* LoaderTest::dir_ = nullptr;

TEST_F(LoaderTest, BatchesCarryImagesMasksBoxesLabelsAndIds) {
  auto d = make_dataset(options());
  RecordStore store(*dir_ / "records");
  ASSERT_EQ(d->size(), store.image_count());
  const auto batches = epoch(d, loader(8, 2));
  std::int64_t images = 0, positives = 0, box_count = 0;
  for (const auto& b : batches) {
    ASSERT_EQ(b.images.dim(), 4);
    EXPECT_EQ(b.images.size(1), 3);
    EXPECT_EQ(b.images.size(2), 40);
    EXPECT_EQ(b.images.size(3), 48);
    ASSERT_TRUE(b.masks.defined());
    EXPECT_EQ(b.masks.sizes(), (std::vector<std::int64_t>{b.images.size(0), 1, 40, 48}));
    EXPECT_EQ(b.labels.at("has_polyp").size(0), b.items());
    EXPECT_EQ(static_cast<std::int64_t>(b.ids.size()), b.images.size(0));
    for (std::int64_t i = 0; i < b.items(); ++i) {
      const bool pos = b.labels.at("has_polyp")[i].item<float>() > 0.5f;
      positives += pos;
      const std::int64_t mask_pixels = b.masks[i].sum().item<std::int64_t>();
      if (!pos) {
        EXPECT_EQ(mask_pixels, 0) << b.ids[static_cast<std::size_t>(i)];
      }
      // a box of a visible polyp holds mask pixels
      for (const Box& box : b.boxes[static_cast<std::size_t>(i)]) {
        EXPECT_LT(box.x0, box.x1);
        EXPECT_LE(box.x1, 48.0f);
        ++box_count;
      }
    }
    images += b.images.size(0);
    // normalised: roughly zero-centred values, not [0, 1]
    EXPECT_LT(b.images.min().item<float>(), 0.0f);
  }
  EXPECT_EQ(images, store.image_count());
  EXPECT_GT(positives, 0);
  EXPECT_GT(box_count, 0);
}

TEST_F(LoaderTest, SameBatchesWhateverTheThreadCount) {
  auto d = make_dataset(options());
  const auto one = epoch(d, loader(6, 1)), three = epoch(d, loader(6, 3));
  ASSERT_EQ(one.size(), three.size());
  for (std::size_t s = 0; s < one.size(); ++s) {
    EXPECT_EQ(one[s].indices, three[s].indices);
    EXPECT_TRUE(at::equal(one[s].images, three[s].images)) << "step " << s;
    EXPECT_TRUE(at::equal(one[s].masks, three[s].masks));
  }
}

TEST_F(LoaderTest, SampleAugmentationDoesNotDependOnWorldSize) {
  auto d = make_dataset(options());
  // The image of dataset index i is identical whether rank 0 of 1 or rank 1 of 2 loads it.
  std::map<std::int64_t, at::Tensor> single;
  for (const auto& b : epoch(d, loader(5, 2)))
    for (std::int64_t i = 0; i < b.items(); ++i)
      single[b.indices[static_cast<std::size_t>(i)]] = b.images[i];
  std::set<std::int64_t> seen;
  for (int r = 0; r < 2; ++r)
    for (const auto& b : epoch(d, loader(5, 2), r, 2))
      for (std::int64_t i = 0; i < b.items(); ++i) {
        const std::int64_t idx = b.indices[static_cast<std::size_t>(i)];
        EXPECT_TRUE(seen.insert(idx).second) << "duplicate " << idx;
        EXPECT_TRUE(at::equal(single.at(idx), b.images[i])) << idx;
      }
  EXPECT_EQ(static_cast<std::int64_t>(seen.size()), d->size());
}

TEST_F(LoaderTest, ResumesExactlyAtTheCursor) {
  auto d = make_dataset(options());
  const LoaderOptions o = loader(4, 2);
  std::vector<std::int64_t> first_part, resumed, whole;
  std::int64_t cursor = 0;
  {
    Loader l(d, o, 2, 0, 1);
    Batch b;
    for (int s = 0; s < 3 && l.next(b); ++s)
      first_part.insert(first_part.end(), b.indices.begin(), b.indices.end());
    cursor = l.cursor();
  }
  EXPECT_EQ(cursor, 12);
  for (const auto& b : epoch(d, o, 0, 1, cursor))
    resumed.insert(resumed.end(), b.indices.begin(), b.indices.end());
  for (const auto& b : epoch(d, o)) whole.insert(whole.end(), b.indices.begin(), b.indices.end());
  std::vector<std::int64_t> joined = first_part;
  joined.insert(joined.end(), resumed.begin(), resumed.end());
  EXPECT_EQ(joined, whole);
}

TEST_F(LoaderTest, ExamBagsAndFilters) {
  auto bags = make_dataset(options("exam"));
  EXPECT_EQ(bags->size(), 16);
  LoaderOptions o = loader(3, 2);
  std::int64_t items = 0;
  for (const auto& b : epoch(bags, o)) {
    ASSERT_EQ(static_cast<std::int64_t>(b.offsets.size()), b.items() + 1);
    EXPECT_EQ(b.offsets.back(), b.images.size(0));
    for (std::int64_t i = 0; i < b.items(); ++i) EXPECT_GE(b.offsets[i + 1] - b.offsets[i], 3);
    EXPECT_EQ(b.labels.at("report_positive").size(0), b.items());
    items += b.items();
  }
  EXPECT_EQ(items, 16);
  DatasetOptions f = options();
  f.filter = {"has_polyp == 1"};
  auto positives = make_dataset(f);
  EXPECT_GT(positives->size(), 0);
  EXPECT_LT(positives->size(), make_dataset(options())->size());
  for (std::int64_t i = 0; i < positives->size(); ++i)
    EXPECT_EQ(positives->labels(i).at("has_polyp"), 1.0);
  f.filter = {"has_polyp ~ 1"};
  EXPECT_THROW(make_dataset(f), Error);
  f.filter = {"unknown == 1"};
  EXPECT_THROW(make_dataset(f), Error);
}

TEST_F(LoaderTest, CorruptImagesAreSkippedAndCountedOrFailByName) {
  // A store with one truncated JPEG among good ones.
  testing::TempDir t;
  std::vector<ImageRecord> ims;
  for (int k = 0; k < 5; ++k) {
    std::string j = testing::make_jpeg(64, 48, static_cast<std::uint64_t>(k));
    if (k == 2) j = j.substr(0, j.size() / 2);
    ims.push_back({j, "jpeg", 64, 48, "E/" + std::to_string(k) + ".jpg", 0});
  }
  one_exam_store(t / "s", ims);
  DatasetOptions d;
  d.store = t / "s";
  auto ds = make_dataset(d);
  LoaderOptions o = loader(5, 2);
  Loader skip(ds, o, 0);
  Batch b;
  ASSERT_TRUE(skip.next(b));
  EXPECT_EQ(b.skipped, 1);
  EXPECT_EQ(b.images.size(0), 4);
  EXPECT_EQ(skip.skipped(), 1);
  o.on_error = "fail";
  Loader fail(ds, o, 0);
  try {
    fail.next(b);
    FAIL() << "a corrupt image passed";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("E/2.jpg"), std::string::npos) << e.what();
  }
}

// A dataset whose reads fail for one index: the error reaches the caller with the item's name.
class FailingDataset : public Dataset {
 public:
  std::int64_t size() const override { return 10; }
  std::vector<RawImage> read(std::int64_t index) const override {
    if (index == 7) ENDOKED_FAIL("disk went away");
    RawImage r;
    r.bytes = testing::make_jpeg(32, 32, static_cast<std::uint64_t>(index));
    r.width = r.height = 32;
    r.id = "img" + std::to_string(index);
    return {r};
  }
  std::map<std::string, double> labels(std::int64_t) const override { return {}; }
  std::string item_id(std::int64_t index) const override { return "item-" + std::to_string(index); }
};

TEST_F(LoaderTest, WorkerErrorsAreRethrownOnTheCallersThread) {
  LoaderOptions o = loader(10, 3);
  Loader l(std::make_shared<FailingDataset>(), o, 0);
  Batch b;
  try {
    l.next(b);
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("item-7"), std::string::npos) << m;
    EXPECT_NE(m.find("disk went away"), std::string::npos) << m;
  }
  // Mixed sizes without a resizing transform: a clear error.
  o.transforms.clear();
  class Mixed : public FailingDataset {
    std::vector<RawImage> read(std::int64_t index) const override {
      RawImage r;
      r.bytes = testing::make_jpeg(32 + static_cast<int>(index), 32, 1);
      r.width = 32 + static_cast<int>(index);
      r.height = 32;
      r.id = "m" + std::to_string(index);
      return {r};
    }
  };
  Loader mixed(std::make_shared<Mixed>(), o, 0);
  EXPECT_THROW(mixed.next(b), Error);
}

TEST_F(LoaderTest, ScaledDecodeMatchesFullDecode) {
  // 640x480 frames resized to 160x120: DCT scaling decodes at 1/4.
  testing::TempDir t;
  std::vector<ImageRecord> ims;
  for (int k = 0; k < 4; ++k)
    ims.push_back({testing::make_jpeg(640, 480, static_cast<std::uint64_t>(k)), "jpeg", 640, 480,
                   std::to_string(k), 0});
  one_exam_store(t / "s", ims);
  DatasetOptions d;
  d.store = t / "s";
  LoaderOptions o;
  o.batch_size = 4;
  TransformSpec r;
  r.name = "resize";
  r.size = {160, 120};
  o.transforms = {r};
  Batch scaled, full;
  Loader(make_dataset(d), o, 0).next(scaled);
  o.dct_scaling = false;
  Loader(make_dataset(d), o, 0).next(full);
  EXPECT_LT((scaled.images - full.images).abs().mean().item<float>(), 0.03f);
}

}  // namespace
}  // namespace endoked::data

namespace endoked::data {
namespace {

TEST_F(LoaderTest, FilterByScoresFromAFloatSidecar) {
  // A scores sidecar (as a MIL stage will write): one float per image, joined by exam and position.
  testing::TempDir t;
  RecordStore store(*dir_ / "records");
  const auto spans = store.exam_spans();
  const std::string partial = begin_store(t / "scores", false);
  ShardWriter w(partial, 0, "scores");
  std::int64_t n = 0;
  for (const auto& e : spans) {
    w.add_string("exams", "id", e.id);
    w.add_int("exams", "first_image", n);
    w.add_int("exams", "image_count", e.image_count);
    for (std::int64_t k = 0; k < e.image_count; ++k, ++n)
      w.add_float("images", "score", static_cast<double>(n % 10) / 10.0);
  }
  Manifest m;
  m.kind = "scores";
  m.shards.push_back(w.close());
  commit_store(t / "scores", m);
  DatasetOptions d;
  d.store = *dir_ / "records";
  d.sidecars = {t / "scores"};
  d.label_columns = {"images/score"};
  EXPECT_NEAR(make_dataset(d)->labels(8).at("score"), 0.8, 1e-12);
  d.filter = {"score >= 0.75"};
  auto ds = make_dataset(d);
  std::int64_t expect = 0;
  for (std::int64_t i = 0; i < n; ++i) expect += (i % 10) >= 8;  // 0.8 and 0.9
  EXPECT_EQ(ds->size(), expect);
  for (std::int64_t i = 0; i < ds->size(); ++i) EXPECT_GE(ds->labels(i).at("score"), 0.75);
}

}  // namespace
}  // namespace endoked::data

namespace endoked::data {
namespace {

// The final hflip is done by the CHW copy: with p = 1 the batch is exactly the p = 0 batch
// mirrored (images, masks and boxes), and a flip that is not last goes through the pipeline.
TEST_F(LoaderTest, FinalFlipInTheCopyEqualsAFlippedImage) {
  auto d = make_dataset(options());
  auto with_flip = [](double p, bool last) {
    LoaderOptions o = loader(8, 2);
    TransformSpec resize, flip, norm;
    resize.name = "resize";
    resize.size = {48, 40};
    flip.name = "hflip";
    flip.p = p;
    norm.name = "normalise";
    o.transforms = last ? std::vector<TransformSpec>{resize, norm, flip}
                        : std::vector<TransformSpec>{flip, resize, norm};
    return o;
  };
  const auto plain = epoch(d, with_flip(0.0, true));
  const auto mirrored = epoch(d, with_flip(1.0, true));
  const auto early = epoch(d, with_flip(1.0, false));  // flip before the resize
  ASSERT_EQ(plain.size(), mirrored.size());
  for (std::size_t i = 0; i < plain.size(); ++i) {
    EXPECT_TRUE(at::equal(mirrored[i].images, plain[i].images.flip({3})));
    EXPECT_TRUE(at::equal(mirrored[i].masks, plain[i].masks.flip({3})));
    EXPECT_LT((early[i].images - mirrored[i].images).abs().mean().item<float>(), 0.05f);
    for (std::size_t k = 0; k < plain[i].boxes.size(); ++k)
      for (std::size_t j = 0; j < plain[i].boxes[k].size(); ++j) {
        EXPECT_FLOAT_EQ(mirrored[i].boxes[k][j].x0, 48 - plain[i].boxes[k][j].x1);
        EXPECT_FLOAT_EQ(mirrored[i].boxes[k][j].y1, plain[i].boxes[k][j].y1);
      }
  }
}

}  // namespace
}  // namespace endoked::data
