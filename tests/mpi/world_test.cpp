// Collectives and world-size independence of synth and ingest, run at 2 and 3 ranks.
#include <gtest/gtest.h>

#include <mpi.h>

#include <memory>

#include "../common/test_util.h"
#include "backends.h"
#include "endoked/core/error.h"
#include "endoked/core/sha256.h"
#include "endoked/data/store.h"
#include "ingest_stage.h"
#include "synth_stage.h"
#include "world.h"

using nlohmann::json;

namespace endoked {
namespace {

using testing::world;

// A temporary directory made by rank 0 and shared by path with every rank.
class SharedDir {
 public:
  SharedDir() {
    if (world().is_root()) dir_ = std::make_unique<testing::TempDir>();
    path_ = dir_ ? dir_->path() : "";
    world().broadcast_bytes(path_, 0);
  }
  ~SharedDir() { world().barrier(); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::unique_ptr<testing::TempDir> dir_;
  std::string path_;
};

TEST(World, BroadcastGatherReduce) {
  auto& c = world();
  ASSERT_GE(c.size(), 2);
  for (int root = 0; root < c.size(); ++root) {
    std::string s =
        c.rank() == root ? std::string(1000 + root, static_cast<char>('a' + root)) : "x";
    c.broadcast_bytes(s, root);
    EXPECT_EQ(s, std::string(1000 + root, static_cast<char>('a' + root)));
  }
  const auto all = c.all_gather_bytes(
      std::string(static_cast<std::size_t>(c.rank()) * 3000, static_cast<char>('0' + c.rank())));
  ASSERT_EQ(static_cast<int>(all.size()), c.size());
  for (int r = 0; r < c.size(); ++r)
    EXPECT_EQ(all[static_cast<std::size_t>(r)],
              std::string(static_cast<std::size_t>(r) * 3000, static_cast<char>('0' + r)));
  std::vector<std::int64_t> v = {c.rank(), 10 * c.rank(), -c.rank()};
  c.all_reduce(v.data(), v.size(), dist::ReduceOp::kSum);
  const std::int64_t s = c.size() * (c.size() - 1) / 2;
  EXPECT_EQ(v, (std::vector<std::int64_t>{s, 10 * s, -s}));
  double d[2] = {0.5 * c.rank(), -1.0 * c.rank()};
  c.all_reduce(d, 2, dist::ReduceOp::kMax);
  EXPECT_DOUBLE_EQ(d[0], 0.5 * (c.size() - 1));
  EXPECT_DOUBLE_EQ(d[1], 0.0);
  std::int64_t m = 7 + c.rank();
  c.all_reduce(&m, 1, dist::ReduceOp::kMin);
  EXPECT_EQ(m, 7);
}

data::SynthOptions corpus(const std::string& out, const std::string& truth,
                          const std::string& format) {
  data::SynthOptions o;
  o.exams = 23;
  o.seed = 5;
  o.width = 96;
  o.height = 80;
  o.min_images = 2;
  o.max_images = 4;
  o.exams_per_shard = 4;  // 6 shards: uneven over 2 and 3 ranks
  o.format = format;
  o.output = out;
  o.truth = truth;
  o.threads = 1;
  return o;
}

TEST(World, SynthIsTheSameOnOneRankAndOnAll) {
  SharedDir d;
  const json all = recipes::run_synth(world(), corpus(d / "world", d / "world-truth", "store"),
                                      RunDir(d / "run", world().is_root()));
  if (world().is_root()) {
    auto local = dist::make_local_communicator();
    const json one = recipes::run_synth(*local, corpus(d / "one", d / "one-truth", "store"),
                                        RunDir(d / "run1", true));
    EXPECT_EQ(all["content_sha256"], one["content_sha256"]);
    EXPECT_EQ(all["truth_content_sha256"], one["truth_content_sha256"]);
    EXPECT_EQ(all["images"], one["images"]);
    EXPECT_EQ(data::RecordStore(d / "world").exam_count(), 23);
  }
}

TEST(World, IngestIsTheSameOnOneRankAndOnAll) {
  SharedDir d;
  // The raw corpus is itself written by all ranks.
  recipes::run_synth(world(), corpus(d / "raw", d / "raw-truth", "raw"),
                     RunDir(d / "run", world().is_root()));
  data::IngestOptions o;
  o.images_dir = d / "raw/images";
  o.reports = d / "raw/reports.csv";
  o.shard_size_mb = 0.01;  // many small shards
  o.threads = 1;
  o.output = d / "world";
  const auto all = recipes::run_ingest(world(), o, RunDir(d / "run", world().is_root()));
  EXPECT_EQ(all.exams, 23);
  EXPECT_EQ(all.rejects, 0);
  if (world().is_root()) {
    auto local = dist::make_local_communicator();
    data::IngestOptions one = o;
    one.output = d / "one";
    const auto single = recipes::run_ingest(*local, one, RunDir(d / "run1", true));
    EXPECT_EQ(all.content_sha256, single.content_sha256);
    const auto ma = data::Manifest::load(o.output), mb = data::Manifest::load(one.output);
    ASSERT_EQ(ma.shards.size(), mb.shards.size());
    EXPECT_GE(ma.shards.size(), 4u);
    for (std::size_t s = 0; s < ma.shards.size(); ++s)
      EXPECT_EQ(sha256_file(o.output + "/" + ma.shards[s].file),
                sha256_file(one.output + "/" + mb.shards[s].file));
    EXPECT_TRUE(data::verify_store(o.output, data::VerifyOptions{true}).ok());
  }
}

TEST(World, AFailureOnRootReachesEveryRank) {
  SharedDir d;
  data::IngestOptions o;
  o.images_dir = d / "missing";
  o.reports = d / "missing.csv";
  o.output = d / "never";
  EXPECT_THROW(recipes::run_ingest(world(), o, RunDir(d / "run", world().is_root())), Error);
}

// Two threads call MPI (the reducer's communication thread and the training thread): the
// runtime must hold MPI_THREAD_MULTIPLE and refuse anything less by name.
TEST(World, RunsWithThreadMultipleAndRefusesLess) {
  int provided = 0;
  MPI_Query_thread(&provided);
  EXPECT_EQ(provided, MPI_THREAD_MULTIPLE);
  EXPECT_NO_THROW(dist::check_mpi_thread_level(MPI_THREAD_MULTIPLE));
  try {
    dist::check_mpi_thread_level(MPI_THREAD_SERIALIZED);
    FAIL() << "MPI_THREAD_SERIALIZED was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MPI_THREAD_SERIALIZED"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace endoked
