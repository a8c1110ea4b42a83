#pragma once
// Shared by the fuzz targets.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "endoked/core/files.h"

namespace endoked::fuzz {

/// $TMPDIR/endoked-fuzz-<name>-<pid>/, created once (inputs that must be files live there);
/// scripts/fuzz.sh removes these when a run ends.
inline const std::string& scratch_dir(const char* name) {
  static const std::string dir = [&] {
    const char* tmp = std::getenv("TMPDIR");
    std::string d = std::string(tmp && *tmp ? tmp : "/tmp") + "/endoked-fuzz-" + name + "-" +
                    std::to_string(::getpid());
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Writes a file, creating its folder.
inline void write_file(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  files::write_file(path, bytes);
}

/// Aborts (a crash libFuzzer reports with the input) when a property does not hold.
#define FUZZ_ASSERT(cond)                                                   \
  do {                                                                      \
    if (!(cond)) {                                                          \
      std::fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                         \
    }                                                                       \
  } while (0)

}  // namespace endoked::fuzz
