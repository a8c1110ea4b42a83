#pragma once
// Helpers shared by the test executables.
#include <cstdint>
#include <string>

/// Expects `stmt` to throw a std::exception whose what() contains `needle`.
#define EXPECT_THROW_MSG(stmt, needle)                                                   \
  do {                                                                                   \
    try {                                                                                \
      stmt;                                                                              \
      ADD_FAILURE() << #stmt " did not throw";                                           \
    } catch (const std::exception& e_) {                                                 \
      EXPECT_NE(std::string(e_.what()).find(needle), std::string::npos) << e_.what();    \
    }                                                                                    \
  } while (0)

namespace endoked::testing {

/// A fresh directory under $TMPDIR, removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_file(const std::string& path, const std::string& bytes);
/// A real JPEG (libjpeg-turbo) of a smooth random pattern; different seeds, different images.
std::string make_jpeg(int width, int height, std::uint64_t seed, int quality = 90);
/// Writes a record store `dir` of `exams` exams with `images_per_exam` real JPEGs each
/// (width × height, exam ids "E0000", …) and a sidecar store `labels_dir` with
/// images/label ∈ {0, 1} (1 when the image's mean red exceeds its mean blue), shards of
/// `exams_per_shard` exams. Single process; returns the number of images.
std::int64_t make_labelled_store(const std::string& dir, const std::string& labels_dir, int exams,
                                 int images_per_exam, int width, int height,
                                 int exams_per_shard = 4);
/// SHA-256 over every file's relative path and bytes below `dir` (to show a tree is unchanged).
std::string tree_hash(const std::string& dir);
/// Runs a shell command; returns its exit status and fills `output` with stdout+stderr.
int run_shell(const std::string& command, std::string* output = nullptr);

}  // namespace endoked::testing
