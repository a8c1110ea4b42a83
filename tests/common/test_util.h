#pragma once
// Helpers shared by the test executables.
#include <cstdint>
#include <string>

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
/// SHA-256 over every file's relative path and bytes below `dir` (to show a tree is unchanged).
std::string tree_hash(const std::string& dir);
/// Runs a shell command; returns its exit status and fills `output` with stdout+stderr.
int run_shell(const std::string& command, std::string* output = nullptr);

}  // namespace endoked::testing
