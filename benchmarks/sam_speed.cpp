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

#include "endoked/core/files.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/loader.h"
#include "endoked/vision/sam.h"

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
      r["threads_" + std::to_string(threads)] = {{"encoder_ms", path},
                                                 {"bare_encoder_forward_ms", bare},
                                                 {"prompt_to_mask_ms", prompt},
                                                 {"mask_pixels", kept}};
      std::cerr << v << " threads " << threads << ": encoder " << path << " ms (bare " << bare
                << "), prompt " << prompt << " ms\n";
    }
    r["peak_rss_mib"] = peak_rss_mib();
    out["variants"][v] = r;
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}
