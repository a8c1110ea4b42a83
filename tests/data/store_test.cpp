#include "endoked/data/store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <fstream>

#include "../common/test_util.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/sha256.h"

namespace fs = std::filesystem;

namespace endoked::data {
namespace {

struct Fixture {
  std::vector<ExamRecord> exams;
  std::vector<std::vector<ImageRecord>> images;
};

// 7 exams over 3 shards (3 + 3 + 1), reports in English and Chinese, real JPEG bytes.
Fixture make_fixture() {
  Fixture f;
  for (int e = 0; e < 7; ++e) {
    ExamRecord ex;
    ex.id = "EX" + std::to_string(100 + e);
    ex.centre = e % 2 ? "centre-a" : "centre-b";
    ex.report = e % 2 ? "A 6 mm sessile polyp in the sigmoid colon." : "肠道准备良好，未见息肉。";
    ex.metadata = "{\"age\":" + std::to_string(50 + e) + "}";
    f.exams.push_back(ex);
    std::vector<ImageRecord> ims;
    for (int k = 0; k < 1 + e % 3; ++k) {
      ImageRecord im;
      im.bytes = testing::make_jpeg(40 + k, 32, static_cast<std::uint64_t>(e * 10 + k));
      im.format = "jpeg";
      im.width = 40 + k;
      im.height = 32;
      im.source_path = ex.id + "/" + std::to_string(k) + ".jpg";
      ims.push_back(im);
    }
    f.images.push_back(ims);
  }
  return f;
}

std::string write_store(const std::string& dir, const Fixture& f) {
  const std::string partial = begin_store(dir, false);
  Manifest m;
  m.kind = "records";
  m.image_columns = {"images/bytes"};
  for (int s = 0; s < 3; ++s) {
    ShardWriter w(partial, s, "records");
    for (int e = s * 3; e < std::min(7, s * 3 + 3); ++e) add_exam(w, f.exams[e], f.images[e]);
    m.shards.push_back(w.close());
  }
  commit_store(dir, m);
  return m.content_sha256();
}

TEST(Store, RoundTripRandomAccessAndScan) {
  testing::TempDir tmp;
  const Fixture f = make_fixture();
  const std::string dir = tmp / "store";
  write_store(dir, f);
  EXPECT_FALSE(fs::exists(partial_dir(dir)));

  RecordStore store(dir);
  ASSERT_EQ(store.exam_count(), 7);
  std::int64_t total_images = 0;
  for (const auto& ims : f.images) total_images += static_cast<std::int64_t>(ims.size());
  ASSERT_EQ(store.image_count(), total_images);
  std::int64_t g = 0;
  for (int e = 0; e < 7; ++e) {
    const ExamRecord ex = store.exam(e);
    EXPECT_EQ(ex.id, f.exams[e].id);
    EXPECT_EQ(ex.report, f.exams[e].report);
    EXPECT_EQ(ex.centre, f.exams[e].centre);
    EXPECT_EQ(ex.metadata, f.exams[e].metadata);
    EXPECT_EQ(ex.first_image, g);
    ASSERT_EQ(ex.image_count, static_cast<std::int64_t>(f.images[e].size()));
    for (std::size_t k = 0; k < f.images[e].size(); ++k, ++g) {
      const ImageRecord im = store.image(g);
      EXPECT_EQ(im.bytes, f.images[e][k].bytes);
      EXPECT_EQ(im.width, f.images[e][k].width);
      EXPECT_EQ(im.exam, e);
      EXPECT_EQ(im.source_path, f.images[e][k].source_path);
    }
  }
  EXPECT_EQ(store.find_exam("EX104"), 4);
  EXPECT_EQ(store.find_exam("nope"), -1);
  EXPECT_THROW(store.exam(7), Error);
  EXPECT_THROW(store.image(-1), Error);
  int seen = 0;
  store.scan([&](const ExamRecord& ex, const std::vector<ImageRecord>& ims) {
    EXPECT_EQ(ex.id, f.exams[seen].id);
    EXPECT_EQ(ims.size(), f.images[seen].size());
    EXPECT_EQ(ims.front().bytes, f.images[seen].front().bytes);
    ++seen;
  });
  EXPECT_EQ(seen, 7);
  const VerifyResult v = verify_store(dir, VerifyOptions{true});
  EXPECT_TRUE(v.ok()) << (v.problems.empty() ? "" : v.problems[0]);
  EXPECT_EQ(v.decoded, total_images);
}

TEST(Store, SameContentSameHashAndBytes) {
  testing::TempDir tmp;
  const Fixture f = make_fixture();
  const std::string a = write_store(tmp / "a", f);
  const std::string b = write_store(tmp / "b", f);
  EXPECT_EQ(a, b);
  // No timestamps in the files: identical content gives identical shards.
  EXPECT_EQ(sha256_file(tmp / "a/shard-00001.h5"), sha256_file(tmp / "b/shard-00001.h5"));
  Fixture g = f;
  g.exams[5].report += " ";
  EXPECT_NE(write_store(tmp / "c", g), a);
}

TEST(Store, ReadableWithH5pyAlone) {
  testing::TempDir tmp;
  const Fixture f = make_fixture();
  write_store(tmp / "store", f);
  nlohmann::json expected = {{"exams", nlohmann::json::array()}};
  for (std::size_t e = 0; e < f.exams.size(); ++e) {
    nlohmann::json ims = nlohmann::json::array();
    for (const auto& im : f.images[e]) ims.push_back(sha256_hex(im.bytes));
    expected["exams"].push_back(
        {{"id", f.exams[e].id}, {"report", f.exams[e].report}, {"images", ims}});
  }
  testing::write_file(tmp / "expected.json", expected.dump());
  std::string out;
  const int rc =
      testing::run_shell("/usr/bin/python3 " ENDOKED_SOURCE_DIR "/tests/data/check_store.py " +
                             (tmp / "store") + " " + (tmp / "expected.json"),
                         &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("h5py read 7 exams"), std::string::npos) << out;
}

TEST(Store, VerifyCatchesTruncationAndCorruption) {
  testing::TempDir tmp;
  write_store(tmp / "store", make_fixture());
  const std::string shard = tmp / "store/shard-00001.h5";
  const std::string original = files::read_all(shard);
  // Truncated shard: verify names it; the reader refuses to open the store.
  testing::write_file(shard, original.substr(0, original.size() / 2));
  VerifyResult v = verify_store(tmp / "store", {});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.problems[0].find("shard-00001.h5: size"), std::string::npos) << v.problems[0];
  EXPECT_THROW(RecordStore(tmp / "store"), Error);
  // Same size, one byte flipped: the checksum catches it.
  std::string flipped = original;
  flipped[flipped.size() - 100] ^= 0x5A;
  testing::write_file(shard, flipped);
  v = verify_store(tmp / "store", {});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.problems[0].find("SHA-256 differs"), std::string::npos) << v.problems[0];
  // A shard file gone.
  fs::remove(shard);
  v = verify_store(tmp / "store", {});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.problems[0].find("missing"), std::string::npos);
}

