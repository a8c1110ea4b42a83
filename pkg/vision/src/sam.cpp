#include "endoked/vision/sam.h"

#include <torch/torch.h>

#include <opencv2/core.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <set>

#include "endoked/core/error.h"
#include "endoked/core/sha256.h"
#include "sam_layers.h"

namespace endoked::vision::sam {
namespace nn = torch::nn;
namespace F = torch::nn::functional;
using at::Tensor;
using torch::indexing::Slice;

namespace {

// ---- reading a configuration from a state dict -------------------------------------------

struct Keys {
  std::map<std::string, at::Tensor> t;
  std::string where;
  bool has(const std::string& k) const { return t.count(k) > 0; }
  const at::Tensor& at(const std::string& k) const {
    const auto it = t.find(k);
    ENDOKED_CHECK(it != t.end(), where, ": no '", k, "': not a SAM / MobileSAM checkpoint");
    return it->second;
  }
  int64_t dim(const std::string& k, int64_t d) const { return at(k).size(d); }
  // The largest N + 1 with "<prefix>N." present.
  int count(const std::string& prefix) const {
    int n = 0;
    while (true) {
      const std::string p = prefix + std::to_string(n) + ".";
      const auto it = t.lower_bound(p);
      if (it == t.end() || it->first.compare(0, p.size(), p) != 0) return n;
      ++n;
    }
  }
};

int isqrt_exact(int64_t v, const std::string& what, const std::string& where) {
  const auto r = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(v))));
  ENDOKED_CHECK(r * r == v, where, ": ", what, " has ", v, " entries, not a square");
  return static_cast<int>(r);
}

}  // namespace

