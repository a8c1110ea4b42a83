#include "endoked/vision/segnet.h"

#include <torch/torch.h>

#include "endoked/core/error.h"

namespace endoked::vision {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {

torch::Tensor resize_to(const torch::Tensor& x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{h, w})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

}  // namespace

UNetImpl::UNetImpl(const std::string& backbone, int64_t width, int64_t decoder_width,
                   bool deep_supervision) {
  ENDOKED_CHECK(decoder_width >= 1, "unet: decoder_width must be ≥ 1, got ", decoder_width);
  encoder = register_module("encoder", make_resnet(backbone, 0, width));
  const auto& skips = encoder->pyramid_channels();  // strides 2, 4, 8, 16, 32
  int64_t in = skips[4];
  auto decoder = register_module("decoder", std::make_shared<nn::Module>());
  for (int l = 0; l < 4; ++l) {  // strides 16, 8, 4, 2
    const int64_t skip = skips[static_cast<std::size_t>(3 - l)], out = decoder_width * (8 >> l);
    Level v;
    auto level = decoder->register_module(std::to_string(l), std::make_shared<nn::Module>());
    v.conv1 = level->register_module(
        "conv1", nn::Conv2d(nn::Conv2dOptions(in + skip, out, 3).padding(1).bias(false)));
    v.bn1 = level->register_module("bn1", nn::BatchNorm2d(out));
    v.conv2 = level->register_module(
        "conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
    v.bn2 = level->register_module("bn2", nn::BatchNorm2d(out));
    levels_.push_back(v);
    if (deep_supervision && l < 3)
      aux_.push_back(register_module("aux" + std::to_string(l + 1), nn::Conv2d(out, 1, 1)));
    in = out;
  }
  head_ = register_module("head", nn::Conv2d(in, 1, 1));
}

std::vector<torch::Tensor> UNetImpl::forward_all(const torch::Tensor& x) {
  const auto maps = encoder->pyramid(x);
  torch::Tensor y = maps[4];
  std::vector<torch::Tensor> aux;
  for (std::size_t l = 0; l < levels_.size(); ++l) {
    const torch::Tensor& skip = maps[3 - l];
    y = torch::cat({resize_to(y, skip.size(2), skip.size(3)), skip}, 1);
    y = torch::relu(levels_[l].bn1(levels_[l].conv1(y)));
    y = torch::relu(levels_[l].bn2(levels_[l].conv2(y)));
    if (l < aux_.size()) aux.push_back(resize_to(aux_[l](y), x.size(2), x.size(3)));
  }
  std::vector<torch::Tensor> out{resize_to(head_(y), x.size(2), x.size(3))};
  out.insert(out.end(), aux.begin(), aux.end());
  return out;
}

torch::Tensor UNetImpl::forward(const torch::Tensor& x) {
  return forward_all(x)[0];
}

}  // namespace endoked::vision
