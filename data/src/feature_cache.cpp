#include "endoked/data/feature_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/sha256.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::data {
namespace {

constexpr const char* kKind = "feature_cache";

/// /images of a part.
struct FeatureRow {
  std::string key;
  Blob values;
  std::string values_sha256;
  template <class V>
  void visit(V& v) {
    v("key", key, "sha256 (hex) of the image's encoded bytes as stored");
    v("values", values, "the features: float32 little-endian, `values` per row");
    v("values_sha256", values_sha256, "sha256 (hex) of the row's values bytes");
  }
};

std::string random_token() {
  std::random_device rd;
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  const std::uint64_t r = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                          static_cast<std::uint64_t>(now) ^
                          (static_cast<std::uint64_t>(::getpid()) << 17);
  return fmt::format("{:016x}", r);
}

// The manifest of a cache directory, or none (an empty manifest) when there is none yet.
Manifest load_or_empty(const std::string& dir) {
  if (!fs::exists(dir + "/manifest.json")) {
    Manifest m;
    m.kind = kKind;
    return m;
  }
  return Manifest::load(dir);
}

// flock(2) held for the object's life (blocking: concurrent runs wait their turn).
class DirLock {
 public:
  explicit DirLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT, 0644)) {
    ENDOKED_CHECK(fd_ >= 0, path, ": cannot open the lock file: ", std::strerror(errno));
    ENDOKED_CHECK(::flock(fd_, LOCK_EX) == 0, path, ": cannot lock: ", std::strerror(errno));
  }
  ~DirLock() { ::close(fd_); }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_;
};

}  // namespace

std::string feature_part_name(int shard, const std::string& token, int part) {
  return fmt::format("s{:05d}-{}-{}.h5", shard, token, part);
}

int feature_part_shard(const std::string& file) {
  if (file.size() < 8 || file[0] != 's' || file[6] != '-') return -1;
  for (int i = 1; i < 6; ++i)
    if (file[static_cast<std::size_t>(i)] < '0' || file[static_cast<std::size_t>(i)] > '9')
      return -1;
  return std::stoi(file.substr(1, 5));
}

FeatureCache::FeatureCache(const std::string& root, const std::string& model, std::int64_t values,
                           json about)
    : dir_(root + "/" + model), model_(model), values_(values), about_(std::move(about)) {
  ENDOKED_CHECK(!root.empty() && !model.empty() && values > 0,
                "a feature cache needs a root directory, a model and values > 0");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  ENDOKED_CHECK(!ec && fs::is_directory(dir_), "feature cache '", dir_,
                "': cannot create the directory: ", ec.message());
  const Manifest m = load_or_empty(dir_);
  const std::string where = dir_ + "/manifest.json";
  ENDOKED_CHECK(m.kind == kKind, where, ": a ", m.kind, " store, not a feature cache");
  if (!m.shards.empty()) {
    ENDOKED_CHECK(m.provenance.value("model", "") == model_ &&
                      m.provenance.value("values", std::int64_t{-1}) == values_,
                  where, ": made for model ", m.provenance.value("model", "?"), " with ",
                  m.provenance.value("values", std::int64_t{-1}), " values per image, not ", model_,
                  " with ", values_);
    for (const auto& s : m.shards) listed_.push_back(s.to_json());
  }
}

FeatureCache::~FeatureCache() = default;
FeatureCache::Shard::~Shard() = default;

