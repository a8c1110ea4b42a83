// Our SAM port against the official code's outputs (../shared/data/sam-reference, README there):
// MobileSAM with random weights on two Kvasir frames — the image embedding from the predictor's
// resized image, the low-res logits and predicted IoU of a box prompt (multimask) and of a box +
// point prompt (single mask), the full-resolution masks; the same from the original JPEG through
// our own resize; and the small SAM-ViT encoder case. Max abs errors, mask agreement, ms. JSON
// on stdout.
//   endoked_bench_sam_reference REFERENCE_DIR KVASIR_IMAGES_DIR [THREADS]
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <opencv2/core.hpp>

#include <malloc.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <iostream>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/loader.h"
#include "endoked/vision/sam.h"
#include "endoked/vision/weights.h"

namespace fs = std::filesystem;
using namespace endoked;
using nlohmann::json;
namespace sam = vision::sam;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

const at::Tensor& tensor(const vision::PyValue& d, const std::string& key) {
  const vision::PyValue* v = d.get(key);
  ENDOKED_CHECK(v && v->kind == vision::PyValue::Kind::kTensor, "reference case: no tensor '", key,
                "'");
  return v->tensor;
}

double max_err(const at::Tensor& a, const at::Tensor& b) {
  ENDOKED_CHECK(a.sizes() == b.sizes(), "shapes differ: ", a.sizes(), " vs ", b.sizes());
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

double agreement(const at::Tensor& a, const at::Tensor& b) {
  return (a == b).to(torch::kDouble).mean().item<double>();
}

cv::Mat hwc_mat(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  cv::Mat m(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), CV_8UC3);
  std::memcpy(m.data, c.data_ptr(), static_cast<std::size_t>(c.numel()));
  return m;
}

