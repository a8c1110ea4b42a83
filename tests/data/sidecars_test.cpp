// Typed sidecars: one row declaration writes, reads and describes each sidecar; h5py sees
// exactly the declared datasets; a dataset joins an image-level sidecar by (exam, position).
#include "endoked/data/sidecars.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "../common/test_util.h"
#include "endoked/data/dataset.h"

namespace endoked::data {
namespace {

using nlohmann::json;

// Writes `rows` (per exam) as a one-shard sidecar store of `kind`; returns the store directory.
template <class Row>
std::string write_sidecar(const std::string& dir, const std::string& kind,
                          const std::vector<std::pair<std::string, std::vector<Row>>>& exams) {
  begin_store(dir, false);
  Manifest m;
  m.kind = kind;
  m.columns = image_sidecar_layout<Row>();
  {
    ShardWriter w(partial_dir(dir), 0, kind);
    ImageSidecarWriter<Row> out(w);
    for (const auto& [id, rows] : exams) out.add_exam(id, rows);
    m.shards.push_back(w.close());
  }
  commit_store(dir, m);
  return dir;
}

// The datasets h5py lists in shard 0 of `dir`.
std::set<std::string> h5py_datasets(const std::string& dir) {
  std::string out;
  const int rc = testing::run_shell(
      "/usr/bin/python3 -c \"import h5py,sys; f=h5py.File(sys.argv[1]); "
      "f.visititems(lambda n, o: print(n) if isinstance(o, h5py.Dataset) else None)\" " +
          dir + "/shard-00000.h5",
      &out);
  EXPECT_EQ(rc, 0) << out;
  std::set<std::string> names;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) names.insert(line);
  return names;
}

std::set<std::string> declared(const json& layout) {
  std::set<std::string> names;
  for (const auto& c : layout) names.insert(c["dataset"].get<std::string>());
  return names;
}

TEST(Sidecars, EveryKindRoundTripsAndH5pySeesItsLayout) {
  testing::TempDir t;
  MaskRow m1;
  m1.mask.bytes = std::string("\x89PNG\r\n\x1a\n", 8) + "one";
  m1.quality = 0.75;
  MaskRow m2;
  m2.mask.bytes = "second mask";
  const std::string masks = write_sidecar<MaskRow>(t / "masks", "masks", {{"E1", {m1, m2}}, {"E2", {m1}}});
  ShardReader r(masks + "/shard-00000.h5");
  const auto rows = read_rows<MaskRow>(r, "images");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].mask, m2.mask);
  EXPECT_EQ(rows[1].position, 1);
  EXPECT_EQ(rows[2].exam, 1);
  EXPECT_EQ(rows[0].quality, 0.75);
  const auto index = read_rows<ExamIndexRow>(r, "exams");
  ASSERT_EQ(index.size(), 2u);
  EXPECT_EQ(index[1].id, "E2");
  EXPECT_EQ(index[1].first_image, 2);
  EXPECT_EQ(h5py_datasets(masks), declared(image_sidecar_layout<MaskRow>()));
  EXPECT_EQ(Manifest::load(masks).columns, image_sidecar_layout<MaskRow>());

  EmbeddingRow e;
  const std::vector<float> v = {0.5f, -1.0f, 2.0f};
  e.embedding.bytes.assign(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
  e.dim = 3;
  const std::string emb = write_sidecar<EmbeddingRow>(t / "emb", "embeddings", {{"E1", {e}}});
  EXPECT_EQ(h5py_datasets(emb), declared(image_sidecar_layout<EmbeddingRow>()));
  ShardReader er(emb + "/shard-00000.h5");
  EXPECT_EQ(read_rows<EmbeddingRow>(er, "images")[0].embedding, e.embedding);

  BoxesRow b;
  b.boxes = "[[1, 2, 30, 40, 0.9]]";
  b.count = 1;
  const std::string boxes = write_sidecar<BoxesRow>(t / "boxes", "boxes", {{"E9", {b, b}}});
  EXPECT_EQ(h5py_datasets(boxes), declared(image_sidecar_layout<BoxesRow>()));
  ShardReader br(boxes + "/shard-00000.h5");
  EXPECT_EQ(read_rows<BoxesRow>(br, "images")[1].boxes, b.boxes);

  // The labels sidecar is exam-level: its layout is /exams only.
  const json labels = layout<LabelsRow>("exams");
  EXPECT_EQ(labels.size(), 9u);
  EXPECT_EQ(labels[3]["dataset"], "exams/positive");
  EXPECT_EQ(labels[3]["dtype"], "int64");
}

// A scores sidecar written through its declaration is joined to the records by (exam id,
// position): the loader's dataset reads each image's own score.
TEST(Sidecars, DatasetJoinsAScoresSidecarByExamAndPosition) {
  testing::TempDir t;
  testing::make_labelled_store(t / "records", t / "labels", 5, 3, 16, 16, 2);
  // Written in reverse exam order: the join must not depend on row order.
  std::vector<std::pair<std::string, std::vector<ScoreRow>>> exams;
  for (int e = 4; e >= 0; --e) {
    std::vector<ScoreRow> rows(3);
    for (int k = 0; k < 3; ++k) rows[static_cast<std::size_t>(k)].score = e * 10 + k;
    exams.emplace_back(fmt::format("E{:04d}", e), rows);
  }
  write_sidecar<ScoreRow>(t / "scores", "scores", exams);
  DatasetOptions o;
  o.store = t / "records";
  o.sidecars = {t / "scores"};
  o.label_columns = {"images/score"};
  const auto ds = make_dataset(o);
  ASSERT_EQ(ds->size(), 15);
  for (std::int64_t i = 0; i < 15; ++i)
    EXPECT_EQ(ds->labels(i).at("score"), (i / 3) * 10 + i % 3) << ds->item_id(i);
}

}  // namespace
}  // namespace endoked::data
