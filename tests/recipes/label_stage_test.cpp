// The label stage end to end in one process: rules on a synthetic store scored by label eval;
// the ensemble with a local LLM server that disagrees on purpose (review queue, uncertain
// labels, a cached rerun); refusals on bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "../common/test_util.h"
#include "../common/chat_server.h"
#include "endoked/core/error.h"
#include "endoked/data/store.h"
#include "label_stage.h"
#include "synth_stage.h"

namespace endoked::recipes {
namespace {

using testing::ChatServer;
using testing::envelope;
using testing::reply_ok;
using nlohmann::json;

using testing::TempDir;

json always_positive() {
  return {{"polyp_present", "positive"},
          {"polyp_count", 1},
          {"count_exact", true},
          {"polyps", json::array()},
          {"history_of_polypectomy", nullptr},
          {"bowel_prep", nullptr},
          {"caecum_reached", nullptr},
          {"confidence", 0.8},
          {"evidence", json::array()}};
}

std::vector<std::string> column(const std::string& dir, const std::string& name) {
  const auto m = data::Manifest::load(dir);
  std::vector<std::string> out;
  for (const auto& s : m.shards) {
    data::ShardReader r(dir + "/" + s.file);
    const auto& v = r.strings("exams", name);
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

int lines(const std::string& path) {
  std::ifstream f(path);
  std::string l;
  int n = 0;
  while (std::getline(f, l)) ++n;
  return n;
}

struct Corpus {
  TempDir dir;
  std::unique_ptr<dist::Communicator> comm = dist::make_local_communicator();
  RunDir run{dir / "run", true};
  Corpus() {
    data::SynthOptions so;
    so.exams = 40;
    so.format = "store";
    so.output = dir / "corpus";
    so.truth = dir / "truth";
    so.min_images = 2;
    so.max_images = 2;
    so.width = 64;
    so.height = 64;
    so.threads = 1;
    so.exams_per_shard = 16;
    run_synth(*comm, so, run);
  }
};

TEST(LabelStage, RulesThenEvalAndExport) {
  Corpus c;
  LabelOptions o;
  o.store = c.dir / "corpus";
  o.output = c.dir / "labels";
  const json s = run_label(*c.comm, o, c.run);
  EXPECT_EQ(s["exams"].get<int>(), 40);
  const auto presence = column(o.output, "polyp_present");
  ASSERT_EQ(presence.size(), 40u);
  LabelEvalOptions e;
  e.labels = o.output;
  e.truth = c.dir / "truth";
  const json ev = run_label_eval(e, c.run);
  EXPECT_GE(ev["polyp_present_positive_f1"].get<double>(), 0.98);
  EXPECT_EQ(ev["exams"].get<int>(), 40);
  // A CSV truth works the same; a wrong answer shows up as an error with its evidence.
  {
    std::ofstream csv(c.dir / "truth.csv");
    csv << "exam_id,polyp_present,polyp_count\n";
    const auto ids = column(o.output, "id");
    for (std::size_t i = 0; i < ids.size(); ++i)
      csv << ids[i] << ","
          << (i == 0 ? (presence[0] == "positive" ? "negative" : "positive") : presence[i])
          << ",\n";
  }
  e.truth = c.dir / "truth.csv";
  const json ev2 = run_label_eval(e, c.run);
  EXPECT_NEAR(ev2["fields"]["polyp_present"]["accuracy"].get<double>(), 39.0 / 40.0, 1e-9);
  EXPECT_EQ(lines(c.run.path() + "/errors.jsonl"), 1);
  export_labels(o.output, c.dir / "l.csv", c.dir / "l.jsonl");
  EXPECT_EQ(lines(c.dir / "l.csv"), 41);
  EXPECT_EQ(lines(c.dir / "l.jsonl"), 40);
  // The output exists: refused without overwrite, nothing lost.
  EXPECT_THROW(run_label(*c.comm, o, c.run), Error);
  EXPECT_EQ(column(o.output, "id").size(), 40u);
  o.store = c.dir / "missing";
  o.output = c.dir / "labels2";
  EXPECT_THROW(run_label(*c.comm, o, c.run), Error);
}

TEST(LabelStage, EnsembleReviewsDisagreementsAndRerunsFromCache) {
  Corpus c;
  ChatServer server(
      [](int, const json&, httplib::Response& res) { reply_ok(res, always_positive().dump()); });
  LabelOptions rules;
  rules.store = c.dir / "corpus";
  rules.output = c.dir / "rules";
  run_label(*c.comm, rules, c.run);
  const auto by_rules = column(rules.output, "polyp_present");
  const auto n_positive = std::count(by_rules.begin(), by_rules.end(), "positive");
  ASSERT_GT(n_positive, 5);
  ASSERT_LT(n_positive, 35);

  LabelOptions o = rules;
  o.output = c.dir / "ensemble";
  o.backend = "ensemble";
  o.llm.base_url = server.url();
  o.llm.model = "m";
  o.llm.cache_dir = c.dir / "cache";
  o.llm.concurrency = 3;
  o.count_review = false;  // the server always says one polyp: only presence disagreements here
  const json s = run_label(*c.comm, o, c.run);
  EXPECT_EQ(server.requests(), 40);
  const auto by_ensemble = column(o.output, "polyp_present");
  for (std::size_t i = 0; i < by_rules.size(); ++i)
    EXPECT_EQ(by_ensemble[i], by_rules[i] == "positive" ? "positive" : "uncertain") << i;
  EXPECT_EQ(lines(o.output + "/review.csv"), 1 + 40 - n_positive);
  EXPECT_EQ(s["review_rows"].get<std::int64_t>(), 40 - n_positive);
  const auto labels = column(o.output, "labels");
  EXPECT_NE(labels[0].find("rules-1/"), std::string::npos);
  // A rerun sends nothing: every reply comes from the cache.
  o.overwrite = true;
  const json again = run_label(*c.comm, o, c.run);
  EXPECT_EQ(server.requests(), 40);
  EXPECT_EQ(again["llm"]["cache_hits"].get<int>(), 40);
  EXPECT_EQ(column(o.output, "polyp_present"), by_ensemble);
}

// A record shard edited after it was written is not labelled silently: the stage checks each
// input shard against its manifest first (and can be told not to).
TEST(LabelStage, AnEditedInputShardIsRefused) {
  Corpus c;
  const std::string shard = c.dir / "corpus/shard-00001.h5";
  {
    std::fstream f(shard, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(shard) - 10));
    f.put('\x5a');
  }
  LabelOptions o;
  o.store = c.dir / "corpus";
  o.output = c.dir / "labels";
  try {
    run_label(*c.comm, o, c.run);
    FAIL() << "an edited shard was labelled";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard-00001.h5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not match the SHA-256"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(o.output));
}

}  // namespace
}  // namespace endoked::recipes
