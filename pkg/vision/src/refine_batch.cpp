#include "endoked/vision/refine_batch.h"

#include <ATen/Parallel.h>

#include <chrono>
#include <filesystem>

#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "endoked/core/parallel.h"

namespace endoked::vision {

void refine_batch(const Refiner& refiner, std::vector<RefineItem>& items,
                  data::FeatureCache::Shard* cache, int threads, RefineBatchStats& stats,
                  const std::function<void(std::size_t, Refined&&)>& done,
                  const std::function<void(std::size_t, const std::string&)>& fail) {
  // The caller's intra-op threads are set below (and on the workers, the caller among them, to
  // 1); they are the caller's again on return.
  struct RestoreThreads {
    int threads = at::get_num_threads();
    ~RestoreThreads() { at::set_num_threads(threads); }
  } restore;
  const auto n = static_cast<std::int64_t>(items.size());
  const auto values = static_cast<std::size_t>(refiner.features().values);
  std::vector<char> ok(items.size(), 0);
  for (std::size_t i = 0; i < items.size(); ++i) ok[i] = !items[i].image.empty();
  std::vector<float> features(values * items.size());
  auto features_of = [&](std::size_t i) { return features.data() + i * values; };
  if (values > 0) {
    std::vector<char> cached(items.size(), 0);
    if (cache)
      parallel_for(n, threads, [&](std::int64_t i) {
        const auto k = static_cast<std::size_t>(i);
        if (ok[k] && !items[k].boxes.empty() && !items[k].key.empty())
          cached[k] = cache->get(items[k].key, features_of(k));
      });
    std::vector<std::size_t> missing;
    for (std::size_t i = 0; i < items.size(); ++i)
      if (ok[i] && !cached[i] && !items[i].boxes.empty()) missing.push_back(i);
    const auto t0 = std::chrono::steady_clock::now();
    at::set_num_threads(threads);
    auto encode = [&](const std::vector<std::size_t>& some) {
      std::vector<cv::Mat> images;
      std::vector<float*> outs;
      for (const std::size_t i : some) {
        images.push_back(items[i].image);
        outs.push_back(features_of(i));
      }
      refiner.compute_features(images, outs);
      stats.encoded += static_cast<std::int64_t>(some.size());
      if (cache)
        for (const std::size_t i : some)
          if (!items[i].key.empty()) cache->put(items[i].key, features_of(i));
    };
    try {
      if (!missing.empty()) encode(missing);
    } catch (const Error&) {
      for (const std::size_t i : missing) {
        try {
          encode({i});
        } catch (const Error& e) {
          ok[i] = 0;
          fail(i, e.reason());
        }
      }
    }
    stats.encode_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  parallel_for(n, threads, [&](std::int64_t i) {
    const auto k = static_cast<std::size_t>(i);
    if (!ok[k]) return;
    at::set_num_threads(1);
    const RefineItem& item = items[k];
    try {
      if (item.boxes.empty())
        done(k, score_mask(cv::Mat::zeros(item.image.size(), CV_8UC1), {}, item.cam));
      else
        done(k, values > 0 ? refiner.refine_with(item.image, item.boxes, item.cam, features_of(k))
                           : refiner.refine(item.image, item.boxes, item.cam));
    } catch (const Error& e) {
      fail(k, e.reason());
    }
  });
}

nlohmann::json feature_stats(const RefineBatchStats& stats, data::FeatureCache::Shard* cache) {
  nlohmann::json out = {{"encoded", stats.encoded}, {"encode_seconds", stats.encode_seconds}};
  if (cache)
    out.update({{"cached", cache->hits()},
                {"damaged", cache->damaged()},
                {"added", cache->added()},
                {"parts", cache->close()}});
  return out;
}

void add_feature_stats(nlohmann::json& total, std::vector<nlohmann::json>& parts,
                       const nlohmann::json& shard) {
  for (const auto& [k, v] : shard.items()) {
    if (k == "parts")
      parts.push_back(v);
    else if (v.is_number_integer())
      total[k] = total.value(k, std::int64_t{0}) + v.get<std::int64_t>();
    else
      total[k] = total.value(k, 0.0) + v.get<double>();
  }
}

std::unique_ptr<data::FeatureCache> open_feature_cache(const Refiner& refiner,
                                                       const std::string& dir,
                                                       const std::vector<std::string>& others,
                                                       const std::string& option) {
  namespace fs = std::filesystem;
  if (dir.empty()) return nullptr;
  const Refiner::Features spec = refiner.features();
  if (spec.values == 0) {
    log::warn("{} is not used: the {} refiner has no image features", option, refiner.name());
    return nullptr;
  }
  const fs::path c = fs::absolute(dir).lexically_normal();
  const auto inside = [](const fs::path& a, const fs::path& b) {  // a is b or inside it
    const std::string as = a.string() + "/", bs = b.string() + "/";
    return as.compare(0, bs.size(), bs) == 0;
  };
  for (const std::string& other : others) {
    if (other.empty()) continue;
    const fs::path p = fs::absolute(other).lexically_normal();
    ENDOKED_CHECK(!inside(c, p) && !inside(p, c), option, " '", dir,
                  "' must be a directory of its own, not in or around '", other, "'");
  }
  return std::make_unique<data::FeatureCache>(dir, spec.model, spec.values, spec.about);
}

}  // namespace endoked::vision