Config config_of(const StateDict& state, const std::string& where, int decoder_heads) {
  Keys k;
  k.where = where;
  for (const auto& [name, t] : state) k.t[name] = t;
  Config c;
  const std::string e = "image_encoder.";
  if (k.has(e + "patch_embed.proj.weight")) {
    c.encoder = "vit";
    auto& v = c.vit;
    const auto& w = k.at(e + "patch_embed.proj.weight");
    v.embed_dim = static_cast<int>(w.size(0));
    v.patch = static_cast<int>(w.size(2));
    v.img_size = static_cast<int>(k.dim(e + "pos_embed", 1)) * v.patch;
    v.depth = k.count(e + "blocks.");
    ENDOKED_CHECK(v.depth > 0, where, ": no image_encoder.blocks");
    const std::string b0 = e + "blocks.0.";
    v.mlp_dim = static_cast<int>(k.dim(b0 + "mlp.lin1.weight", 0));
    v.qkv_bias = k.has(b0 + "attn.qkv.bias");
    v.rel_pos = k.has(b0 + "attn.rel_pos_h");
    ENDOKED_CHECK(v.rel_pos, where,
                  ": a ViT without relative positions (its heads cannot be read from shapes)");
    const int grid = v.img_size / v.patch;
    v.heads = static_cast<int>(v.embed_dim / k.dim(b0 + "attn.rel_pos_h", 1));
    v.global_blocks.clear();
    v.window = 0;
    for (int i = 0; i < v.depth; ++i) {
      const int size =
          static_cast<int>(k.dim(e + "blocks." + std::to_string(i) + ".attn.rel_pos_h", 0) + 1) / 2;
      if (size == grid)
        v.global_blocks.push_back(i);
      else
        v.window = size;
    }
    v.out_chans = static_cast<int>(k.dim(e + "neck.0.weight", 0));
  } else if (k.has(e + "patch_embed.seq.0.c.weight")) {
    c.encoder = "tiny_vit";
    auto& t = c.tiny;
    t.dims.clear();
    t.depths.clear();
    t.heads.clear();
    t.windows.clear();
    for (int i = 0; i < 4; ++i) {
      const std::string l = e + "layers." + std::to_string(i) + ".";
      t.depths.push_back(k.count(l + "blocks."));
      if (i == 0) {
        t.dims.push_back(static_cast<int>(k.dim(l + "blocks.0.conv1.c.weight", 1)));
        t.mbconv_expand = static_cast<int>(k.dim(l + "blocks.0.conv1.c.weight", 0) / t.dims.back());
        t.heads.push_back(0);
        t.windows.push_back(0);
        continue;
      }
      const auto& ab = k.at(l + "blocks.0.attn.attention_biases");
      t.dims.push_back(static_cast<int>(k.dim(l + "blocks.0.attn.norm.weight", 0)));
      t.heads.push_back(static_cast<int>(ab.size(0)));
      t.windows.push_back(isqrt_exact(ab.size(1), l + "blocks.0.attn.attention_biases", where));
      if (i == 1) {
        t.mlp_ratio = static_cast<int>(k.dim(l + "blocks.0.mlp.fc1.weight", 0) / t.dims.back());
        t.local_conv = static_cast<int>(k.dim(l + "blocks.0.local_conv.c.weight", 2));
      }
    }
    t.classes = static_cast<int>(k.dim(e + "head.weight", 0));
    t.out_chans = static_cast<int>(k.dim(e + "neck.0.weight", 0));
    t.img_size = 1024;  // no shape shows it: SAM's input side
  } else {
    ENDOKED_FAIL(where, ": neither a SAM ViT (image_encoder.patch_embed.proj.weight) nor a ",
                 "MobileSAM TinyViT (image_encoder.patch_embed.seq.0.c.weight) image encoder");
  }
  const int side = c.encoder == "vit" ? c.vit.img_size : c.tiny.img_size;
  auto& p = c.prompt;
  p.dim = static_cast<int>(k.dim("prompt_encoder.no_mask_embed.weight", 1));
  p.image_size = side;
  p.grid = side / 16;
  p.mask_chans = static_cast<int>(k.dim("prompt_encoder.mask_downscaling.3.weight", 0));
  auto& d = c.decoder;
  d.dim = static_cast<int>(k.dim("mask_decoder.iou_token.weight", 1));
  d.depth = k.count("mask_decoder.transformer.layers.");
  d.heads = decoder_heads;
  d.mlp_dim = static_cast<int>(k.dim("mask_decoder.transformer.layers.0.mlp.lin1.weight", 0));
  d.mask_tokens = static_cast<int>(k.dim("mask_decoder.mask_tokens.weight", 0));
  d.iou_depth = k.count("mask_decoder.iou_prediction_head.layers.");
  d.iou_hidden = static_cast<int>(k.dim("mask_decoder.iou_prediction_head.layers.0.weight", 0));
  d.downsample = static_cast<int>(
      d.dim / k.dim("mask_decoder.transformer.final_attn_token_to_image.q_proj.weight", 0));
  ENDOKED_CHECK(d.mask_tokens == 4, where, ": the mask decoder has ", d.mask_tokens,
                " mask tokens; SAM's has 4 (one single-mask and 3 multimask outputs)");
  return c;
}

std::string variant_name(const Config& c) {
  if (c.encoder == "tiny_vit") {
    const auto& t = c.tiny;
    return t.dims == std::vector<int>{64, 128, 160, 320} && t.depths == std::vector<int>{2, 2, 6, 2}
               ? "vit_t"
               : "custom";
  }
  const auto& v = c.vit;
  if (v.img_size != 1024 || v.patch != 16) return "custom";
  if (v.embed_dim == 768 && v.depth == 12) return "vit_b";
  if (v.embed_dim == 1024 && v.depth == 24) return "vit_l";
  if (v.embed_dim == 1280 && v.depth == 32) return "vit_h";
  return "custom";
}

class SamImpl : public nn::Module {
 public:
  explicit SamImpl(const Config& c) : config(c) {
    encoder = register_module("image_encoder", detail::make_image_encoder(c));
    prompt = register_module("prompt_encoder", detail::make_prompt_encoder(c.prompt));
    decoder = register_module("mask_decoder", detail::make_mask_decoder(c.decoder));
    eval();
  }
  Config config;
  std::shared_ptr<detail::ImageEncoder> encoder;
  std::shared_ptr<detail::PromptEncoder> prompt;
  std::shared_ptr<detail::MaskDecoder> decoder;
};

Sam::Sam(const Config& config) : impl_(std::make_shared<SamImpl>(config)) {}

Sam Sam::from_state(const StateDict& state, const std::string& where) {
  Sam s(config_of(state, where));
  load_state_dict(*s.impl_, state, true, where);
  s.impl_->eval();
  return s;
}

