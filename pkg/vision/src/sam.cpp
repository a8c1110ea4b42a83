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

namespace endoked::vision::sam {
namespace nn = torch::nn;
namespace F = torch::nn::functional;
using at::Tensor;
using torch::indexing::Slice;

namespace {

// A child that holds numbered children ("layers.0", "seq.2"), as Python's ModuleList and
// Sequential name them.
std::shared_ptr<nn::Module> holder(nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<nn::Module>());
}

// LayerNorm over the channels of an NCHW map (eps 1e-6).
struct LayerNorm2dImpl : nn::Module {
  explicit LayerNorm2dImpl(int64_t c) {
    weight = register_parameter("weight", torch::ones({c}));
    bias = register_parameter("bias", torch::zeros({c}));
  }
  Tensor forward(const Tensor& x) {
    const Tensor d = x - x.mean(1, true);
    const Tensor y = d / torch::sqrt(d.pow(2).mean(1, true) + 1e-6);
    return weight.view({1, -1, 1, 1}) * y + bias.view({1, -1, 1, 1});
  }
  Tensor weight, bias;
};
TORCH_MODULE(LayerNorm2d);

nn::LayerNorm layer_norm(int64_t c, double eps) {
  return nn::LayerNorm(nn::LayerNormOptions({c}).eps(eps));
}

// 1×1 conv → LayerNorm2d → 3×3 conv → LayerNorm2d, no biases: the encoders' neck.
struct NeckImpl : nn::Module {
  NeckImpl(int64_t in, int64_t out) {
    c0 = register_module("0", nn::Conv2d(nn::Conv2dOptions(in, out, 1).bias(false)));
    n1 = register_module("1", LayerNorm2d(out));
    c2 = register_module("2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    n3 = register_module("3", LayerNorm2d(out));
  }
  Tensor forward(const Tensor& x) { return n3(c2(n1(c0(x)))); }
  nn::Conv2d c0{nullptr}, c2{nullptr};
  LayerNorm2d n1{nullptr}, n3{nullptr};
};
TORCH_MODULE(Neck);

// ---- SAM ViT ------------------------------------------------------------------------------

// Relative positions for q_size queries and k_size keys: [q, k, head_dim], the table
// interpolated (linearly) when it was made for another size.
Tensor rel_pos_table(int64_t q, int64_t k, const Tensor& table) {
  const int64_t dist = 2 * std::max(q, k) - 1;
  Tensor t = table;
  if (t.size(0) != dist)
    t = F::interpolate(
            t.reshape({1, t.size(0), -1}).permute({0, 2, 1}),
            F::InterpolateFuncOptions().size(std::vector<int64_t>{dist}).mode(torch::kLinear))
            .reshape({-1, dist})
            .permute({1, 0});
  const double qs = std::max(static_cast<double>(k) / q, 1.0);
  const double ks = std::max(static_cast<double>(q) / k, 1.0);
  const Tensor qc = torch::arange(q, torch::kDouble).unsqueeze(1) * qs;
  const Tensor kc = torch::arange(k, torch::kDouble).unsqueeze(0) * ks;
  const Tensor idx = (qc - kc + static_cast<double>(k - 1) * ks).to(torch::kLong);
  return t.index({idx});
}

struct ViTAttentionImpl : nn::Module {
  ViTAttentionImpl(int64_t dim, int64_t heads, bool qkv_bias, bool rel_pos, int64_t size)
      : heads(heads), rel(rel_pos) {
    const int64_t hd = dim / heads;
    scale = 1.0 / std::sqrt(static_cast<double>(hd));
    qkv = register_module("qkv", nn::Linear(nn::LinearOptions(dim, 3 * dim).bias(qkv_bias)));
    proj = register_module("proj", nn::Linear(dim, dim));
    if (rel) {
      rel_pos_h = register_parameter("rel_pos_h", torch::zeros({2 * size - 1, hd}));
      rel_pos_w = register_parameter("rel_pos_w", torch::zeros({2 * size - 1, hd}));
    }
  }
  Tensor forward(const Tensor& x) {  // [B, H, W, C]
    const int64_t B = x.size(0), H = x.size(1), W = x.size(2);
    const Tensor qkv3 = qkv(x).reshape({B, H * W, 3, heads, -1}).permute({2, 0, 3, 1, 4});
    const Tensor all = qkv3.reshape({3, B * heads, H * W, -1});
    const Tensor q = all[0], k = all[1], v = all[2];
    Tensor attn = (q * scale).matmul(k.transpose(-2, -1));
    if (rel) {
      const Tensor rh = rel_pos_table(H, H, rel_pos_h), rw = rel_pos_table(W, W, rel_pos_w);
      const Tensor rq = q.reshape({B * heads, H, W, -1});
      const Tensor bh = torch::einsum("bhwc,hkc->bhwk", {rq, rh});
      const Tensor bw = torch::einsum("bhwc,wkc->bhwk", {rq, rw});
      attn = (attn.view({B * heads, H, W, H, W}) + bh.unsqueeze(-1) + bw.unsqueeze(-2))
                 .view({B * heads, H * W, H * W});
    }
    attn = attn.softmax(-1);
    const Tensor out = attn.matmul(v).view({B, heads, H, W, -1}).permute({0, 2, 3, 1, 4});
    return proj(out.reshape({B, H, W, -1}));
  }
  int64_t heads;
  bool rel;
  double scale;
  nn::Linear qkv{nullptr}, proj{nullptr};
  Tensor rel_pos_h, rel_pos_w;
};
TORCH_MODULE(ViTAttention);

struct MlpBlockImpl : nn::Module {  // lin1 → activation → lin2
  MlpBlockImpl(int64_t dim, int64_t hidden, bool relu) : relu(relu) {
    lin1 = register_module("lin1", nn::Linear(dim, hidden));
    lin2 = register_module("lin2", nn::Linear(hidden, dim));
  }
  Tensor forward(const Tensor& x) {
    const Tensor h = lin1(x);
    return lin2(relu ? torch::relu(h) : torch::gelu(h));
  }
  bool relu;
  nn::Linear lin1{nullptr}, lin2{nullptr};
};
TORCH_MODULE(MlpBlock);

struct ViTBlockImpl : nn::Module {
  ViTBlockImpl(const ViTConfig& c, int64_t window, int64_t grid) : window(window) {
    norm1 = register_module("norm1", layer_norm(c.embed_dim, 1e-6));
    attn = register_module("attn", ViTAttention(c.embed_dim, c.heads, c.qkv_bias, c.rel_pos,
                                                window > 0 ? window : grid));
    norm2 = register_module("norm2", layer_norm(c.embed_dim, 1e-6));
    mlp = register_module("mlp", MlpBlock(c.embed_dim, c.mlp_dim, false));
  }
  Tensor forward(const Tensor& x) {  // [B, H, W, C]
    Tensor y = norm1(x);
    const int64_t B = y.size(0), H = y.size(1), W = y.size(2), C = y.size(3);
    if (window > 0) {
      const int64_t ph = (window - H % window) % window, pw = (window - W % window) % window;
      if (ph > 0 || pw > 0) y = F::pad(y, F::PadFuncOptions({0, 0, 0, pw, 0, ph}));
      const int64_t Hp = H + ph, Wp = W + pw;
      y = y.view({B, Hp / window, window, Wp / window, window, C})
              .permute({0, 1, 3, 2, 4, 5})
              .reshape({-1, window, window, C});
      y = attn(y);
      y = y.view({B, Hp / window, Wp / window, window, window, C})
              .permute({0, 1, 3, 2, 4, 5})
              .reshape({B, Hp, Wp, C});
      if (ph > 0 || pw > 0) y = y.index({Slice(), Slice(0, H), Slice(0, W)}).contiguous();
    } else {
      y = attn(y);
    }
    const Tensor z = x + y;
    return z + mlp(norm2(z));
  }
  int64_t window;
  nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  ViTAttention attn{nullptr};
  MlpBlock mlp{nullptr};
};
TORCH_MODULE(ViTBlock);

struct ImageEncoderViTImpl : nn::Module {
  explicit ImageEncoderViTImpl(const ViTConfig& c) {
    const int64_t grid = c.img_size / c.patch;
    auto pe = holder(*this, "patch_embed");
    proj = pe->register_module(
        "proj", nn::Conv2d(nn::Conv2dOptions(3, c.embed_dim, c.patch).stride(c.patch)));
    pos_embed = register_parameter("pos_embed", torch::zeros({1, grid, grid, c.embed_dim}));
    auto bl = holder(*this, "blocks");
    for (int i = 0; i < c.depth; ++i) {
      const bool global = std::count(c.global_blocks.begin(), c.global_blocks.end(), i) > 0;
      blocks.push_back(
          bl->register_module(std::to_string(i), ViTBlock(c, global ? 0 : c.window, grid)));
    }
    neck = register_module("neck", Neck(c.embed_dim, c.out_chans));
  }
  Tensor forward(const Tensor& x) {
    Tensor y = proj(x).permute({0, 2, 3, 1}) + pos_embed;
    for (auto& b : blocks) y = b(y);
    return neck(y.permute({0, 3, 1, 2}));
  }
  nn::Conv2d proj{nullptr};
  Tensor pos_embed;
  std::vector<ViTBlock> blocks;
  Neck neck{nullptr};
};
TORCH_MODULE(ImageEncoderViT);

// ---- TinyViT (MobileSAM) ------------------------------------------------------------------

struct ConvBnImpl : nn::Module {  // "c" conv without bias → "bn"
  ConvBnImpl(int64_t in, int64_t out, int64_t k = 1, int64_t stride = 1, int64_t pad = 0,
             int64_t groups = 1) {
    c = register_module(
        "c",
        nn::Conv2d(
            nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).groups(groups).bias(false)));
    bn = register_module("bn", nn::BatchNorm2d(out));
  }
  Tensor forward(const Tensor& x) { return bn(c(x)); }
  nn::Conv2d c{nullptr};
  nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvBn);

struct MBConvImpl : nn::Module {
  MBConvImpl(int64_t dim, int64_t expand) {
    const int64_t hidden = dim * expand;
    conv1 = register_module("conv1", ConvBn(dim, hidden));
    conv2 = register_module("conv2", ConvBn(hidden, hidden, 3, 1, 1, hidden));
    conv3 = register_module("conv3", ConvBn(hidden, dim));
  }
  Tensor forward(const Tensor& x) {
    Tensor y = torch::gelu(conv1(x));
    y = torch::gelu(conv2(y));
    return torch::gelu(conv3(y) + x);
  }
  ConvBn conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
};
TORCH_MODULE(MBConv);

// [B, N, C] (or NCHW) at `res` → [B, N', out]: 1×1, depthwise 3×3 (stride `stride`), 1×1.
struct PatchMergingImpl : nn::Module {
  PatchMergingImpl(int64_t res, int64_t dim, int64_t out, int64_t stride) : res(res) {
    conv1 = register_module("conv1", ConvBn(dim, out));
    conv2 = register_module("conv2", ConvBn(out, out, 3, stride, 1, out));
    conv3 = register_module("conv3", ConvBn(out, out));
  }
  Tensor forward(Tensor x) {
    if (x.dim() == 3) x = x.view({x.size(0), res, res, -1}).permute({0, 3, 1, 2});
    x = torch::gelu(conv1(x));
    x = torch::gelu(conv2(x));
    return conv3(x).flatten(2).transpose(1, 2);
  }
  int64_t res;
  ConvBn conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
};
TORCH_MODULE(PatchMerging);

// Attention in a window of r × r tokens with a learnt bias per head and |Δrow|, |Δcol|.
struct TinyAttentionImpl : nn::Module {
  TinyAttentionImpl(int64_t dim, int64_t heads, int64_t r) : heads(heads), kd(dim / heads) {
    scale = 1.0 / std::sqrt(static_cast<double>(kd));
    norm = register_module("norm", layer_norm(dim, 1e-5));
    qkv = register_module("qkv", nn::Linear(dim, 3 * kd * heads));
    proj = register_module("proj", nn::Linear(kd * heads, dim));
    attention_biases = register_parameter("attention_biases", torch::zeros({heads, r * r}));
    std::vector<int64_t> idx;
    for (int64_t a = 0; a < r * r; ++a)
      for (int64_t b = 0; b < r * r; ++b)
        idx.push_back(std::abs(a / r - b / r) * r + std::abs(a % r - b % r));
    bias_index = torch::tensor(idx, torch::kLong).view({r * r, r * r});
  }
  Tensor forward(const Tensor& x) {  // [B, N, C]
    const int64_t B = x.size(0), N = x.size(1);
    const auto parts = qkv(norm(x)).view({B, N, heads, -1}).split({kd, kd, kd}, 3);
    const Tensor q = parts[0].permute({0, 2, 1, 3}), k = parts[1].permute({0, 2, 1, 3}),
                 v = parts[2].permute({0, 2, 1, 3});
    Tensor attn =
        q.matmul(k.transpose(-2, -1)) * scale + attention_biases.index({Slice(), bias_index});
    attn = attn.softmax(-1);
    return proj(attn.matmul(v).transpose(1, 2).reshape({B, N, -1}));
  }
  int64_t heads, kd;
  double scale;
  nn::LayerNorm norm{nullptr};
  nn::Linear qkv{nullptr}, proj{nullptr};
  Tensor attention_biases, bias_index;
};
TORCH_MODULE(TinyAttention);

struct TinyMlpImpl : nn::Module {
  TinyMlpImpl(int64_t dim, int64_t hidden) {
    norm = register_module("norm", layer_norm(dim, 1e-5));
    fc1 = register_module("fc1", nn::Linear(dim, hidden));
    fc2 = register_module("fc2", nn::Linear(hidden, dim));
  }
  Tensor forward(const Tensor& x) { return fc2(torch::gelu(fc1(norm(x)))); }
  nn::LayerNorm norm{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(TinyMlp);

struct TinyBlockImpl : nn::Module {
  TinyBlockImpl(int64_t dim, int64_t res, int64_t heads, int64_t window, int64_t mlp_ratio,
                int64_t local)
      : res(res), window(window) {
    attn = register_module("attn", TinyAttention(dim, heads, window));
    mlp = register_module("mlp", TinyMlp(dim, dim * mlp_ratio));
    local_conv = register_module("local_conv", ConvBn(dim, dim, local, 1, local / 2, dim));
  }
  Tensor forward(const Tensor& x) {  // [B, L, C], L = res²
    const int64_t B = x.size(0), L = x.size(1), C = x.size(2), H = res, W = res, ws = window;
    Tensor y;
    if (H == ws && W == ws) {
      y = attn(x);
    } else {
      y = x.view({B, H, W, C});
      const int64_t pb = (ws - H % ws) % ws, pr = (ws - W % ws) % ws;
      if (pb > 0 || pr > 0) y = F::pad(y, F::PadFuncOptions({0, 0, 0, pr, 0, pb}));
      const int64_t pH = H + pb, pW = W + pr, nH = pH / ws, nW = pW / ws;
      y = y.view({B, nH, ws, nW, ws, C}).transpose(2, 3).reshape({B * nH * nW, ws * ws, C});
      y = attn(y);
      y = y.view({B, nH, nW, ws, ws, C}).transpose(2, 3).reshape({B, pH, pW, C});
      if (pb > 0 || pr > 0) y = y.index({Slice(), Slice(0, H), Slice(0, W)}).contiguous();
      y = y.view({B, L, C});
    }
    Tensor z = x + y;
    z = local_conv(z.transpose(1, 2).reshape({B, C, H, W})).view({B, C, L}).transpose(1, 2);
    return z + mlp(z);
  }
  int64_t res, window;
  TinyAttention attn{nullptr};
  TinyMlp mlp{nullptr};
  ConvBn local_conv{nullptr};
};
TORCH_MODULE(TinyBlock);

struct TinyViTImpl : nn::Module {
  explicit TinyViTImpl(const TinyViTConfig& c) {
    const auto& d = c.dims;
    ENDOKED_CHECK(
        d.size() == 4 && c.depths.size() == 4 && c.heads.size() == 4 && c.windows.size() == 4,
        "a TinyViT has 4 stages");
    auto seq = holder(*holder(*this, "patch_embed"), "seq");
    stem0 = seq->register_module("0", ConvBn(3, d[0] / 2, 3, 2, 1));
    stem2 = seq->register_module("2", ConvBn(d[0] / 2, d[0], 3, 2, 1));
    auto layers = holder(*this, "layers");
    const int64_t r0 = c.img_size / 4;
    grid = c.img_size / 16;
    // Stage i works at r0 / 2^i; the merge into the last stage keeps the resolution (stride 1:
    // the official rule "out_dim in (320, 448, 576)" picks exactly those merges).
    auto stage0 = layers->register_module("0", std::make_shared<nn::Module>());
    auto b0 = holder(*stage0, "blocks");
    for (int k = 0; k < c.depths[0]; ++k)
      mbconv.push_back(b0->register_module(std::to_string(k), MBConv(d[0], c.mbconv_expand)));
    merges.push_back(stage0->register_module("downsample", PatchMerging(r0, d[0], d[1], 2)));
    for (int i = 1; i < 4; ++i) {
      const int64_t res = i < 3 ? r0 >> i : r0 >> 2;
      auto stage = layers->register_module(std::to_string(i), std::make_shared<nn::Module>());
      auto bl = holder(*stage, "blocks");
      std::vector<TinyBlock> bs;
      for (int k = 0; k < c.depths[static_cast<std::size_t>(i)]; ++k)
        bs.push_back(bl->register_module(
            std::to_string(k),
            TinyBlock(d[static_cast<std::size_t>(i)], res, c.heads[static_cast<std::size_t>(i)],
                      c.windows[static_cast<std::size_t>(i)], c.mlp_ratio, c.local_conv)));
      stages.push_back(std::move(bs));
      if (i < 3)
        merges.push_back(stage->register_module(
            "downsample", PatchMerging(res, d[static_cast<std::size_t>(i)],
                                       d[static_cast<std::size_t>(i) + 1], i == 2 ? 1 : 2)));
    }
    register_module("norm_head", layer_norm(d[3], 1e-5));
    register_module("head", nn::Linear(d[3], c.classes));
    neck = register_module("neck", Neck(d[3], c.out_chans));
  }
  Tensor forward(const Tensor& x) {
    Tensor y = stem2(torch::gelu(stem0(x)));
    for (auto& b : mbconv) y = b(y);
    y = merges[0](y);
    for (std::size_t i = 0; i < stages.size(); ++i) {
      for (auto& b : stages[i]) y = b(y);
      if (i + 1 < merges.size()) y = merges[i + 1](y);
    }
    const int64_t B = y.size(0), C = y.size(2);
    return neck(y.view({B, grid, grid, C}).permute({0, 3, 1, 2}));
  }
  int64_t grid;
  ConvBn stem0{nullptr}, stem2{nullptr};
  std::vector<MBConv> mbconv;
  std::vector<PatchMerging> merges;
  std::vector<std::vector<TinyBlock>> stages;
  Neck neck{nullptr};
};
TORCH_MODULE(TinyViT);

// ---- prompt encoder -----------------------------------------------------------------------

struct PromptEncoderImpl : nn::Module {
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
  Tensor dense_pe() const {
    const Tensor t = (torch::arange(c.grid, torch::kFloat) + 0.5) / c.grid;
    const auto yx = torch::meshgrid({t, t}, "ij");
    return encode(torch::stack({yx[1], yx[0]}, -1)).permute({2, 0, 1}).unsqueeze(0);
  }
  std::pair<Tensor, Tensor> forward(Tensor points, Tensor labels, const Tensor& boxes,
                                    const Tensor& mask) {
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
TORCH_MODULE(PromptEncoder);

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

struct MaskDecoderImpl : nn::Module {
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
                                    const Tensor& dense) {
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
    const Tensor img = keys.transpose(1, 2).reshape({B, C, h, w});
    const Tensor up = torch::gelu(up3(torch::gelu(up1(up0(img)))));
    std::vector<Tensor> hs;
    for (int64_t i = 0; i < c.mask_tokens; ++i)
      hs.push_back(hyper[static_cast<std::size_t>(i)](queries.select(1, 1 + i)));
    const Tensor hyper_in = torch::stack(hs, 1);  // [B, T, C/8]
    const int64_t uc = up.size(1), uh = up.size(2), uw = up.size(3);
    const Tensor masks = hyper_in.matmul(up.view({B, uc, uh * uw})).view({B, -1, uh, uw});
    return {masks, iou_head(iou_out)};
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
TORCH_MODULE(MaskDecoder);

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
    ENDOKED_CHECK(c.encoder == "vit" || c.encoder == "tiny_vit",
                  "sam: the image encoder must be vit or tiny_vit, got '", c.encoder, "'");
    if (c.encoder == "vit")
      vit = register_module("image_encoder", ImageEncoderViT(c.vit));
    else
      tiny = register_module("image_encoder", TinyViT(c.tiny));
    prompt = register_module("prompt_encoder", PromptEncoder(c.prompt));
    decoder = register_module("mask_decoder", MaskDecoder(c.decoder));
    eval();
  }
  Config config;
  ImageEncoderViT vit{nullptr};
  TinyViT tiny{nullptr};
  PromptEncoder prompt{nullptr};
  MaskDecoder decoder{nullptr};
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
  return impl_->vit ? impl_->vit->forward(images) : impl_->tiny->forward(images);
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

Tensor postprocess(const Tensor& low_res, int side, std::array<int, 2> resized,
                   std::array<int, 2> original) {
  auto up = [](const Tensor& x, int64_t h, int64_t w) {
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .size(std::vector<int64_t>{h, w})
                                 .mode(torch::kBilinear)
                                 .align_corners(false));
  };
  Tensor m = up(low_res, side, side);
  m = m.index({"...", Slice(0, resized[0]), Slice(0, resized[1])});
  return up(m, original[0], original[1]);
}

Tensor stability_score(const Tensor& logits, double threshold, double offset) {
  const Tensor inter = (logits > threshold + offset).sum({-1, -2}).to(torch::kFloat);
  const Tensor uni = (logits > threshold - offset).sum({-1, -2}).to(torch::kFloat);
  return torch::where(uni > 0, inter / uni.clamp_min(1), torch::zeros_like(uni));
}

namespace {

class SamRefiner final : public Refiner {
 public:
  explicit SamRefiner(const SamRefineOptions& o) : o_(o), model_(load(o)) {}
  std::string name() const override { return "sam"; }
  bool needs_cam() const override { return o_.point == "cam_peak"; }

  Refined refine(const cv::Mat& image, const std::vector<Box>& boxes,
                 const cv::Mat& cam) const override {
    const int side = model_.config().prompt.image_size;
    const std::array<int, 2> original{image.rows, image.cols};
    const cv::Mat resized = resize_longest(image, side);
    const std::array<int, 2> rs{resized.rows, resized.cols};
    cv::Mat mask = cv::Mat::zeros(image.size(), CV_8UC1);
    if (boxes.empty()) return score_mask(mask, boxes, cam);
    const Tensor embedding = model_.encode(preprocess(resized, side));
    std::vector<float> xyxy, points;
    for (const auto& b : boxes) {
      // Boxes are end-exclusive pixels; SAM's are corner coordinates of the last pixel.
      xyxy.insert(xyxy.end(), {static_cast<float>(b.x0), static_cast<float>(b.y0),
                               static_cast<float>(b.x1 - 1), static_cast<float>(b.y1 - 1)});
      if (o_.point != "none") {
        cv::Point p((b.x0 + b.x1 - 1) / 2, (b.y0 + b.y1 - 1) / 2);
        if (o_.point == "cam_peak" && !cam.empty()) {
          const cv::Rect r(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
          cv::Point peak;
          cv::minMaxLoc(cam(r & cv::Rect(0, 0, cam.cols, cam.rows)), nullptr, nullptr, nullptr,
                        &peak);
          p = peak + cv::Point(b.x0, b.y0);
        }
        points.insert(points.end(), {static_cast<float>(p.x), static_cast<float>(p.y)});
      }
    }
    const auto n = static_cast<int64_t>(boxes.size());
    const Tensor box_t =
        resize_coords(torch::tensor(xyxy).view({n, 2, 2}), original, rs).view({n, 4});
    Tensor pts, labels;
    if (!points.empty()) {
      pts = resize_coords(torch::tensor(points).view({n, 1, 2}), original, rs);
      labels = torch::ones({n, 1}, torch::kLong);
    }
    const auto [sparse, dense] = model_.prompt(pts, labels, box_t, {});
    const auto [logits, iou] = model_.decode(embedding, sparse, dense, true);
    const Tensor best = iou.argmax(1);                                          // [n]
    const Tensor chosen = logits.index({torch::arange(n), best}).unsqueeze(1);  // [n, 1, h, w]
    const Tensor full = postprocess(chosen, side, rs, original).squeeze(1).contiguous();
    const Tensor stability = stability_score(full);
    double min_iou = 1, min_stability = 1, min_box_iou = 1, sum_iou = 0;
    for (int64_t i = 0; i < n; ++i) {
      const Tensor m = (full[i] > 0).to(torch::kUInt8).contiguous();
      const cv::Mat one(image.rows, image.cols, CV_8UC1, m.data_ptr());
      mask |= one;
      const double pi = iou[i][best[i].item<int64_t>()].item<double>();
      min_iou = std::min(min_iou, pi);
      sum_iou += pi;
      min_stability = std::min(min_stability, stability[i].item<double>());
      const Box mb = mask_box(one);
      min_box_iou = std::min(
          min_box_iou, mb.width() > 0 ? box_iou(mb, boxes[static_cast<std::size_t>(i)]) : 0.0);
    }
    Refined r = score_mask(mask, boxes, cam);
    r.scores["predicted_iou"] = min_iou;
    r.scores["stability"] = min_stability;
    r.scores["prompt_box_iou"] = min_box_iou;
    r.quality = std::clamp(sum_iou / static_cast<double>(n), 0.0, 1.0);
    if (min_iou < o_.min_predicted_iou)
      r.reject = "low_predicted_iou";
    else if (min_stability < o_.min_stability)
      r.reject = "unstable";
    else if (min_box_iou < o_.min_prompt_box_iou)
      r.reject = "box_disagreement";
    return r;
  }

 private:
  static Sam load(const SamRefineOptions& o) {
    ENDOKED_CHECK(!o.checkpoint.empty(),
                  "the sam refiner needs refine.options.sam.checkpoint (mobile_sam.pt, "
                  "sam_vit_b_01ec64.pth, … as published)");
    ENDOKED_CHECK(o.point == "none" || o.point == "centre" || o.point == "cam_peak",
                  "refine.options.sam.point must be none, centre or cam_peak, got '", o.point, "'");
    return Sam::load(o.checkpoint);
  }
  SamRefineOptions o_;
  Sam model_;
};

}  // namespace

std::unique_ptr<Refiner> make_refiner(const SamRefineOptions& options) {
  return std::make_unique<SamRefiner>(options);
}

}  // namespace endoked::vision::sam
