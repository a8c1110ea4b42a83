// The image encoders: the SAM ViT (B/L/H) and MobileSAM's TinyViT.
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

struct ImageEncoderViTImpl : ImageEncoder {
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
  Tensor forward(const Tensor& x) override {
    Tensor y = proj(x).permute({0, 2, 3, 1}) + pos_embed;
    for (auto& b : blocks) y = b(y);
    return neck(y.permute({0, 3, 1, 2}));
  }
  nn::Conv2d proj{nullptr};
  Tensor pos_embed;
  std::vector<ViTBlock> blocks;
  Neck neck{nullptr};
};

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

struct TinyViTImpl : ImageEncoder {
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
  Tensor forward(const Tensor& x) override {
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

}  // namespace

std::shared_ptr<ImageEncoder> make_image_encoder(const Config& c) {
  ENDOKED_CHECK(c.encoder == "vit" || c.encoder == "tiny_vit",
                "sam: the image encoder must be vit or tiny_vit, got '", c.encoder, "'");
  if (c.encoder == "vit") return std::make_shared<ImageEncoderViTImpl>(c.vit);
  return std::make_shared<TinyViTImpl>(c.tiny);
}

}  // namespace endoked::vision::sam::detail