Sam Sam::load(const std::string& checkpoint) {
  return from_state(read_state_dict(checkpoint), checkpoint);
}

const Config& Sam::config() const {
  return impl_->config;
}
torch::nn::Module& Sam::module() {
  return *impl_;
}

std::string Sam::weights_sha256() const {
  Sha256 h;
  for (const auto& [name, t] : state_dict_from(*impl_)) {
    h.update_field(name);
    const Tensor c = t.contiguous();
    for (const auto size : c.sizes()) h.update_i64(size);
    h.update(c.data_ptr(), static_cast<std::size_t>(c.numel() * c.element_size()));
  }
  return h.hex();
}

Tensor Sam::encode(const Tensor& images) const {
  torch::NoGradGuard ng;
  return impl_->encoder->forward(images);
}

std::pair<Tensor, Tensor> Sam::prompt(const Tensor& points, const Tensor& labels,
                                      const Tensor& boxes, const Tensor& mask) const {
  torch::NoGradGuard ng;
  ENDOKED_CHECK(points.defined() || boxes.defined() || mask.defined(),
                "sam: a prompt needs points, a box or a mask");
  ENDOKED_CHECK(
      !points.defined() || (labels.defined() && labels.sizes() == points.sizes().slice(0, 2)),
      "sam: point labels must be [B, N] beside points [B, N, 2]");
  return impl_->prompt->forward(points, labels, boxes, mask);
}

std::pair<Tensor, Tensor> Sam::decode(const Tensor& embedding, const Tensor& sparse,
                                      const Tensor& dense, bool multimask) const {
  torch::NoGradGuard ng;
  ENDOKED_CHECK(embedding.dim() == 4 && embedding.size(0) == 1,
                "sam: decode takes one image embedding [1, C, g, g]");
  auto [masks, iou] = impl_->decoder->forward(embedding, impl_->prompt->dense_pe(), sparse, dense);
  if (multimask)
    return {masks.index({Slice(), Slice(1, torch::indexing::None)}),
            iou.index({Slice(), Slice(1, torch::indexing::None)})};
  return {masks.index({Slice(), Slice(0, 1)}), iou.index({Slice(), Slice(0, 1)})};
}

std::array<int, 2> resized_shape(int height, int width, int side) {
  const double scale = static_cast<double>(side) / std::max(height, width);
  return {static_cast<int>(height * scale + 0.5), static_cast<int>(width * scale + 0.5)};
}

cv::Mat resize_longest(const cv::Mat& rgb, int side) {
  ENDOKED_CHECK(rgb.type() == CV_8UC3, "sam: images are 8-bit RGB");
  const auto [h, w] = resized_shape(rgb.rows, rgb.cols, side);
  const cv::Mat c = rgb.isContinuous() ? rgb : rgb.clone();
  const Tensor t = torch::from_blob(c.data, {1, c.rows, c.cols, 3}, torch::kUInt8)
                       .permute({0, 3, 1, 2})
                       .to(torch::kFloat);
  const Tensor r = F::interpolate(t, F::InterpolateFuncOptions()
                                         .size(std::vector<int64_t>{h, w})
                                         .mode(torch::kBilinear)
                                         .align_corners(false)
                                         .antialias(true))
                       .round()
                       .clamp(0, 255)
                       .to(torch::kUInt8)
                       .permute({0, 2, 3, 1})
                       .contiguous();
  cv::Mat out(h, w, CV_8UC3);
  std::memcpy(out.data, r.data_ptr(), static_cast<std::size_t>(r.numel()));
  return out;
}

Tensor preprocess(const cv::Mat& resized_rgb, int side) {
  ENDOKED_CHECK(
      resized_rgb.type() == CV_8UC3 && resized_rgb.rows <= side && resized_rgb.cols <= side,
      "sam: preprocess takes an 8-bit RGB image no larger than ", side, "²");
  const cv::Mat c = resized_rgb.isContinuous() ? resized_rgb : resized_rgb.clone();
  const Tensor x = torch::from_blob(c.data, {c.rows, c.cols, 3}, torch::kUInt8)
                       .permute({2, 0, 1})
                       .to(torch::kFloat)
                       .unsqueeze(0);
  const Tensor mean = torch::tensor({123.675f, 116.28f, 103.53f}).view({1, 3, 1, 1});
  const Tensor std = torch::tensor({58.395f, 57.12f, 57.375f}).view({1, 3, 1, 1});
  return F::pad((x - mean) / std, F::PadFuncOptions({0, side - c.cols, 0, side - c.rows}));
}

