#pragma once
// SAM's building blocks, shared by the files of the port (not installed): the small layers
// every part uses and the three parts as modules behind small interfaces.
//   sam_encoders.cpp  the SAM ViT and MobileSAM's TinyViT image encoders
//   sam_decoder.cpp   the prompt encoder and the two-way-transformer mask decoder
//   sam.cpp           reading a configuration from a checkpoint, the model, the predictor's
//                     pre- and postprocessing
//   sam_refiner.cpp   the sam refiner
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>

#include "endoked/vision/sam.h"

namespace endoked::vision::sam::detail {
namespace nn = torch::nn;
using at::Tensor;

// A child that holds numbered children ("layers.0", "seq.2"), as Python's ModuleList and
// Sequential name them.
inline std::shared_ptr<nn::Module> holder(nn::Module& parent, const std::string& name) {
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

inline nn::LayerNorm layer_norm(int64_t c, double eps) {
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

// [B, 3, S, S] preprocessed images → embeddings [B, C, g, g].
struct ImageEncoder : nn::Module {
  virtual Tensor forward(const Tensor& images) = 0;
};
/// The ViT or the TinyViT, as `c.encoder` says.
std::shared_ptr<ImageEncoder> make_image_encoder(const Config& c);

struct PromptEncoder : nn::Module {
  /// → sparse [B, T, C], dense [B, C, g, g] (see Sam::prompt).
  virtual std::pair<Tensor, Tensor> forward(Tensor points, Tensor labels, const Tensor& boxes,
                                            const Tensor& mask) = 0;
  /// The positional encoding of the embedding grid [1, C, g, g].
  virtual Tensor dense_pe() const = 0;
};
std::shared_ptr<PromptEncoder> make_prompt_encoder(const PromptConfig& c);

struct MaskDecoder : nn::Module {
  /// → low-res logits [B, T, 4g, 4g] and predicted IoU [B, T] for every mask token.
  virtual std::pair<Tensor, Tensor> forward(const Tensor& embedding, const Tensor& pe,
                                            const Tensor& sparse, const Tensor& dense) = 0;
};
std::shared_ptr<MaskDecoder> make_mask_decoder(const DecoderConfig& c);

}  // namespace endoked::vision::sam::detail
