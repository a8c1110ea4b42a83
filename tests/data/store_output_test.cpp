// What an output may replace, the output lock, and recovery of an interrupted replace.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>

#include "../common/test_util.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/data/store.h"

namespace endoked::data {
namespace {

namespace fs = std::filesystem;

// A one-shard store of `kind` with one exam; `tag` makes its content differ.
void make_store(const std::string& dir, const std::string& kind, const std::string& tag,
                bool overwrite = false) {
  const std::string partial = begin_store(dir, overwrite, kind);
  ShardWriter w(partial, 0, kind);
  w.add_string("exams", "id", tag);
  Manifest m;
  m.kind = kind;
  m.shards.push_back(w.close());
  commit_store(dir, m);
}

std::string message(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(StoreOutput, OverwriteReplacesOnlyAnEndokedStoreOfItsKind) {
  testing::TempDir t;
  const std::string folder = t / "mine";
  testing::write_file(folder + "/precious.txt", "keep me");
  const std::string m1 = message([&] { begin_store(folder, true, "records"); });
  EXPECT_NE(m1.find("is not an endoked store"), std::string::npos) << m1;
  EXPECT_EQ(files::read_all(folder + "/precious.txt"), "keep me");
  EXPECT_FALSE(fs::exists(partial_dir(folder)));

  make_store(t / "labels", "labels", "a");
  const std::string m2 = message([&] { begin_store(t / "labels", true, "records"); });
  EXPECT_NE(m2.find("is a labels store, not a records store"), std::string::npos) << m2;

  make_store(t / "labels", "labels", "b", true);  // the same kind is replaced
  ShardReader r(t / "labels/shard-00000.h5");
  EXPECT_EQ(r.strings("exams", "id")[0], "b");
  for (const char* leftover : {"labels.partial", "labels.old", "labels.lock"})
    EXPECT_FALSE(fs::exists(t / leftover)) << leftover;
}

TEST(StoreOutput, AnOutputOverlappingAnInputIsRefusedBeforeAnyWork) {
  testing::TempDir t;
  testing::write_file(t / "images/E1/1.jpg", "x");
  for (const auto& pair : std::vector<std::pair<std::string, std::string>>{
           {t / "images", t / "images"},
           {t / "images/store", t / "images"},
           {t / "data", t / "data/reports.csv"},
           {t / "a/../images", t / "images"}}) {
    const std::string& out = pair.first;  // named, not bound: C++17 lambdas cannot capture bindings
    const std::string& in = pair.second;
    const std::string m = message([&] { begin_store(out, true, "records", {in}); });
    EXPECT_NE(m.find("overlap"), std::string::npos) << out << " vs " << in << ": " << m;
    EXPECT_FALSE(fs::exists(partial_dir(out))) << out;
    EXPECT_FALSE(fs::exists(out + ".lock")) << out;
  }
  EXPECT_TRUE(fs::exists(t / "images/E1/1.jpg"));
}

TEST(StoreOutput, ASecondWriterIsToldWhoHoldsTheOutput) {
  testing::TempDir t;
  const std::string dir = t / "out";
  const int fd = ::open((dir + ".lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);
  const std::string holder = "pid 4242 on host elsewhere\n";
  ASSERT_EQ(::write(fd, holder.data(), holder.size()), static_cast<ssize_t>(holder.size()));
  const std::string m = message([&] { begin_store(dir, false, "records"); });
  EXPECT_NE(m.find("being written by another run (pid 4242 on host elsewhere"), std::string::npos)
      << m;
  EXPECT_FALSE(fs::exists(partial_dir(dir)));
  ::close(fd);  // the holder ends: now it can be written
  make_store(dir, "records", "ok");
  EXPECT_TRUE(fs::exists(dir + "/manifest.json"));
}

TEST(StoreOutput, AnInterruptedReplaceIsFoundAndRestored) {
  testing::TempDir t;
  const std::string dir = t / "s";
  make_store(dir, "records", "old");
  // What a kill between the two renames of a replace leaves where directories cannot be
  // exchanged: no store at the path, the previous one parked beside it.
  fs::rename(dir, dir + ".old");
  const std::string m = message([&] { Manifest::load(dir); });
  EXPECT_NE(m.find("s.old' (a replace was interrupted)"), std::string::npos) << m;
  EXPECT_NE(recover_store(dir).find("restored the previous copy"), std::string::npos);
  EXPECT_EQ(Manifest::load(dir).kind, "records");
  EXPECT_EQ(recover_store(dir), "");  // nothing left to do

  fs::rename(dir, dir + ".old");  // and the next run that writes it restores it first
  EXPECT_THROW(begin_store(dir, false, "records"), Error);  // the restored store exists
  EXPECT_TRUE(fs::exists(dir + "/manifest.json"));
  ShardReader r(dir + "/shard-00000.h5");
  EXPECT_EQ(r.strings("exams", "id")[0], "old");

  // Killed after the new store was in place: the parked previous store is cleared by the next
  // run; a folder of that name that endoked did not make is left alone.
  fs::create_directories(dir + ".old");
  fs::copy(dir + "/manifest.json", dir + ".old/manifest.json");
  const std::string p1 = begin_store(dir, true, "records");
  EXPECT_FALSE(fs::exists(dir + ".old"));
  abandon_store(dir);
  testing::write_file(dir + ".old/notes.txt", "not endoked's");
  const std::string p2 = begin_store(dir, true, "records");
  EXPECT_TRUE(fs::exists(dir + ".old/notes.txt"));
  abandon_store(dir);
}

TEST(StoreOutput, AbandonKeepsWhatWasThere) {
  testing::TempDir t;
  const std::string dir = t / "s";
  make_store(dir, "records", "good");
  const std::string before = testing::tree_hash(dir);
  const std::string partial = begin_store(dir, true, "records");
  testing::write_file(partial + "/junk", "half a run");
  abandon_store(dir);
  EXPECT_EQ(testing::tree_hash(dir), before);
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_FALSE(fs::exists(dir + ".lock"));
}

}  // namespace
}  // namespace endoked::data
