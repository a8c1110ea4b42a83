#include "endoked/core/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "endoked/core/error.h"

namespace endoked::files {

// Unique per process and per call: threads writing the same path never share a temporary.
std::string temp_name(const std::string& path) {
  static std::atomic<std::uint64_t> counter{0};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  ENDOKED_CHECK(fd >= 0, "cannot open '", path, "' to fsync: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  ENDOKED_CHECK(rc == 0, "fsync of '", path, "' failed: ", std::strerror(err));
}

void atomic_rename(const std::string& from, const std::string& to) {
  ENDOKED_CHECK(std::rename(from.c_str(), to.c_str()) == 0, "cannot rename '", from, "' to '", to,
                "': ", std::strerror(errno));
  std::filesystem::path dir = std::filesystem::path(to).parent_path();
  fsync_path(dir.empty() ? "." : dir.string());
}

bool exchange(const std::string& a, const std::string& b) {
  if (::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) != 0) {
    if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) return false;
    ENDOKED_FAIL("cannot exchange '", a, "' and '", b, "': ", std::strerror(errno));
  }
  std::filesystem::path dir = std::filesystem::path(b).parent_path();
  fsync_path(dir.empty() ? "." : dir.string());
  return true;
}

void replace_directory(const std::string& from, const std::string& to) {
  namespace fs = std::filesystem;
  if (!fs::exists(to)) {
    atomic_rename(from, to);
  } else if (exchange(from, to)) {
    fs::remove_all(from);  // the previous content, now under the old name
  } else {
    const std::string old = to + ".old";
    // Never delete what this call did not park: whoever owns a leftover decides (see callers).
    ENDOKED_CHECK(!fs::exists(old), "cannot replace '", to, "': '", old,
                  "' is in the way (left by an interrupted replace?); move it away");
    atomic_rename(to, old);
    atomic_rename(from, to);
    fs::remove_all(old);
  }
}

void atomic_write(const std::string& path, std::string_view content) {
  const std::string tmp = temp_name(path);
  {
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ENDOKED_CHECK(fd >= 0, "cannot create '", tmp, "': ", std::strerror(errno));
    std::size_t done = 0;
    while (done < content.size()) {
      const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        ENDOKED_FAIL("cannot write '", tmp, "': ", std::strerror(err));
      }
      done += static_cast<std::size_t>(n);
    }
    const bool synced = ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) {
      ::unlink(tmp.c_str());
      ENDOKED_FAIL("fsync of '", tmp, "' failed");
    }
  }
  atomic_rename(tmp, path);
}

void write_file(const std::string& path, std::string_view content) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  ENDOKED_CHECK(f != nullptr, "cannot create '", path, "': ", std::strerror(errno));
  const bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  const bool closed = std::fclose(f) == 0;
  ENDOKED_CHECK(ok && closed, "cannot write '", path, "'");
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  ENDOKED_CHECK(in.good(), "cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  ENDOKED_CHECK(!in.bad(), "read error on '", path, "'");
  return ss.str();
}

void append_line(const std::string& path, std::string_view line) {
  std::FILE* f = std::fopen(path.c_str(), "ab");
  ENDOKED_CHECK(f != nullptr, "cannot open '", path, "' to append: ", std::strerror(errno));
  std::fwrite(line.data(), 1, line.size(), f);
  std::fputc('\n', f);
  const bool ok = std::fflush(f) == 0;
  std::fclose(f);
  ENDOKED_CHECK(ok, "cannot append to '", path, "'");
}

void new_folder(const std::string& dir, const std::string& what) {
  if (std::filesystem::exists(dir))
    ENDOKED_CHECK(std::filesystem::is_directory(dir) && std::filesystem::is_empty(dir), "'", dir,
                  "' exists and is not an empty folder: ", what);
  std::filesystem::create_directories(dir);
}

}  // namespace endoked::files
