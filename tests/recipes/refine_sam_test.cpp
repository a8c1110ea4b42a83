// The refine stage with the SAM refiner, end to end in one process on synthetic frames: a tiny
// random SAM checkpoint (TinyViT, the official key names) written through the torch.save
// writer, a boxes sidecar holding the true boxes, `endoked refine` with refiner: sam → a masks
// sidecar with SAM's scores on every row, the same masks with 1 and 2 threads (to a few boundary
// pixels); the embedding cache (a second run encodes nothing and writes the same bytes; a damaged
// row is recomputed);
// and a missing checkpoint named before any output is made. Real weights are checked against the
// official code by benchmarks/sam_reference.sh.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>

#include <filesystem>
#include <fstream>

#include "../common/test_util.h"
#include "../common/tiny_sam.h"
#include "endoked/core/error.h"
#include "endoked/data/dataset.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"
#include "endoked/vision/masks.h"
#include "refine_stage.h"
#include "synth_stage.h"

namespace endoked::recipes {
namespace {

using nlohmann::json;
using testing::TempDir;
namespace fs = std::filesystem;

// A boxes sidecar of `store` whose accepted boxes are the true ones (the first per image).
void write_true_boxes(const std::string& store, const std::string& truth, const std::string& out) {
  data::DatasetOptions d;
  d.store = store;
  d.sidecars = {truth};
  d.boxes_column = "images/boxes";
  d.pixels = false;
  const auto ds = data::make_dataset(d);
  data::RecordStore records(store);
  const auto spans = records.exam_spans();
  const std::string partial = data::begin_store(out, false, "boxes", {store});
  data::Manifest m;
  m.kind = "boxes";
  m.columns = data::image_sidecar_layout<data::BoxesRow>();
  for (auto& c : data::layout<data::BoxRejectRow>("rejects")) m.columns.push_back(std::move(c));
  std::size_t e = 0;
  for (std::size_t s = 0; s < records.manifest().shards.size(); ++s) {
    data::ShardWriter sw(partial, static_cast<int>(s), "boxes");
    data::ImageSidecarWriter<data::BoxesRow> w(sw);
    data::TableWriter<data::BoxRejectRow>(sw, "rejects").declare();
    for (std::int64_t k = 0; k < records.manifest().shards[s].exams; ++k, ++e) {
      std::vector<data::BoxesRow> rows(static_cast<std::size_t>(spans[e].image_count));
      for (std::int64_t i = 0; i < spans[e].image_count; ++i) {
        const auto boxes = ds->read(spans[e].first_image + i).at(0).boxes;
        if (boxes.empty()) continue;
        auto& r = rows[static_cast<std::size_t>(i)];
        r.status = "accepted";
        r.boxes =
            json::array(
                {json::array({static_cast<int>(boxes[0].x0), static_cast<int>(boxes[0].y0),
                              static_cast<int>(boxes[0].x1), static_cast<int>(boxes[0].y1), 1.0})})
                .dump();
        r.count = 1;
      }
      w.add_exam(spans[e].id, std::move(rows));
    }
    m.shards.push_back(sw.close());
  }
  m.provenance = {{"input_store", fs::absolute(store).string()}};
  data::commit_store(out, m);
}

// The share of equal pixels over every refined image of two masks sidecars (same rows).
double mask_agreement(const std::string& a, const std::string& b) {
  const auto ma = data::Manifest::load(a), mb = data::Manifest::load(b);
  EXPECT_EQ(ma.shards.size(), mb.shards.size());
  double same = 0, total = 0;
  for (std::size_t s = 0; s < ma.shards.size(); ++s) {
    data::ShardReader ra(a + "/" + ma.shards[s].file), rb(b + "/" + mb.shards[s].file);
    const auto& status = ra.strings("images", "status");
    EXPECT_EQ(status.size(), rb.strings("images", "status").size());
    for (std::size_t i = 0; i < status.size(); ++i) {
      if (status[i] == "no_box") continue;
      const cv::Mat x = vision::decode_mask(ra.blob("images", "mask", static_cast<std::int64_t>(i)),
                                            "a"),
                    y = vision::decode_mask(rb.blob("images", "mask", static_cast<std::int64_t>(i)),
                                            "b");
      EXPECT_EQ(x.size(), y.size());
      if (x.size() != y.size()) return 0;
      same += static_cast<double>(cv::countNonZero(x == y));
      total += static_cast<double>(x.total());
    }
  }
  return total > 0 ? same / total : 0;
}

TEST(RefineSam, StageWritesSamScoresAndCachesEmbeddings) {
  TempDir dir;
  auto comm = dist::make_local_communicator();
  RunDir run{dir / "run", true};
  data::SynthOptions so;
  so.exams = 6;
  so.seed = 3;
  so.format = "store";
  so.output = dir / "records";
  so.truth = dir / "truth";
  so.min_images = 2;
  so.max_images = 3;
  so.width = 96;
  so.height = 80;
  so.threads = 1;
  so.exams_per_shard = 3;
  run_synth(*comm, so, run);
  write_true_boxes(dir / "records", dir / "truth", dir / "boxes");
  testing::write_random_sam(dir / "sam.pt", "tiny_vit", 11);

  RefineOptions o;
  o.store = dir / "records";
  o.boxes = dir / "boxes";
  o.truth = dir / "truth";
  o.output = dir / "masks1";
  o.refiner = "sam";
  o.threads = 1;
  o.montage = 2;
  o.options.sam.checkpoint = dir / "sam.pt";
  o.options.sam.min_predicted_iou = -1;  // random weights: keep every mask the common rules keep
  o.options.sam.min_stability = 0;
  o.options.sam.min_prompt_box_iou = 0;
  const json a = run_refine(*comm, o, run);
  ASSERT_GT(a["refined"].get<std::int64_t>(), 0) << a.dump();
  o.output = dir / "masks2";
  o.threads = 2;
  const json b = run_refine(*comm, o, RunDir(dir / "run2", true));
  EXPECT_EQ(a["refined"], b["refined"]);
  EXPECT_EQ(a["accepted"], b["accepted"]);
  const auto m1 = data::Manifest::load(dir / "masks1");
  ASSERT_EQ(m1.shards.size(), 2u);
  // The encoder's float sums split differently over 2 intra-op threads than over 1: a few
  // boundary pixels may move, no more.
  EXPECT_GE(mask_agreement(dir / "masks1", dir / "masks2"), 0.995);
  EXPECT_EQ(m1.provenance["refiner"], "sam");

  std::int64_t rows = 0;
  for (const auto& info : m1.shards) {
    data::ShardReader r(std::string(dir / "masks1") + "/" + info.file);
    const auto status = r.strings("images", "status");
    const auto scores = r.strings("images", "scores");
    for (std::size_t i = 0; i < status.size(); ++i) {
      if (status[i] == "no_box") continue;
      ++rows;
      const json sc = json::parse(scores[i]);
      for (const char* k : {"predicted_iou", "stability", "prompt_box_iou", "box_share"})
        EXPECT_TRUE(sc.contains(k)) << k << " " << sc.dump();
      EXPECT_GE(sc["stability"].get<double>(), 0.0);
      EXPECT_LE(sc["stability"].get<double>(), 1.0);
      EXPECT_EQ(r.strings("images", "refiner")[i], "sam");
    }
  }
  EXPECT_EQ(rows, a["refined"].get<std::int64_t>());

  // The embedding cache: the first run encodes every image and fills it; the second (another
  // batch size and thread count) runs no encoder and writes the same masks.
  o.cache = dir / "cache";
  o.output = dir / "masks-c1";
  o.batch = 3;
  const json c1 = run_refine(*comm, o, run);
  const std::int64_t refined = a["refined"].get<std::int64_t>();
  EXPECT_EQ(c1["features"]["encoded"].get<std::int64_t>(), refined) << c1.dump();
  EXPECT_EQ(c1["features"]["cached"].get<std::int64_t>(), 0);
  EXPECT_EQ(c1["features"]["added"].get<std::int64_t>(), refined);
  EXPECT_EQ(c1["features"]["cache_rows"].get<std::int64_t>(), refined);
  o.output = dir / "masks-c2";
  o.threads = 1;
  o.batch = 1;
  const json c2 = run_refine(*comm, o, run);
  EXPECT_EQ(c2["features"]["encoded"].get<std::int64_t>(), 0) << c2.dump();
  EXPECT_EQ(c2["features"]["cached"].get<std::int64_t>(), refined);
  EXPECT_EQ(c2["features"]["cache_rows"].get<std::int64_t>(), refined);
  // The same embeddings give the same bytes (the decoders run on one intra-op thread each).
  const auto mc1 = data::Manifest::load(dir / "masks-c1"),
             mc2 = data::Manifest::load(dir / "masks-c2");
  for (std::size_t s = 0; s < mc1.shards.size(); ++s)
    EXPECT_EQ(mc1.shards[s].content_sha256, mc2.shards[s].content_sha256) << s;
  EXPECT_GE(mask_agreement(dir / "masks2", dir / "masks-c1"), 0.995);
  // A damaged cache row is a counted miss: recomputed, added again, the same masks.
  {
    const auto cm = data::Manifest::load(c1["features"]["cache"].get<std::string>());
    ASSERT_FALSE(cm.shards.empty());
    const std::string part = c1["features"]["cache"].get<std::string>() + "/" + cm.shards[0].file;
    std::int64_t offset = 0;
    {
      data::ShardReader r(part);
      const auto at = r.blob_location("images", "values", 0);
      ASSERT_TRUE(at.has_value());
      offset = at->offset + 100;
    }
    std::fstream f(part, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(offset);
    f.write("\x7f\x7f\x7f\x7f", 4);
  }
  o.output = dir / "masks-c3";
  const json c3 = run_refine(*comm, o, run);
  EXPECT_EQ(c3["features"]["damaged"].get<std::int64_t>(), 1) << c3.dump();
  EXPECT_EQ(c3["features"]["encoded"].get<std::int64_t>(), 1);
  EXPECT_EQ(c3["features"]["cached"].get<std::int64_t>(), refined - 1);
  EXPECT_GE(mask_agreement(dir / "masks-c1", dir / "masks-c3"), 0.995);
  o.cache.clear();

  // A checkpoint that is not there: named, and no output is made.
  o.output = dir / "masks3";
  o.options.sam.checkpoint = dir / "nowhere.pt";
  try {
    run_refine(*comm, o, run);
    ADD_FAILURE() << "ran without a checkpoint";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nowhere.pt"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / "masks3"));
}

}  // namespace
}  // namespace endoked::recipes
