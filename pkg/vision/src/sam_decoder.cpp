// The prompt encoder and the two-way-transformer mask decoder with its IoU head.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "endoked/core/error.h"
#include "sam_layers.h"

namespace endoked::vision::sam::detail {
namespace F = torch::nn::functional;
using torch::indexing::Slice;

namespace {

// ---- prompt encoder -----------------------------------------------------------------------

struct PromptEncoderImpl : PromptEncoder {
  explicit PromptEncoderImpl(const PromptConfig& c) : c(c) {
    auto pe = holder(*this, "pe_layer");
    gaussian =
        pe->register_buffer("positional_encoding_gaussian_matrix", torch::randn({2, c.dim / 2}));
    auto pts = holder(*this, "point_embeddings");
    for (int i = 0; i < 4; ++i)
      point.push_back(pts->register_module(std::to_string(i), nn::Embedding(1, c.dim)));
    not_a_point = register_module("not_a_point_embed", nn::Embedding(1, c.dim));
    auto md = holder(*this, "mask_downscaling");
    const int64_t m = c.mask_chans;
    m0 = md->register_module("0", nn::Conv2d(nn::Conv2dOptions(1, m / 4, 2).stride(2)));
    m1 = md->register_module("1", LayerNorm2d(m / 4));
    m3 = md->register_module("3", nn::Conv2d(nn::Conv2dOptions(m / 4, m, 2).stride(2)));
    m4 = md->register_module("4", LayerNorm2d(m));
    m6 = md->register_module("6", nn::Conv2d(m, c.dim, 1));
    no_mask = register_module("no_mask_embed", nn::Embedding(1, c.dim));
  }
  // Coordinates in [0, 1] [..., 2] → [..., dim].
  Tensor encode(const Tensor& unit) const {
    const Tensor p = (2 * unit - 1).matmul(gaussian) * (2 * M_PI);
    return torch::cat({p.sin(), p.cos()}, -1);
  }
  Tensor encode_pixels(const Tensor& xy) const {  // pixel coordinates of the input frame
    const Tensor s = torch::tensor({1.0f / c.image_size, 1.0f / c.image_size});
    return encode(xy.to(torch::kFloat) * s);
  }
  Tensor dense_pe() const override {
    const Tensor t = (torch::arange(c.grid, torch::kFloat) + 0.5) / c.grid;
    const auto yx = torch::meshgrid({t, t}, "ij");
    return encode(torch::stack({yx[1], yx[0]}, -1)).permute({2, 0, 1}).unsqueeze(0);
  }
  std::pair<Tensor, Tensor> forward(Tensor points, Tensor labels, const Tensor& boxes,
                                    const Tensor& mask) override {
    const int64_t B = points.defined()  ? points.size(0)
                      : boxes.defined() ? boxes.size(0)
                                        : mask.size(0);
    std::vector<Tensor> sparse{torch::empty({B, 0, c.dim})};
    if (points.defined()) {
      points = points.to(torch::kFloat) + 0.5;
      labels = labels.to(torch::kLong);
      if (!boxes.defined()) {  // a padding point when there is no box
        points = torch::cat({points, torch::zeros({B, 1, 2})}, 1);
        labels = torch::cat({labels, -torch::ones({B, 1}, torch::kLong)}, 1);
      }
      Tensor e = encode_pixels(points);
      const Tensor l = labels.unsqueeze(-1);
      e = torch::where(l == -1, not_a_point->weight.view({1, 1, -1}).expand_as(e), e);
      e = e + (l == 0).to(torch::kFloat) * point[0]->weight.view({1, 1, -1}) +
          (l == 1).to(torch::kFloat) * point[1]->weight.view({1, 1, -1});
      sparse.push_back(e);
    }
    if (boxes.defined()) {
      Tensor e = encode_pixels((boxes.to(torch::kFloat) + 0.5).reshape({-1, 2, 2}));
      e = e + torch::stack({point[2]->weight[0], point[3]->weight[0]}).unsqueeze(0);
      sparse.push_back(e);
    }
    Tensor dense;
    if (mask.defined())
      dense = m6(torch::gelu(m4(m3(torch::gelu(m1(m0(mask)))))));
    else
      dense = no_mask->weight.view({1, -1, 1, 1}).expand({B, -1, c.grid, c.grid});
    return {torch::cat(sparse, 1), dense};
  }
  PromptConfig c;
  Tensor gaussian;
  std::vector<nn::Embedding> point;
  nn::Embedding not_a_point{nullptr}, no_mask{nullptr};
  nn::Conv2d m0{nullptr}, m3{nullptr}, m6{nullptr};
  LayerNorm2d m1{nullptr}, m4{nullptr};
};

// ---- mask decoder -------------------------------------------------------------------------

struct DecAttentionImpl : nn::Module {
  DecAttentionImpl(int64_t dim, int64_t heads, int64_t downsample) : heads(heads) {
    const int64_t inner = dim / downsample;
    q_proj = register_module("q_proj", nn::Linear(dim, inner));
    k_proj = register_module("k_proj", nn::Linear(dim, inner));
    v_proj = register_module("v_proj", nn::Linear(dim, inner));
    out_proj = register_module("out_proj", nn::Linear(inner, dim));
  }
  Tensor split(const Tensor& x) const {
    return x.reshape({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
  }
  Tensor forward(const Tensor& q, const Tensor& k, const Tensor& v) {
    const Tensor qh = split(q_proj(q)), kh = split(k_proj(k)), vh = split(v_proj(v));
    const Tensor attn =
        (qh.matmul(kh.permute({0, 1, 3, 2})) / std::sqrt(static_cast<double>(qh.size(3))))
            .softmax(-1);
    const Tensor o = attn.matmul(vh).transpose(1, 2);
    return out_proj(o.reshape({o.size(0), o.size(1), -1}));
  }
  int64_t heads;
  nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(DecAttention);

struct TwoWayBlockImpl : nn::Module {
  TwoWayBlockImpl(const DecoderConfig& c, bool skip_first_pe) : skip_pe(skip_first_pe) {
    self_attn = register_module("self_attn", DecAttention(c.dim, c.heads, 1));
    norm1 = register_module("norm1", layer_norm(c.dim, 1e-5));
    t2i = register_module("cross_attn_token_to_image", DecAttention(c.dim, c.heads, c.downsample));
    norm2 = register_module("norm2", layer_norm(c.dim, 1e-5));
    mlp = register_module("mlp", MlpBlock(c.dim, c.mlp_dim, true));
    norm3 = register_module("norm3", layer_norm(c.dim, 1e-5));
    norm4 = register_module("norm4", layer_norm(c.dim, 1e-5));
    i2t = register_module("cross_attn_image_to_token", DecAttention(c.dim, c.heads, c.downsample));
  }
  std::pair<Tensor, Tensor> forward(Tensor queries, Tensor keys, const Tensor& qpe,
                                    const Tensor& kpe) {
    if (skip_pe) {
      queries = self_attn(queries, queries, queries);
    } else {
      const Tensor q = queries + qpe;
      queries = queries + self_attn(q, q, queries);
    }
    queries = norm1(queries);
    queries = norm2(queries + t2i(queries + qpe, keys + kpe, keys));
    queries = norm3(queries + mlp(queries));
    keys = norm4(keys + i2t(keys + kpe, queries + qpe, queries));
    return {queries, keys};
  }
  bool skip_pe;
  DecAttention self_attn{nullptr}, t2i{nullptr}, i2t{nullptr};
  nn::LayerNorm norm1{nullptr}, norm2{nullptr}, norm3{nullptr}, norm4{nullptr};
  MlpBlock mlp{nullptr};
};
TORCH_MODULE(TwoWayBlock);

struct MlpImpl : nn::Module {  // Linear layers, ReLU between
  MlpImpl(int64_t in, int64_t hidden, int64_t out, int depth) {
    auto ls = holder(*this, "layers");
    for (int i = 0; i < depth; ++i)
      layers.push_back(ls->register_module(
          std::to_string(i), nn::Linear(i == 0 ? in : hidden, i + 1 == depth ? out : hidden)));
  }
  Tensor forward(Tensor x) {
    for (std::size_t i = 0; i < layers.size(); ++i) {
      x = layers[i](x);
      if (i + 1 < layers.size()) x = torch::relu(x);
    }
    return x;
  }
  std::vector<nn::Linear> layers;
};
TORCH_MODULE(Mlp);

struct MaskDecoderImpl : MaskDecoder {
  explicit MaskDecoderImpl(const DecoderConfig& c) : c(c) {
    auto tr = holder(*this, "transformer");
    auto ls = holder(*tr, "layers");
    for (int i = 0; i < c.depth; ++i)
      blocks.push_back(ls->register_module(std::to_string(i), TwoWayBlock(c, i == 0)));
    final_attn = tr->register_module("final_attn_token_to_image",
                                     DecAttention(c.dim, c.heads, c.downsample));
    norm_final = tr->register_module("norm_final_attn", layer_norm(c.dim, 1e-5));
    iou_token = register_module("iou_token", nn::Embedding(1, c.dim));
    mask_tokens = register_module("mask_tokens", nn::Embedding(c.mask_tokens, c.dim));
    auto up = holder(*this, "output_upscaling");
    up0 = up->register_module(
        "0", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(c.dim, c.dim / 4, 2).stride(2)));
    up1 = up->register_module("1", LayerNorm2d(c.dim / 4));
    up3 = up->register_module(
        "3", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(c.dim / 4, c.dim / 8, 2).stride(2)));
    auto hyp = holder(*this, "output_hypernetworks_mlps");
    for (int i = 0; i < c.mask_tokens; ++i)
      hyper.push_back(hyp->register_module(std::to_string(i), Mlp(c.dim, c.dim, c.dim / 8, 3)));
    iou_head = register_module("iou_prediction_head",
                               Mlp(c.dim, c.iou_hidden, c.mask_tokens, c.iou_depth));
  }
  std::pair<Tensor, Tensor> forward(const Tensor& embedding, const Tensor& pe, const Tensor& sparse,
                                    const Tensor& dense) override {
    const int64_t B = sparse.size(0);
    const Tensor out_tokens =
        torch::cat({iou_token->weight, mask_tokens->weight}, 0).unsqueeze(0).expand({B, -1, -1});
    const Tensor tokens = torch::cat({out_tokens, sparse}, 1);
    const Tensor src = embedding.expand({B, -1, -1, -1}) + dense;
    const int64_t C = src.size(1), h = src.size(2), w = src.size(3);
    // The two-way transformer.
    Tensor keys = src.flatten(2).permute({0, 2, 1});
    const Tensor kpe = pe.flatten(2).permute({0, 2, 1}).expand({B, -1, -1});
    Tensor queries = tokens;
    for (auto& b : blocks) std::tie(queries, keys) = b(queries, keys, tokens, kpe);
    queries = norm_final(queries + final_attn(queries + tokens, keys + kpe, keys));
    const Tensor iou_out = queries.select(1, 0);
    std::vector<Tensor> hs;
    for (int64_t i = 0; i < c.mask_tokens; ++i)
      hs.push_back(hyper[static_cast<std::size_t>(i)](queries.select(1, 1 + i)));
    const Tensor hyper_in = torch::stack(hs, 1);  // [B, T, C/8]
    return {upscaled_masks(keys.reshape({B * h * w, C}), hyper_in, B, h, w), iou_head(iou_out)};
  }
  // output_upscaling (2×2 stride-2 transposed conv, LayerNorm2d, GELU, 2×2 stride-2 transposed
  // conv, GELU) and the hypernetworks' product, as matrix products over pixels: the transposed
  // convolutions' taps do not overlap, so each is one GEMM from a pixel's channels to its 4 taps'
  // (weights reordered tap-major), the rows stay pixels × taps, and the taps are interleaved into
  // the image once, on the small [B, T, 4h, 4w] result. `pixels`: [B·h·w, C], the image tokens.
  Tensor upscaled_masks(const Tensor& pixels, const Tensor& hyper_in, int64_t B, int64_t h,
                        int64_t w) {
    const auto tap_major = [](const Tensor& weight) {  // [in, out, 2, 2] → [in, 4·out]
      return weight.permute({0, 2, 3, 1}).reshape({weight.size(0), -1});
    };
    const int64_t c4 = up0->weight.size(1), c8 = up3->weight.size(1), T = hyper_in.size(1);
    Tensor x = torch::addmm(up0->bias.repeat({4}), pixels, tap_major(up0->weight));
    x = torch::gelu(torch::layer_norm(x.view({-1, c4}), {c4}, up1->weight, up1->bias, 1e-6));
    x = torch::gelu(torch::addmm(up3->bias.repeat({4}), x, tap_major(up3->weight)));
    // Rows (b, i, j, di, dj, di2, dj2) → the mask pixel (4i + 2di + di2, 4j + 2dj + dj2).
    const Tensor m = x.view({B, -1, c8}).matmul(hyper_in.transpose(1, 2));  // [B, 16hw, T]
    return m.view({B, h, w, 2, 2, 2, 2, T})
        .permute({0, 7, 1, 3, 5, 2, 4, 6})
        .reshape({B, T, 4 * h, 4 * w});
  }
  DecoderConfig c;
  std::vector<TwoWayBlock> blocks;
  DecAttention final_attn{nullptr};
  nn::LayerNorm norm_final{nullptr};
  nn::Embedding iou_token{nullptr}, mask_tokens{nullptr};
  nn::ConvTranspose2d up0{nullptr}, up3{nullptr};
  LayerNorm2d up1{nullptr};
  std::vector<Mlp> hyper;
  Mlp iou_head{nullptr};
};

}  // namespace

std::shared_ptr<PromptEncoder> make_prompt_encoder(const PromptConfig& c) {
  return std::make_shared<PromptEncoderImpl>(c);
}
std::shared_ptr<MaskDecoder> make_mask_decoder(const DecoderConfig& c) {
  return std::make_shared<MaskDecoderImpl>(c);
}

}  // namespace endoked::vision::sam::detail
