// Making a store safely: which output may be replaced, the output lock, the commit that
// exchanges old and new in one step, and the recovery of an interrupted replace.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/data/store.h"

namespace fs = std::filesystem;

namespace endoked::data {
namespace {

// Written into a partial directory when it is made: only such a directory (or a complete store,
// the old one parked there by an exchange) is ever removed by a later run.
constexpr const char* kPartialMarker = ".endoked-partial";
// The resume key of the run that made a partial directory, and its finished shards' records.
constexpr const char* kResumeKey = ".resume-key";
constexpr const char* kFinished = ".finished";

std::string canonical(const std::string& p) {
  return fs::weakly_canonical(fs::absolute(p)).lexically_normal().string();
}

bool inside(const std::string& a, const std::string& b) {  // a == b or a below b
  const std::string x = canonical(a), y = canonical(b);
  return x == y || x.rfind(y.back() == '/' ? y : y + "/", 0) == 0;
}

// What kind of endoked output `dir` holds: the manifest's kind, "corpus" for the raw synthetic
// layout, "" for anything else (not ours).
std::string endoked_kind(const std::string& dir) {
  try {
    if (fs::exists(dir + "/manifest.json")) {
      const auto j = nlohmann::json::parse(files::read_all(dir + "/manifest.json"));
      if (j.value("format", "") == kStoreFormat) return j.value("kind", "");
    }
    if (fs::exists(dir + "/corpus.json")) {
      const auto j = nlohmann::json::parse(files::read_all(dir + "/corpus.json"));
      if (j.value("format", "") == "endoked-raw-corpus") return "corpus";
    }
  } catch (const std::exception&) {
  }
  return "";
}

std::string host_name() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof(buf) - 1);
  return buf;
}

// Output locks held by this process: path of the lock file → its descriptor.
struct Locks {
  std::mutex mutex;
  std::map<std::string, int> held;
};
Locks& locks() {
  static Locks l;
  return l;
}

void take_lock(const std::string& dir) {
  const std::string path = dir + ".lock";
  std::lock_guard<std::mutex> g(locks().mutex);
  if (locks().held.count(path)) return;  // this process already holds it
  if (!fs::path(path).parent_path().empty()) fs::create_directories(fs::path(path).parent_path());
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ENDOKED_CHECK(fd >= 0, "cannot create the output lock '", path, "': ", std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    std::string holder;
    char buf[512];
    const ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0) holder.assign(buf, static_cast<std::size_t>(n));
    ::close(fd);
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    ENDOKED_FAIL("output '", dir, "' is being written by another run (",
                 holder.empty() ? "holder unknown" : holder, "; lock file ", path,
                 "): wait for it to finish or choose another output");
  }
  const std::string me = "pid " + std::to_string(::getpid()) + " on host " + host_name() + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) < 0)
    log::warn("output lock '{}': could not record this process: {}", path, std::strerror(errno));
  locks().held[path] = fd;
}

void release_lock(const std::string& dir) {
  const std::string path = dir + ".lock";
  std::lock_guard<std::mutex> g(locks().mutex);
  auto it = locks().held.find(path);
  if (it == locks().held.end()) return;
  std::error_code ec;
  fs::remove(path, ec);  // unlinked while still locked: a waiting run sees it held or gone
  ::close(it->second);
  locks().held.erase(it);
}

}  // namespace

std::string recover_store(const std::string& dir) {
  const std::string old = dir + ".old";
  if (fs::exists(dir) || !fs::is_directory(old) || endoked_kind(old).empty()) return "";
  files::atomic_rename(old, dir);
  const std::string what = "'" + dir + "' was missing after an interrupted replace; restored "
                           "the previous copy from '" + old + "'";
  log::warn("{}", what);
  return what;
}

std::string finished_shard_record(const std::string& dir, int shard) {
  return partial_dir(dir) + "/" + kFinished + "/" + shard_file_name(shard) + ".json";
}

std::string begin_store(const std::string& dir, bool overwrite, const std::string& kind,
                        const std::vector<std::string>& inputs, const std::string& resume_key) {
  ENDOKED_CHECK(!dir.empty(), "empty store directory name");
  for (const auto& in : inputs) {
    if (in.empty()) continue;
    ENDOKED_CHECK(!inside(dir, in) && !inside(in, dir), "output '", dir, "' and input '", in,
                  "' overlap (one is, or is inside, the other): writing it would destroy what "
                  "the run reads; choose another output");
  }
  take_lock(dir);
  try {
    recover_store(dir);
    // A store parked by a replace that was killed after the new one was in place: ours to clear.
    if (fs::exists(dir) && fs::is_directory(dir + ".old") && !endoked_kind(dir + ".old").empty()) {
      log::warn("'{}.old': the previous store left by an interrupted replace; removing it", dir);
      fs::remove_all(dir + ".old");
    }
    if (fs::exists(dir)) {
      ENDOKED_CHECK(overwrite, "output store '", dir,
                    "' exists; choose another path or set overwrite=true");
      const std::string found = endoked_kind(dir);
      ENDOKED_CHECK(!found.empty(), "output '", dir,
                    "' exists and is not an endoked store (no manifest.json of an endoked "
                    "store): overwrite replaces only stores endoked made; move it away or "
                    "choose another output");
      ENDOKED_CHECK(kind.empty() || found == kind, "output '", dir, "' is a ", found,
                    " store, not a ", kind, " store: overwrite will not replace it");
    }
    const std::string partial = partial_dir(dir);
    if (fs::exists(partial)) {
      ENDOKED_CHECK(fs::exists(partial + "/" + kPartialMarker) || !endoked_kind(partial).empty(),
                    "'", partial, "' exists but was not made by endoked: refusing to remove it");
      const std::string key_file = partial + "/" + kResumeKey;
      if (!resume_key.empty() && fs::exists(partial + "/" + kPartialMarker) &&
          fs::exists(key_file) && files::read_all(key_file) == resume_key) {
        log::info("'{}': continuing an interrupted run of the same config", dir);
        return partial;
      }
      fs::remove_all(partial);
    }
    fs::create_directories(partial + "/" + kFinished);
    files::write_file(partial + "/" + kPartialMarker, "");
    if (!resume_key.empty()) files::atomic_write(partial + "/" + kResumeKey, resume_key);
    return partial;
  } catch (...) {
    release_lock(dir);
    throw;
  }
}

void commit_store(const std::string& dir, const Manifest& manifest) {
  const std::string partial = partial_dir(dir);
  for (const auto& s : manifest.shards)
    ENDOKED_CHECK(fs::exists(partial + "/" + s.file), partial, ": shard ", s.file,
                  " missing at commit");
  commit_directory(dir, "manifest.json", manifest.to_json().dump(2) + "\n");
}

void commit_directory(const std::string& dir, const std::string& file, const std::string& content) {
  const std::string partial = partial_dir(dir);
  ENDOKED_CHECK(fs::is_directory(partial), "nothing to commit: '", partial, "' does not exist");
  fs::remove_all(partial + "/" + kFinished);
  fs::remove(partial + "/" + kResumeKey);
  files::atomic_write(partial + "/" + file, content);
  fs::remove(partial + "/" + kPartialMarker);
  files::replace_directory(partial, dir);  // a crash in its fallback: recover_store()
  release_lock(dir);
}

void abandon_store(const std::string& dir) {
  const std::string partial = partial_dir(dir);
  if (fs::exists(partial + "/" + kPartialMarker)) fs::remove_all(partial);
  release_lock(dir);
}

}  // namespace endoked::data
