#pragma once
// Refining a batch of decoded images the way a stage does it (endoked refine, distill's
// re-refinement): the refiner's image features (SAM's embedding) from a feature cache where it has
// them, the others in one encoder pass on the calling thread's intra-op threads (one image at a
// time when that pass fails, so that the image at fault is named and the others go on) and added
// to the cache; then the refiner on `threads` images at a time, one intra-op thread each. The
// caller's LibTorch intra-op thread count is restored on return.
#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "endoked/data/feature_cache.h"
#include "endoked/vision/refine.h"

namespace endoked::vision {

struct RefineItem {
  cv::Mat image;           // RGB CV_8UC3; empty: skipped (neither done nor fail is called)
  std::vector<Box> boxes;  // none: the empty mask, scored (score_mask)
  cv::Mat cam;             // CV_32FC1 of the image's size, or empty
  std::string key;         // the feature cache's key (sha256 of the encoded bytes); "": no cache
};

struct RefineBatchStats {
  std::int64_t encoded = 0;  // images whose features were computed
  double encode_seconds = 0;
};

/// Refines `items`; `done(i, result)` for each that refined, `fail(i, reason)` for each whose
/// features, refinement or `done` failed (Error). Both are called from worker threads (concurrently
/// for different i). `cache` may be null.
void refine_batch(const Refiner& refiner, std::vector<RefineItem>& items,
                  data::FeatureCache::Shard* cache, int threads, RefineBatchStats& stats,
                  const std::function<void(std::size_t, Refined&&)>& done,
                  const std::function<void(std::size_t, const std::string&)>& fail);

/// One shard's feature figures as a stage reports them: encoded, encode_seconds and, with a cache
/// shard (closed here), cached, damaged, added and the parts to commit ("parts").
nlohmann::json feature_stats(const RefineBatchStats& stats, data::FeatureCache::Shard* cache);
/// Adds a shard's feature_stats to `total` (numbers summed) and its "parts" to `parts`.
void add_feature_stats(nlohmann::json& total, std::vector<nlohmann::json>& parts,
                       const nlohmann::json& shard);

/// The refiner's image-feature cache at `dir` (data/feature_cache.h), or null when `dir` is empty
/// or the refiner has no image features (then a warning says the option `option` is not used).
/// The cache must be a directory of its own: one equal to, inside or around any of `others` (the
/// run's stores) is an error naming `option`.
std::unique_ptr<data::FeatureCache> open_feature_cache(const Refiner& refiner,
                                                       const std::string& dir,
                                                       const std::vector<std::string>& others,
                                                       const std::string& option);

}  // namespace endoked::vision
