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

torch::Tensor SegmentationNetImpl::forward(const torch::Tensor& x) {
  return forward_all(x)[0];
}

SegmentationNet make_segmentation_net(const std::string& arch, const std::string& backbone,
                                      int64_t width, int64_t decoder_width, bool deep_supervision) {
  if (arch == "unet")
    return std::make_shared<UNetImpl>(backbone, width, decoder_width, deep_supervision);
  if (arch == "pranet")
    return std::make_shared<PraNetImpl>(backbone, width, decoder_width, deep_supervision);
  ENDOKED_FAIL("segmentation network '", arch, "' is not one of unet, pranet");
}

PraNetImpl::Block PraNetImpl::make_block(nn::Module& parent, const std::string& name, int64_t in,
                                         int64_t channels, int64_t kernel1, bool out) {
  auto m = parent.register_module(name, std::make_shared<nn::Module>());
  Block b;
  b.conv1 = m->register_module(
      "conv1",
      nn::Conv2d(nn::Conv2dOptions(in, channels, kernel1).padding(kernel1 / 2).bias(false)));
  b.bn1 = m->register_module("bn1", nn::BatchNorm2d(channels));
  b.conv2 = m->register_module(
      "conv2", nn::Conv2d(nn::Conv2dOptions(channels, channels, 3).padding(1).bias(false)));
  b.bn2 = m->register_module("bn2", nn::BatchNorm2d(channels));
  if (out)
    b.out = m->register_module("out", nn::Conv2d(nn::Conv2dOptions(channels, 1, 3).padding(1)));
  return b;
}

torch::Tensor PraNetImpl::Block::operator()(const torch::Tensor& x) {
  torch::Tensor y = torch::relu(bn2(conv2(torch::relu(bn1(conv1(x))))));
  return out ? out(y) : y;
}

PraNetImpl::PraNetImpl(const std::string& backbone, int64_t width, int64_t decoder_width,
                       bool deep_supervision)
    : deep_supervision_(deep_supervision) {
  ENDOKED_CHECK(decoder_width >= 1, "pranet: decoder_width must be ≥ 1, got ", decoder_width);
  encoder = register_module("encoder", make_resnet(backbone, 0, width));
  const auto& c = encoder->pyramid_channels();  // strides 2, 4, 8, 16, 32
  const int64_t ch = 2 * decoder_width;
  auto reduce = register_module("reduce", std::make_shared<nn::Module>());
  for (int level = 3; level <= 5; ++level)
    reduce_.push_back(make_block(*reduce, std::to_string(level),
                                 c[static_cast<std::size_t>(level - 1)], ch, 1, false));
  aggregate_ = make_block(*this, "aggregate", 3 * ch, ch, 3, true);
  auto reverse = register_module("reverse", std::make_shared<nn::Module>());
  for (int level = 5; level >= 3; --level)
    reverse_.push_back(make_block(*reverse, std::to_string(level), ch, ch, 3, true));
}

std::vector<torch::Tensor> PraNetImpl::forward_all(const torch::Tensor& x) {
  const auto maps = encoder->pyramid(x);
  std::vector<torch::Tensor> f;  // strides 8, 16, 32 at `ch` channels
  for (std::size_t k = 0; k < 3; ++k) f.push_back(reduce_[k](maps[k + 2]));
  const int64_t h8 = f[0].size(2), w8 = f[0].size(3);
  // Partial decoder: the three levels at stride 8 → the global map.
  torch::Tensor prior =
      aggregate_(torch::cat({f[0], resize_to(f[1], h8, w8), resize_to(f[2], h8, w8)}, 1));
  std::vector<torch::Tensor> maps_out{prior};  // S_g, then S_5, S_4, S_3
  for (std::size_t k = 0; k < 3; ++k) {
    const torch::Tensor& feat = f[2 - k];  // strides 32, 16, 8
    prior = resize_to(prior, feat.size(2), feat.size(3));
    const torch::Tensor attention = 1 - torch::sigmoid(prior);
    prior = prior + reverse_[k](feat * attention);
    maps_out.push_back(prior);
  }
  std::vector<torch::Tensor> out{resize_to(maps_out[3], x.size(2), x.size(3))};
  if (deep_supervision_)
    for (int k = 2; k >= 0; --k)
      out.push_back(resize_to(maps_out[static_cast<std::size_t>(k)], x.size(2), x.size(3)));
  return out;
}

}  // namespace endoked::vision