TEST(Store, DeepVerifyFindsACorruptImageThatChecksumsCannot) {
  testing::TempDir tmp;
  const std::string partial = begin_store(tmp / "s", false);
  ShardWriter w(partial, 0, "records");
  ImageRecord good{testing::make_jpeg(64, 48, 1), "jpeg", 64, 48, "a/0.jpg", 0};
  ImageRecord bad = good;
  bad.bytes = good.bytes.substr(0, good.bytes.size() / 2);  // cut mid-scan
  bad.source_path = "a/1.jpg";
  add_exam(w, ExamRecord{"a", "", "report", "{}", 0, 0}, {good, bad});
  Manifest m;
  m.kind = "records";
  m.image_columns = {"images/bytes"};
  m.shards.push_back(w.close());
  commit_store(tmp / "s", m);
  EXPECT_TRUE(verify_store(tmp / "s", {false}).ok());
  const VerifyResult deep = verify_store(tmp / "s", {true});
  ASSERT_EQ(deep.problems.size(), 1u);
  EXPECT_NE(deep.problems[0].find("a/1.jpg"), std::string::npos) << deep.problems[0];
  EXPECT_EQ(deep.decoded, 1);
}

TEST(Store, InterruptedWritesAreNeverReadAsComplete) {
  testing::TempDir tmp;
  const std::string dir = tmp / "store";
  // Mid-write: shards in the partial directory, no manifest yet.
  const std::string partial = begin_store(dir, false);
  {
    ShardWriter w(partial, 0, "records");
    add_exam(w, ExamRecord{"x", "", "r", "{}", 0, 0},
             {ImageRecord{testing::make_jpeg(16, 16, 2), "jpeg", 16, 16, "x/0", 0}});
    w.close();
  }
  try {
    RecordStore s(dir);
    FAIL() << "an interrupted store was opened";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("interrupted"), std::string::npos) << e.what();
  }
  // A shard writer that dies before close leaves neither a shard nor its temporary file.
  {
    ShardWriter w(partial, 1, "records");
    w.add_string("exams", "id", "y");
  }
  EXPECT_FALSE(fs::exists(partial + "/" + shard_file_name(1)));
  for (const auto& e : fs::directory_iterator(partial))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  // A directory that is not a store.
  fs::create_directories(tmp / "plain");
  EXPECT_THROW(Manifest::load(tmp / "plain"), Error);
}

TEST(Store, ExistingStoreIsKeptUntilTheNewOneIsComplete) {
  testing::TempDir tmp;
  const std::string dir = tmp / "store";
  const std::string first = write_store(dir, make_fixture());
  EXPECT_THROW(begin_store(dir, false), Error);  // refuses without overwrite
  // overwrite: the old store stays readable while the new one is being written
  const std::string partial = begin_store(dir, true);
  EXPECT_EQ(Manifest::load(dir).content_sha256(), first);
  ShardWriter w(partial, 0, "records");
  add_exam(w, ExamRecord{"only", "", "r", "{}", 0, 0},
           {ImageRecord{testing::make_jpeg(16, 16, 3), "jpeg", 16, 16, "p", 0}});
  Manifest m;
  m.kind = "records";
  m.shards.push_back(w.close());
  commit_store(dir, m);
  RecordStore s(dir);
  EXPECT_EQ(s.exam_count(), 1);
  EXPECT_FALSE(fs::exists(partial));
}

