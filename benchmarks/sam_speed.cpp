// SAM speed on CPU: per variant (MobileSAM's TinyViT, the SAM ViT-B shape; random weights — the
// cost does not depend on them) and intra-op thread count, the image encoder through our
// predictor path (JPEG decoded, resized, normalised, padded, encoded) against the bare LibTorch
// encoder forward on a ready tensor (the limit), and a box prompt to a full-size mask (prompt
// encoder, mask decoder, upscaling to the original size, threshold). Median of REPEATS; peak RSS.
// JSON on stdout.
//   endoked_bench_sam_speed JPEG [REPEATS] [VARIANTS=vit_t,vit_b]
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <malloc.h>
#include <algorithm>

#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "endoked/core/files.h"
#include "endoked/core/parallel.h"
#include "endoked/data/feature_cache.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/loader.h"
#include "endoked/vision/refine.h"
#include "endoked/vision/sam.h"
#include "endoked/vision/weights.h"

using namespace endoked;
using nlohmann::json;
namespace sam = vision::sam;

namespace {

template <class F>
double median_ms(int repeats, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    t.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

double peak_rss_mib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}

// The refine stage's path for 2·N images on 2 threads of 1 intra-op thread each: the sam
// refiner (one box, the embedding computed, then the cached one read back from a feature cache
// with its checksum) → images/s with and without the cache.
json stage_path(const sam::Sam& model, const std::string& jpeg, int repeats) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("endoked-sam-speed-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  vision::save_state_dict(vision::state_dict_from(const_cast<sam::Sam&>(model).module()),
                          dir / "sam.pt");
  vision::RefinerOptions ro;
  ro.sam.checkpoint = dir / "sam.pt";
  const auto refiner = vision::make_refiner("sam", ro);
  const auto spec = refiner->features();
  const cv::Mat rgb = data::decode_rgb(jpeg, 0, 0);
  const std::vector<vision::Box> boxes = {
      {rgb.cols / 5, rgb.rows / 5, rgb.cols * 7 / 10, rgb.rows * 4 / 5, 1.0}};
  const int n = 2 * std::max(repeats, 2);
  std::vector<float> one(static_cast<std::size_t>(spec.values));
  at::set_num_threads(1);
  refiner->compute_features({rgb}, {one.data()});
  data::FeatureCache cache((dir / "cache").string(), spec.model, spec.values, spec.about);
  {
    auto w = cache.open(0);
    for (int i = 0; i < n; ++i) w->put(std::to_string(i), one.data());
    cache.commit({w->close()});
  }
  auto shard = cache.open(0);
  // As the stage: `batch` (2) images encoded in one pass on 2 intra-op threads unless cached,
  // then refined either side by side (2 threads of 1 intra-op thread) or one after the other (2
  // intra-op threads).
  auto run = [&](bool cached, bool side_by_side) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int c = 0; c < n; c += 2) {
      std::vector<cv::Mat> ims = {data::decode_rgb(jpeg, 0, 0), data::decode_rgb(jpeg, 0, 0)};
      std::vector<std::vector<float>> f(2,
                                        std::vector<float>(static_cast<std::size_t>(spec.values)));
      if (cached) {
        for (int k = 0; k < 2; ++k)
          if (!shard->get(std::to_string(c + k), f[static_cast<std::size_t>(k)].data()))
            std::abort();
      } else {
        at::set_num_threads(2);
        refiner->compute_features(ims, {f[0].data(), f[1].data()});
      }
      at::set_num_threads(side_by_side ? 1 : 2);
      parallel_for(2, side_by_side ? 2 : 1, [&](std::int64_t k) {
        at::set_num_threads(side_by_side ? 1 : 2);
        refiner->refine_with(ims[static_cast<std::size_t>(k)], boxes, {},
                             f[static_cast<std::size_t>(k)].data());
      });
    }
    return n / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const double encoded = run(false, false), cached = run(true, false),
               cached_side = run(true, true), encoded_side = run(false, true);
  std::filesystem::remove_all(dir);
  std::cerr << "stage path, 2 threads: " << encoded << " images/s encoding, " << cached
            << " images/s from the cache; decoders side by side: " << encoded_side << " / "
            << cached_side << "\n";
  return {{"images", n},
          {"threads", 2},
          {"batch", 2},
          {"images_per_s_encoding", encoded},
          {"images_per_s_cached", cached},
          {"decoders_side_by_side",
           {{"images_per_s_encoding", encoded_side}, {"images_per_s_cached", cached_side}}},
          {"cache_bytes_per_image", spec.values * 4}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: endoked_bench_sam_speed JPEG [REPEATS] [VARIANTS]\n";
    return 2;
  }
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // TOOLCHAIN.md #2
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const std::string jpeg = files::read_all(argv[1]);
  const int repeats = argc > 2 ? std::stoi(argv[2]) : 3;
  std::string variants = argc > 3 ? argv[3] : "vit_t,vit_b";
  data::cap_library_threads(1);
  const cv::Mat rgb = data::decode_rgb(jpeg, 0, 0);
  json out = {{"image", {{"path", argv[1]}, {"width", rgb.cols}, {"height", rgb.rows}}},
              {"repeats", repeats}};
  std::stringstream ss(variants);
  std::string v;
  while (std::getline(ss, v, ',')) {
    sam::Config c;
    if (v == "vit_b") c.encoder = "vit";  // ViTConfig's defaults are ViT-B's
    torch::manual_seed(0);
    const sam::Sam model(c);
    const std::array<int, 2> original{rgb.rows, rgb.cols};
    json r = {{"variant", sam::variant_name(model.config())}};
    for (const int threads : {1, 2}) {
      at::set_num_threads(threads);
      const at::Tensor ready = sam::preprocess(sam::resize_longest(rgb, 1024), 1024);
      model.encode(ready);  // warm-up
      const double bare = median_ms(repeats, [&] { model.encode(ready); });
      at::Tensor embedding;
      const double path = median_ms(repeats, [&] {
        const cv::Mat im = data::decode_rgb(jpeg, 0, 0);
        embedding = model.encode(sam::preprocess(sam::resize_longest(im, 1024), 1024));
      });
      const auto rs = sam::resized_shape(rgb.rows, rgb.cols, 1024);
      const at::Tensor box =
          sam::resize_coords(
              torch::tensor({{rgb.cols * 0.2f, rgb.rows * 0.2f, rgb.cols * 0.7f, rgb.rows * 0.8f}})
                  .view({1, 2, 2}),
              original, rs)
              .view({1, 4});
      std::int64_t kept = 0;
      const double prompt = median_ms(std::max(repeats, 5), [&] {
        const auto [sparse, dense] = model.prompt({}, {}, box, {});
        const auto [logits, iou] = model.decode(embedding, sparse, dense, true);
        const at::Tensor best = logits.index({0, iou[0].argmax()}).view({1, 1, 256, 256});
        kept = (sam::postprocess(best, 1024, rs, original) > 0).sum().item<std::int64_t>();
      });
      // At 2 threads also two prompts side by side on 1 intra-op thread each (the refine stage's
      // way): wall time per image.
      double side_by_side = 0;
      if (threads == 2) {
        auto one = [&] {
          at::set_num_threads(1);
          const auto [sparse, dense] = model.prompt({}, {}, box, {});
          const auto [logits, iou] = model.decode(embedding, sparse, dense, true);
          const at::Tensor best = logits.index({0, iou[0].argmax()}).view({1, 1, 256, 256});
          (sam::postprocess(best, 1024, rs, original) > 0).sum().item<std::int64_t>();
        };
        side_by_side = median_ms(std::max(repeats, 5),
                                 [&] {
                                   std::thread t(one);
                                   one();
                                   t.join();
                                 }) /
                       2;
        at::set_num_threads(2);
      }
      r["threads_" + std::to_string(threads)] = {{"encoder_ms", path},
                                                 {"bare_encoder_forward_ms", bare},
                                                 {"prompt_to_mask_ms", prompt},
                                                 {"mask_pixels", kept}};
      if (threads == 2) r["threads_2"]["prompt_to_mask_side_by_side_ms_per_image"] = side_by_side;
      std::cerr << v << " threads " << threads << ": encoder " << path << " ms (bare " << bare
                << "), prompt " << prompt << " ms\n";
    }
    // (vit_t only: the ViT-B shape takes ~40 s an image here.) Two images on 2 cores: one pass of
    // a batch of 2 at 2 intra-op threads, against two
    // single-image passes side by side on 2 threads of 1 intra-op thread each (what the refine
    // stage does: a deterministic embedding per image whatever the thread count).
    if (v == "vit_t") {
      const at::Tensor ready = sam::preprocess(sam::resize_longest(rgb, 1024), 1024);
      const at::Tensor two = torch::cat({ready, ready});
      at::set_num_threads(2);
      model.encode(two);
      const double batch2 = median_ms(repeats, [&] { model.encode(two); }) / 2;
      const double side = median_ms(repeats,
                                    [&] {
                                      std::thread t([&] {
                                        at::set_num_threads(1);
                                        model.encode(ready);
                                      });
                                      at::set_num_threads(1);
                                      model.encode(ready);
                                      t.join();
                                    }) /
                          2;
      r["two_images_2_cores"] = {{"batch_of_2_ms_per_image", batch2},
                                 {"side_by_side_ms_per_image", side}};
      std::cerr << v << " 2 images on 2 cores: batch " << batch2 << " ms/image, side by side "
                << side << " ms/image\n";
    }
    if (v == "vit_t") r["stage_path"] = stage_path(model, jpeg, repeats);
    r["peak_rss_mib"] = peak_rss_mib();
    out["variants"][v] = r;
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}
