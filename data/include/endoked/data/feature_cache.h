#pragma once
// A cache of per-image feature arrays beside the stores: the SAM refiner's image embeddings, so
// that a refine run over images it has seen (self-training rounds) runs only the prompt encoder
// and the mask decoder.
//
// Layout, one directory per model under the cache root (`model`: a hash of the encoder's weights
// and preprocessing, so features of different models never mix):
//   <root>/<model>/manifest.json       kind "feature_cache"; provenance: model, about (variant…),
//                                      values per image, shape, dtype; "shards": the parts
//   <root>/<model>/s00003-<run>-0.h5   a part: the rows that shard 3 of a store added in one run
//     /images/key            sha256 (hex) of the image's encoded bytes as stored (its content)
//     /images/values         float32 little-endian, `values` per row (packed: numpy.frombuffer(
//                            f["images/values"][o:o + n], "<f4").reshape(shape))
//     /images/values_sha256  sha256 of those bytes: a row that does not match is a counted miss
//
// Rows are keyed by content, so an image that changed is a miss, never a wrong hit; the cache only
// grows. A part is written whole (temporary name, fsync, rename) and named in the manifest after
// the run, under the advisory lock <root>/<model>/.lock (concurrent runs each add their parts). A
// killed run leaves parts the manifest does not name: they are never read (remove them by hand).
// A part that is missing or damaged is skipped with a warning (its rows are recomputed); a cache
// entry is never trusted without its checksum.
#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace endoked::data {

class ShardReader;
class ShardWriter;

/// "s00003-" + token + "-" + part + ".h5"
std::string feature_part_name(int shard, const std::string& token, int part);
/// The store shard a part name belongs to, or -1 when it is not a part name.
int feature_part_shard(const std::string& file);

class FeatureCache {
 public:
  /// Opens (creating the directory) <root>/<model>. `values`: floats per image; `about`: what a
  /// reader should know (variant, shape, …), kept in the manifest. An existing manifest of another
  /// kind or another `values` is an error naming it.
  FeatureCache(const std::string& root, const std::string& model, std::int64_t values,
               nlohmann::json about);
  ~FeatureCache();
  const std::string& dir() const { return dir_; }
  std::int64_t values() const { return values_; }

  /// One store shard's rows: lookups among the parts recorded for `shard`, new rows into parts
  /// of this run's own (rolled over at `part_bytes`).
  class Shard {
   public:
    ~Shard();
    /// Copies the row of `key` into `out` (values() floats) and returns true when it is cached and
    /// intact. Thread-safe.
    bool get(const std::string& key, float* out);
    /// Adds a row (not visible to get() until the run's parts are committed). Not thread-safe.
    void put(const std::string& key, const float* values);
    /// Closes this run's parts; returns their infos (ShardInfo JSON) for FeatureCache::commit.
    nlohmann::json close();
    std::int64_t hits() const { return hits_; }
    std::int64_t damaged() const { return damaged_; }
    std::int64_t added() const { return added_; }

   private:
    friend class FeatureCache;
    Shard() = default;
    struct Row {
      std::size_t part;
      std::int64_t row;
    };
    const FeatureCache* cache_ = nullptr;
    int shard_ = 0;
    std::string token_;
    std::int64_t part_bytes_ = 0;
    std::vector<std::unique_ptr<ShardReader>> parts_;
    std::map<std::string, Row> index_;
    std::unique_ptr<ShardWriter> writer_;
    int written_parts_ = 0;
    std::int64_t writer_bytes_ = 0;
    nlohmann::json closed_ = nlohmann::json::array();
    std::atomic<std::int64_t> hits_{0}, damaged_{0};
    std::int64_t added_ = 0;
  };
  std::unique_ptr<Shard> open(int shard, std::int64_t part_bytes = std::int64_t{1} << 30) const;

  /// Rank 0, after every shard: names the parts the shards wrote (the JSON arrays their close()
  /// returned) in the manifest, under the lock; later open() calls see them. Returns the rows the
  /// cache then holds.
  std::int64_t commit(const std::vector<nlohmann::json>& parts);

 private:
  std::string dir_, model_;
  std::int64_t values_;
  nlohmann::json about_;
  nlohmann::json listed_ = nlohmann::json::array();  // the parts in the manifest when opened
};

}  // namespace endoked::data