std::unique_ptr<FeatureCache::Shard> FeatureCache::open(int shard, std::int64_t part_bytes) const {
  std::unique_ptr<Shard> s(new Shard());
  s->cache_ = this;
  s->shard_ = shard;
  s->token_ = random_token();
  s->part_bytes_ = std::max<std::int64_t>(part_bytes, 1);
  for (const auto& j : listed_) {
    const ShardInfo info = ShardInfo::from_json(j);
    if (feature_part_shard(info.file) != shard) continue;
    const std::string path = dir_ + "/" + info.file;
    try {
      std::error_code ec;
      const auto size = fs::file_size(path, ec);
      ENDOKED_CHECK(!ec && static_cast<std::int64_t>(size) == info.bytes, "it has ",
                    ec ? std::int64_t{-1} : static_cast<std::int64_t>(size),
                    " bytes, the manifest says ", info.bytes);
      auto reader = std::make_unique<ShardReader>(path);
      const auto& keys = reader->strings("images", "key");
      const std::size_t part = s->parts_.size();
      for (std::size_t r = 0; r < keys.size(); ++r)
        s->index_.emplace(keys[r], Shard::Row{part, static_cast<std::int64_t>(r)});
      s->parts_.push_back(std::move(reader));
    } catch (const Error& e) {
      log::warn("feature cache: skipping part '{}' (its rows will be recomputed): {}", path,
                e.reason());
    }
  }
  return s;
}

bool FeatureCache::Shard::get(const std::string& key, float* out) {
  const auto it = index_.find(key);
  if (it == index_.end()) return false;
  ShardReader& part = *parts_[it->second.part];
  const std::size_t n = static_cast<std::size_t>(cache_->values_) * sizeof(float);
  try {
    const auto at = part.blob_location("images", "values", it->second.row);
    const std::string bytes =
        at ? ShardReader::read_blob_at(*at) : part.blob("images", "values", it->second.row);
    const std::string& want =
        part.strings("images", "values_sha256")[static_cast<std::size_t>(it->second.row)];
    ENDOKED_CHECK(bytes.size() == n, "the row has ", bytes.size(), " bytes, not ", n);
    ENDOKED_CHECK(sha256_hex(bytes) == want, "its checksum does not match");
    std::memcpy(out, bytes.data(), n);
    ++hits_;
    return true;
  } catch (const Error& e) {
    ++damaged_;
    log::warn("feature cache: '{}' row {} (key {}) is damaged, recomputing it: {}", part.path(),
              it->second.row, key, e.reason());
    return false;
  }
}

void FeatureCache::Shard::put(const std::string& key, const float* values) {
  const std::size_t n = static_cast<std::size_t>(cache_->values_) * sizeof(float);
  if (writer_ && writer_bytes_ + static_cast<std::int64_t>(n) > part_bytes_) {
    closed_.push_back(writer_->close().to_json());
    writer_.reset();
  }
  if (!writer_) {
    writer_ = std::make_unique<ShardWriter>(cache_->dir_, shard_, kKind,
                                            feature_part_name(shard_, token_, written_parts_++));
    TableWriter<FeatureRow>(*writer_, "images").declare();
    writer_bytes_ = 0;
  }
  FeatureRow row;
  row.key = key;
  row.values.bytes.assign(reinterpret_cast<const char*>(values), n);
  row.values_sha256 = sha256_hex(row.values.bytes);
  TableWriter<FeatureRow>(*writer_, "images").add(row);
  writer_bytes_ += static_cast<std::int64_t>(n);
  ++added_;
}

json FeatureCache::Shard::close() {
  if (writer_) closed_.push_back(writer_->close().to_json());
  writer_.reset();
  return closed_;
}

std::int64_t FeatureCache::commit(const std::vector<json>& parts) {
  const DirLock lock(dir_ + "/.lock");
  Manifest m = load_or_empty(dir_);  // again: another run may have added parts meanwhile
  std::set<std::string> have;
  for (const auto& s : m.shards) have.insert(s.file);
  bool added = false;
  for (const auto& list : parts)
    for (const auto& j : list) {
      ShardInfo info = ShardInfo::from_json(j);
      if (have.insert(info.file).second) {
        m.shards.push_back(std::move(info));
        added = true;
      }
    }
  if (added) {
    m.kind = kKind;
    m.provenance = {
        {"model", model_}, {"values", values_}, {"dtype", "float32"}, {"about", about_}};
    m.columns = layout<FeatureRow>("images");
    files::atomic_write(dir_ + "/manifest.json", m.to_json().dump(2));
  }
  listed_ = json::array();
  for (const auto& s : m.shards) listed_.push_back(s.to_json());
  return m.image_count();
}

}  // namespace endoked::data