// The box (+ point) prompts of a case through our model from `embedding`.
json prompts(const sam::Sam& model, const vision::PyValue& c, const at::Tensor& embedding,
             std::array<int, 2> original, std::array<int, 2> resized, bool compare_fullres) {
  json out;
  const at::Tensor box =
      sam::resize_coords(tensor(c, "box_xyxy").reshape({1, 2, 2}), original, resized)
          .reshape({1, 4});
  const auto t0 = std::chrono::steady_clock::now();
  auto [sparse, dense] = model.prompt({}, {}, box, {});
  auto [logits, iou] = model.decode(embedding, sparse, dense, true);
  const at::Tensor full =
      sam::postprocess(logits, model.config().prompt.image_size, resized, original);
  out["prompt_ms"] = 1000 * seconds_since(t0);
  out["multimask_lowres_max_abs"] = max_err(logits[0], tensor(c, "multimask_logits_lowres"));
  out["multimask_iou_max_abs"] = max_err(iou[0], tensor(c, "multimask_iou"));
  out["multimask_fullres_agreement"] = agreement(full[0] > 0, tensor(c, "multimask_masks_fullres"));
  const at::Tensor pt = sam::resize_coords(tensor(c, "point_xy").unsqueeze(0), original, resized);
  auto [s1, d1] = model.prompt(pt, tensor(c, "point_label").unsqueeze(0), box, {});
  auto [l1, i1] = model.decode(embedding, s1, d1, false);
  out["single_lowres_max_abs"] = max_err(l1[0], tensor(c, "single_logits_lowres"));
  out["single_iou_max_abs"] = max_err(i1[0], tensor(c, "single_iou"));
  if (!compare_fullres) out.erase("multimask_fullres_agreement");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: endoked_bench_sam_reference REFERENCE_DIR KVASIR_IMAGES_DIR [THREADS]\n";
    return 2;
  }
  mallopt(M_MMAP_THRESHOLD, 1 << 30);  // TOOLCHAIN.md #2
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  const std::string ref = argv[1], images = argv[2];
  data::cap_library_threads(argc > 3 ? std::stoi(argv[3]) : 2);
  json result;
  const auto tl = std::chrono::steady_clock::now();
  const sam::Sam model = sam::Sam::load(ref + "/mobile_sam_random.pt");
  result["model"] = {{"variant", sam::variant_name(model.config())},
                     {"load_seconds", seconds_since(tl)}};
  for (const auto& f : fs::directory_iterator(ref)) {
    const std::string name = f.path().filename().string();
    if (name.rfind("case-", 0) != 0) continue;
    const vision::PyValue c = vision::load_torch_file(f.path().string());
    const std::string id = c.get("image_id")->text;
    const at::Tensor os = tensor(c, "original_size");
    const std::array<int, 2> original{static_cast<int>(os[0].item<int64_t>()),
                                      static_cast<int>(os[1].item<int64_t>())};
    const cv::Mat resized_ref = hwc_mat(tensor(c, "resized_uint8_hwc"));
    const std::array<int, 2> resized{resized_ref.rows, resized_ref.cols};
    json r;
    r["original"] = original;
    r["resized"] = resized;
    r["resized_shape_matches"] = sam::resized_shape(original[0], original[1], 1024) == resized;
    // (1) from the official resized image: the network alone.
    auto t0 = std::chrono::steady_clock::now();
    const at::Tensor emb = model.encode(sam::preprocess(resized_ref, 1024));
    r["encoder_ms"] = 1000 * seconds_since(t0);
    r["embedding_max_abs"] = max_err(emb, tensor(c, "image_embedding"));
    r["from_resized"] = prompts(model, c, emb, original, resized, true);
    r["decoder_on_reference_embedding"] =
        prompts(model, c, tensor(c, "image_embedding"), original, resized, true);
    // (2) from the JPEG through our own decode and resize.
    const std::string jpeg = files::read_all(images + "/" + id + ".jpg");
    const cv::Mat rgb = data::decode_rgb(jpeg, 0, 0);
    const cv::Mat ours = sam::resize_longest(rgb, 1024);
    json j;
    j["resize_max_abs"] =
        max_err(torch::from_blob(ours.data, {ours.rows, ours.cols, 3}, torch::kUInt8),
                tensor(c, "resized_uint8_hwc"));
    j["resize_mean_abs"] =
        (torch::from_blob(ours.data, {ours.rows, ours.cols, 3}, torch::kUInt8).to(torch::kFloat) -
         tensor(c, "resized_uint8_hwc").to(torch::kFloat))
            .abs()
            .mean()
            .item<double>();
    const at::Tensor emb2 = model.encode(sam::preprocess(ours, 1024));
    j["embedding_max_abs"] = max_err(emb2, tensor(c, "image_embedding"));
    j["prompts"] = prompts(model, c, emb2, original, resized, true);
    r["from_jpeg"] = j;
    result["cases"][id] = r;
  }
  // The SAM ViT encoder path (windowed attention with relative positions, a global block).
  {
    const vision::PyValue c = vision::load_torch_file(ref + "/vit_tiny_case.pt");
    vision::StateDict st = vision::read_state_dict(ref + "/vit_tiny_random.pt");
    for (auto& kv : st) kv.first = "image_encoder." + kv.first;
    // The prompt encoder and decoder of a model of this size, to make a whole SAM state dict.
    sam::Config pc;
    const auto& cfg = *c.get("config");
    pc.encoder = "vit";
    pc.vit.img_size = static_cast<int>(cfg.get("img_size")->integer);
    pc.vit.embed_dim = static_cast<int>(cfg.get("embed_dim")->integer);
    pc.vit.depth = static_cast<int>(cfg.get("depth")->integer);
    pc.vit.heads = static_cast<int>(cfg.get("num_heads")->integer);
    pc.vit.window = static_cast<int>(cfg.get("window_size")->integer);
    pc.vit.global_blocks = {1};
    pc.vit.mlp_dim = pc.vit.embed_dim * 4;
    pc.prompt.image_size = pc.vit.img_size;
    pc.prompt.grid = pc.vit.img_size / 16;
    sam::Sam helper(pc);
    for (const auto& kv : vision::state_dict_from(helper.module()))
      if (kv.first.rfind("image_encoder.", 0) != 0) st.push_back(kv);
    const sam::Sam vit = sam::Sam::from_state(st, "vit_tiny_random.pt");
    const auto& v = vit.config().vit;
    json r;
    r["config_read"] = {
        {"depth", v.depth},    {"embed_dim", v.embed_dim},         {"heads", v.heads},
        {"window", v.window},  {"global_blocks", v.global_blocks}, {"img_size", v.img_size},
        {"mlp_dim", v.mlp_dim}};
    r["config_matches"] =
        v.depth == cfg.get("depth")->integer && v.embed_dim == cfg.get("embed_dim")->integer &&
        v.heads == cfg.get("num_heads")->integer && v.window == cfg.get("window_size")->integer &&
        v.global_blocks == std::vector<int>{1};
    r["embedding_max_abs"] = max_err(vit.encode(tensor(c, "input")), tensor(c, "embedding"));
    result["vit_tiny"] = r;
  }
  std::cout << result.dump(2) << "\n";
  return 0;
}