Tensor resize_coords(const Tensor& xy, std::array<int, 2> original, std::array<int, 2> resized) {
  const Tensor s = torch::tensor(
      {static_cast<float>(resized[1]) / original[1], static_cast<float>(resized[0]) / original[0]});
  return xy.to(torch::kFloat).reshape({-1, 2}).mul(s).reshape(xy.sizes());
}

namespace {

// The bilinear resampling of `in` samples to `out` as F.interpolate does it (align_corners
// false): for each output sample, its two input samples and weights.
struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<double> w0, w1;
};
Taps bilinear_taps(int64_t out, int64_t in) {
  Taps t;
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  for (int64_t o = 0; o < out; ++o) {
    const double src = std::max(scale * (static_cast<double>(o) + 0.5) - 0.5, 0.0);
    const int64_t i0 = std::min(static_cast<int64_t>(src), in - 1);
    const double l1 = std::clamp(src - static_cast<double>(i0), 0.0, 1.0);
    t.i0.push_back(i0);
    t.i1.push_back(i0 < in - 1 ? i0 + 1 : i0);
    t.w0.push_back(1 - l1);
    t.w1.push_back(l1);
  }
  return t;
}

// [out, low]: upscaling `low` samples to `side`, keeping the first `kept`, then resampling those
// to `out` — the predictor's two interpolations along one axis as one linear map.
Tensor resampling_matrix(int64_t out, int64_t kept, int64_t side, int64_t low) {
  const Taps up = bilinear_taps(side, low), down = bilinear_taps(out, kept);
  std::vector<double> first(static_cast<std::size_t>(kept * low), 0.0);
  for (int64_t k = 0; k < kept; ++k) {
    first[static_cast<std::size_t>(k * low + up.i0[static_cast<std::size_t>(k)])] +=
        up.w0[static_cast<std::size_t>(k)];
    first[static_cast<std::size_t>(k * low + up.i1[static_cast<std::size_t>(k)])] +=
        up.w1[static_cast<std::size_t>(k)];
  }
  Tensor m = torch::zeros({out, low}, torch::kFloat);
  float* p = m.data_ptr<float>();
  for (int64_t o = 0; o < out; ++o) {
    const auto a = static_cast<std::size_t>(down.i0[static_cast<std::size_t>(o)] * low),
               b = static_cast<std::size_t>(down.i1[static_cast<std::size_t>(o)] * low);
    const double wa = down.w0[static_cast<std::size_t>(o)],
                 wb = down.w1[static_cast<std::size_t>(o)];
    for (int64_t j = 0; j < low; ++j)
      p[o * low + j] = static_cast<float>(wa * first[a + static_cast<std::size_t>(j)] +
                                          wb * first[b + static_cast<std::size_t>(j)]);
  }
  return m;
}

}  // namespace

Tensor postprocess(const Tensor& low_res, int side, std::array<int, 2> resized,
                   std::array<int, 2> original) {
  // Upscale to side², crop to the resized frame, upscale to the original size: bilinear in each
  // axis, so the three steps are one matrix per axis: rows [H, h] · logits [h, w] · cols [w, W].
  // The same numbers to float rounding, without the side² intermediate, and two products that
  // thread well (an interpolation of one mask runs on one thread).
  const int64_t h = low_res.size(-2), w = low_res.size(-1);
  const Tensor rows = resampling_matrix(original[0], resized[0], side, h);
  const Tensor cols = resampling_matrix(original[1], resized[1], side, w);
  return rows.matmul(low_res.to(torch::kFloat)).matmul(cols.t());
}

Tensor stability_score(const Tensor& logits, double threshold, double offset) {
  const Tensor inter = (logits > threshold + offset).sum({-1, -2}).to(torch::kFloat);
  const Tensor uni = (logits > threshold - offset).sum({-1, -2}).to(torch::kFloat);
  return torch::where(uni > 0, inter / uni.clamp_min(1), torch::zeros_like(uni));
}

}  // namespace endoked::vision::sam
