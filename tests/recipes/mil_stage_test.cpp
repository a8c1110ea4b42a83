// The MIL stage in one process on a tiny synthetic store: what the scores sidecar holds (ranks,
// labels, the localisation selection by its rule), model.pt scored again by `mil score`, the
// label policy, and refusals of configs that cannot train. Learning itself (AUC, 1 vs 2 ranks,
// preemption) is tests/recipes/mil_test.sh.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "../common/test_util.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"
#include "label_stage.h"
#include "mil_stage.h"
#include "synth_stage.h"

namespace endoked::recipes {
namespace {

using nlohmann::json;
using testing::TempDir;
namespace fs = std::filesystem;

struct Store {
  TempDir dir;
  std::unique_ptr<dist::Communicator> comm = dist::make_local_communicator();
  RunDir run{dir / "run", true};
  Store() {
    data::SynthOptions so;
    so.exams = 24;
    so.seed = 5;
    so.format = "store";
    so.output = dir / "records";
    so.truth = dir / "truth";
    so.min_images = 2;
    so.max_images = 4;
    so.width = 96;
    so.height = 80;
    so.threads = 1;
    so.exams_per_shard = 10;
    run_synth(*comm, so, run);
    LabelOptions lo;
    lo.store = dir / "records";
    lo.output = dir / "labels";
    run_label(*comm, lo, run);
  }
  MilOptions options(const std::string& output) const {
    MilOptions o;
    o.store = dir / "records";
    o.labels = dir / "labels";
    o.truth = dir / "truth";
    o.output = dir / output;
    o.model.width = 8;
    o.trainer.epochs = 2;
    o.batch_norm_images = 64;
    o.threads = 1;
    return o;
  }
};

struct Sidecar {
  std::vector<std::string> exams;
  std::vector<data::ScoreRow> images;
  std::vector<std::int64_t> exam_of;
};
Sidecar read_sidecar(const std::string& dir) {
  Sidecar s;
  for (const auto& sh : data::Manifest::load(dir).shards) {
    data::ShardReader r(dir + "/" + sh.file);
    const auto base = static_cast<std::int64_t>(s.exams.size());
    for (const auto& e : data::read_rows<data::ExamIndexRow>(r, "exams")) s.exams.push_back(e.id);
    for (const auto& i : data::read_rows<data::ScoreRow>(r, "images")) {
      s.images.push_back(i);
      s.exam_of.push_back(base + i.exam);
    }
  }
  return s;
}

// The labels sidecar's exams/positive by exam id.
std::map<std::string, std::int64_t> positives(const std::string& labels) {
  std::map<std::string, std::int64_t> out;
  for (const auto& sh : data::Manifest::load(labels).shards) {
    data::ShardReader r(labels + "/" + sh.file);
    for (const auto& row : data::read_rows<data::LabelsRow>(r, "exams")) out[row.id] = row.positive;
  }
  return out;
}

TEST(MilStage, WritesScoresSelectionAndModel) {
  Store st;
  const MilOptions o = st.options("mil");
  const json summary = run_mil(*st.comm, o, st.run);
  const auto m = data::Manifest::load(o.output);
  EXPECT_EQ(m.kind, "scores");
  const Sidecar s = read_sidecar(o.output);
  ASSERT_EQ(s.exams.size(), 24u);
  EXPECT_EQ(summary["images"].get<std::size_t>(), s.images.size());
  for (const char* k :
       {"exam_auc", "exam_auc_attention", "exam_auc_dsmil", "image_auc", "image_ap"})
    EXPECT_TRUE(summary.contains(k)) << k;
  EXPECT_TRUE(fs::exists(o.output + "/model.pt"));
  const json model = json::parse(files::read_all(o.output + "/model.json"));
  EXPECT_EQ(model["image_size"].get<int>(), 64);
  EXPECT_EQ(model["model"]["width"].get<int>(), 8);

  // Labels: 1 / 0 as the report says, −1 for the excluded (uncertain, not mentioned).
  const auto pos = positives(o.labels);
  std::vector<double> negative_scores;
  std::map<std::int64_t, std::vector<std::int64_t>> ranks;
  for (std::size_t i = 0; i < s.images.size(); ++i) {
    const auto& r = s.images[i];
    const std::int64_t code = pos.at(s.exams[static_cast<std::size_t>(s.exam_of[i])]);
    EXPECT_EQ(r.exam_label, code == 1 ? 1 : code == 0 ? 0 : -1);
    EXPECT_GE(r.score, 0.0);
    EXPECT_LE(r.score, 1.0);
    EXPECT_GE(r.teacher_attention, 0.0);
    EXPECT_LE(r.teacher_attention, 1.0);
    ranks[s.exam_of[i]].push_back(r.rank);
    // Positives: exactly the images of positive exams at or above the threshold.
    EXPECT_EQ(r.selected == 1, r.exam_label == 1 && r.score >= o.select.positive_threshold);
    if (r.exam_label == 0) negative_scores.push_back(r.score);
  }
  // Ranks: a permutation of 0..K−1 within each exam, 0 the highest score.
  for (auto& [exam, v] : ranks) {
    std::sort(v.begin(), v.end());
    for (std::size_t k = 0; k < v.size(); ++k) EXPECT_EQ(v[k], static_cast<std::int64_t>(k));
  }
  for (std::size_t i = 0; i < s.images.size(); ++i)
    for (std::size_t j = 0; j < s.images.size(); ++j)
      if (s.exam_of[i] == s.exam_of[j] && s.images[i].rank < s.images[j].rank) {
        EXPECT_GE(s.images[i].score, s.images[j].score);
      }
  // Negatives: the lowest 10 % of the negative exams' images (rounded up).
  ASSERT_FALSE(negative_scores.empty());
  const auto expected = static_cast<std::int64_t>(std::ceil(0.1 * negative_scores.size()));
  std::int64_t selected = 0;
  double highest_selected = -1, lowest_other = 2;
  for (const auto& r : s.images) {
    if (r.exam_label != 0) continue;
    if (r.selected == 0) {
      ++selected;
      highest_selected = std::max(highest_selected, r.score);
    } else {
      lowest_other = std::min(lowest_other, r.score);
    }
  }
  EXPECT_EQ(selected, expected);
  EXPECT_LE(highest_selected, lowest_other);
  EXPECT_EQ(summary["selection"]["negatives"].get<std::int64_t>(), expected);
  // One evaluation line per epoch in metrics.jsonl.
  const std::string metrics = files::read_all(st.run.path() + "/metrics.jsonl");
  EXPECT_NE(metrics.find("\"eval_epoch\":1"), std::string::npos);

  // mil score with the saved model gives the stage's own scores.
  MilScoreOptions so;
  so.store = o.store;
  so.checkpoint = o.output + "/model.pt";
  so.output = st.dir / "scored";
  so.truth = o.truth;
  so.threads = 1;
  const json scored = run_mil_score(*st.comm, so, st.run);
  const Sidecar t = read_sidecar(so.output);
  ASSERT_EQ(t.images.size(), s.images.size());
  for (std::size_t i = 0; i < s.images.size(); ++i) {
    EXPECT_NEAR(t.images[i].score, s.images[i].score, 1e-5);
    EXPECT_EQ(t.images[i].selected, -1);    // mil score selects nothing
    EXPECT_EQ(t.images[i].exam_label, -1);  // no labels given
  }
  EXPECT_NEAR(scored["image_auc"].get<double>(), summary["image_auc"].get<double>(), 1e-6);
}

TEST(MilStage, LabelPolicyDecidesTheTrainingBags) {
  Store st;
  MilOptions o = st.options("mil");
  o.trainer.max_steps = 1;
  const json a = run_mil(*st.comm, o, st.run);
  o.output = st.dir / "mil2";
  o.uncertain = "positive";
  o.not_mentioned = "negative";
  const json b = run_mil(*st.comm, o, RunDir(st.dir / "run2", true));
  const auto pos = positives(o.labels);
  std::int64_t p = 0, n = 0, u = 0, nm = 0;
  for (const auto& [id, code] : pos) {
    p += code == 1;
    n += code == 0;
    u += code == -1;
    nm += code == -2;
  }
  EXPECT_EQ(a["training_exams"]["positive"].get<std::int64_t>(), p);
  EXPECT_EQ(a["training_exams"]["negative"].get<std::int64_t>(), n);
  EXPECT_EQ(b["training_exams"]["positive"].get<std::int64_t>(), p + u);
  EXPECT_EQ(b["training_exams"]["negative"].get<std::int64_t>(), n + nm);
}

TEST(MilStage, RefusesWhatCannotTrain) {
  Store st;
  const auto refused = [&](MilOptions o, const std::string& words) {
    try {
      run_mil(*st.comm, o, st.run);
      ADD_FAILURE() << "accepted; expected an error with '" << words << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  MilOptions o = st.options("bad");
  o.trainer.epochs = 3;
  refused(o, "must be even");
  o = st.options("bad");
  o.positive_weight = 0;
  refused(o, "positive_weight");
  o = st.options("bad");
  o.labels = "";
  refused(o, "mil.labels is empty");
  o = st.options("bad");
  o.labels = st.dir / "nowhere";
  refused(o, "nowhere");
  o = st.options("bad");
  o.uncertain = "maybe";
  refused(o, "mil.uncertain must be exclude, positive or negative");
  o = st.options("bad");
  o.model.arch = "resnet7";
  refused(o, "resnet7");
  // Labels where every exam is positive: nothing to contrast with.
  {
    data::RecordStore records(st.dir / "records");
    const std::string dir = st.dir / "all-positive";
    data::begin_store(dir, false, "labels");
    data::ShardWriter w(data::partial_dir(dir), 0, "labels");
    data::TableWriter<data::LabelsRow> rows(w, "exams");
    for (const auto& e : records.exam_spans()) {
      data::LabelsRow r;
      r.id = e.id;
      r.polyp_present = "positive";
      r.positive = 1;
      rows.add(r);
    }
    data::Manifest m;
    m.kind = "labels";
    m.shards.push_back(data::ShardInfo::from_json(w.close().to_json()));
    data::commit_store(dir, m);
    o = st.options("bad");
    o.labels = dir;
    refused(o, "needs positive and negative exams");
  }
  // Weights that do not fit the encoder are refused, naming the file.
  o = st.options("bad");
  o.model.weights = st.dir / "records/manifest.json";
  EXPECT_THROW(run_mil(*st.comm, o, st.run), Error);
  EXPECT_FALSE(fs::exists(st.dir / "bad/manifest.json"));
}

}  // namespace
}  // namespace endoked::recipes