TEST(Store, MismatchedColumnLengthsAreRefused) {
  testing::TempDir tmp;
  ShardWriter w(tmp.path(), 0, "records");
  w.add_string("exams", "id", "a");
  w.add_string("exams", "id", "b");
  w.add_int("exams", "first_image", 0);
  EXPECT_THROW(w.close(), Error);
}

// Shard readers and writers take the HDF5 lock themselves: threads that write shards and read
// others at the same time, with no lock of their own, get exactly what was written.
TEST(Store, ReadersAndWritersNeedNoLockFromTheirCallers) {
  testing::TempDir t;
  constexpr int kShards = 4;
  for (int s = 0; s < kShards; ++s) {
    ShardWriter w(t.path(), s, "test");
    for (int i = 0; i < 50; ++i) {
      w.add_string("exams", "id", "s" + std::to_string(s) + "-" + std::to_string(i));
      w.add_blob("exams", "blob", std::string(100 + i, static_cast<char>('a' + s)));
    }
    w.close();
  }
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      try {
        for (int round = 0; round < 20; ++round) {
          {  // a writer of a shard nobody reads
            ShardWriter w(t.path(), 100 + k * 100 + round, "test");
            for (int i = 0; i < 20; ++i) w.add_int("exams", "v", i * k);
            w.close();
          }
          ShardReader r(t.path() + "/" + shard_file_name((k + round) % kShards));
          const int s = (k + round) % kShards;
          const auto& ids = r.strings("exams", "id");
          if (ids.size() != 50u || ids[7] != "s" + std::to_string(s) + "-7") ++bad;
          if (r.blob("exams", "blob", 9) != std::string(109, static_cast<char>('a' + s))) ++bad;
        }
      } catch (const std::exception&) {
        ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
}

// A shard that is a directory or a looping symbolic link, and an exam index that disagrees
// with its images, are problems verify names — never a crash.
TEST(Store, VerifyNamesShardsThatAreNotFilesAndABrokenIndex) {
  testing::TempDir tmp;
  const std::string dir = tmp / "store";
  const Fixture f = make_fixture();
  write_store(dir, f);
  const Manifest m = Manifest::load(dir);
  ASSERT_GE(m.shards.size(), 2u);
  const std::string s0 = dir + "/" + m.shards[0].file, s1 = dir + "/" + m.shards[1].file;
  fs::remove(s0);
  fs::create_directory(s0);
  fs::remove(s1);
  fs::create_symlink(s1, s1);  // a link to itself
  const VerifyResult r = verify_store(dir, VerifyOptions{});
  ASSERT_FALSE(r.ok());
  std::string all;
  for (const auto& p : r.problems) all += p + "\n";
  EXPECT_NE(all.find(m.shards[0].file + ": is not a regular file"), std::string::npos) << all;
  EXPECT_NE(all.find(m.shards[1].file + ": a symbolic link loop"), std::string::npos) << all;

  // Exam 0 claims an image that images/exam gives to nobody.
  const std::string bad = tmp / "bad";
  const std::string partial = begin_store(bad, false);
  ShardWriter w(partial, 0, "records");
  w.add_string("exams", "id", "E1");
  w.add_int("exams", "first_image", 0);
  w.add_int("exams", "image_count", 1);
  w.add_int("images", "exam", 3);
  Manifest bm;
  bm.kind = "records";
  bm.shards.push_back(w.close());
  commit_store(bad, bm);
  const VerifyResult b = verify_store(bad, VerifyOptions{});
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.problems[0].find("first_image/image_count do not match images/exam"),
            std::string::npos)
      << b.problems[0];
}

// A manifest that counts more rows than a shard's columns hold (found by the shard fuzzer: a
// std::out_of_range, and an index past a column's end in exam_spans) is an error naming both.
TEST(Store, AManifestThatDisagreesWithAShardIsAnErrorNotAnOverrun) {
  testing::TempDir tmp;
  const std::string dir = tmp / "store";
  write_store(dir, make_fixture());
  auto j = nlohmann::json::parse(files::read_all(dir + "/manifest.json"));
  j["shards"][0]["exams"] = 4;  // the shard holds 3
  files::write_file(dir + "/manifest.json", j.dump());
  RecordStore store(dir);
  try {
    store.exam(0);
    FAIL() << "read an exam of a shard with fewer rows than its manifest says";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "shard-00000.h5: column exams/id has 3 rows, the manifest says 4"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(store.exam_spans(), Error);
  j["shards"][0]["exams"] = -1;  // (also from the fuzzer: a negative reserve)
  files::write_file(dir + "/manifest.json", j.dump());
  EXPECT_THROW_MSG(RecordStore{dir}, "shard-00000.h5' has a negative count (exams -1");
}

}  // namespace
}  // namespace endoked::data
