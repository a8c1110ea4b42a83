#include "endoked/vision/resnet.h"

#include <torch/torch.h>

#include "endoked/core/error.h"

namespace endoked::vision {
namespace nn = torch::nn;

namespace {
nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1, int64_t dilation = 1) {
  return nn::Conv2d(nn::Conv2dOptions(in, out, k)
                        .stride(stride)
                        .padding(dilation * (k / 2))
                        .dilation(dilation)
                        .bias(false));
}
// The shortcut's 1×1 conv + batch norm when the shape changes, else none.
nn::Sequential shortcut(int64_t in, int64_t out, int64_t stride) {
  if (stride == 1 && in == out) return nullptr;
  return nn::Sequential(conv(in, out, 1, stride), nn::BatchNorm2d(out));
}
}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in, int64_t width, int64_t stride, int64_t dilation) {
  conv1 = register_module("conv1", conv(in, width, 3, stride, dilation));
  bn1 = register_module("bn1", nn::BatchNorm2d(width));
  conv2 = register_module("conv2", conv(width, width, 3, 1, dilation));
  bn2 = register_module("bn2", nn::BatchNorm2d(width));
  if (auto s = shortcut(in, width, stride)) downsample = register_module("downsample", s);
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  auto y = torch::relu(bn1(conv1(x)));
  y = bn2(conv2(y));
  return torch::relu(y + (downsample ? downsample->forward(x) : x));
}

BottleneckImpl::BottleneckImpl(int64_t in, int64_t width, int64_t stride, int64_t dilation) {
  conv1 = register_module("conv1", conv(in, width, 1));
  bn1 = register_module("bn1", nn::BatchNorm2d(width));
  conv2 = register_module("conv2", conv(width, width, 3, stride, dilation));
  bn2 = register_module("bn2", nn::BatchNorm2d(width));
  conv3 = register_module("conv3", conv(width, width * kExpansion, 1));
  bn3 = register_module("bn3", nn::BatchNorm2d(width * kExpansion));
  if (auto s = shortcut(in, width * kExpansion, stride))
    downsample = register_module("downsample", s);
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  auto y = torch::relu(bn1(conv1(x)));
  y = torch::relu(bn2(conv2(y)));
  y = bn3(conv3(y));
  return torch::relu(y + (downsample ? downsample->forward(x) : x));
}

ResNetImpl::ResNetImpl(std::vector<int> blocks, bool bottleneck, int64_t num_classes, int64_t width,
                       int64_t output_stride) {
  ENDOKED_CHECK(blocks.size() == 4, "a ResNet has 4 stages, got ", blocks.size());
  ENDOKED_CHECK(width >= 1, "a ResNet's width (stem channels) must be ≥ 1, got ", width);
  ENDOKED_CHECK(output_stride == 32 || output_stride == 16 || output_stride == 8,
                "a ResNet's output stride must be 32, 16 or 8, got ", output_stride);
  conv1 = register_module(
      "conv1", nn::Conv2d(nn::Conv2dOptions(3, width, 7).stride(2).padding(3).bias(false)));
  bn1 = register_module("bn1", nn::BatchNorm2d(width));
  int64_t in = width;
  pyramid_channels_.push_back(width);
  const int64_t widths[4] = {width, 2 * width, 4 * width, 8 * width};
  nn::Sequential* layers[4] = {&layer1, &layer2, &layer3, &layer4};
  // torchvision's replace_stride_with_dilation: a stage past the output stride keeps the
  // resolution (stride 1) and dilates its later blocks' 3×3 convs instead.
  int64_t reached = 4, dilation = 1;
  for (int s = 0; s < 4; ++s) {
    int64_t stride = s == 0 ? 1 : 2;
    const int64_t first_dilation = dilation;
    if (stride == 2 && reached * 2 > output_stride) {
      dilation *= 2;
      stride = 1;
    } else {
      reached *= stride;
    }
    const std::string name = "layer" + std::to_string(s + 1);
    *layers[s] = register_module(
        name,
        bottleneck
            ? stage<BottleneckImpl>(in, widths[s], blocks[s], stride, first_dilation, dilation)
            : stage<BasicBlockImpl>(in, widths[s], blocks[s], stride, first_dilation, dilation));
    pyramid_channels_.push_back(in);
  }
  feature_dim_ = in;
  if (num_classes > 0) fc = register_module("fc", nn::Linear(in, num_classes));
  // torchvision's initialisation: Kaiming normal (fan out) for convs, BN weight 1 / bias 0.
  for (auto& m : modules(false))
    if (auto* c = m->as<nn::Conv2d>())
      nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
}

template <class BlockImpl>
nn::Sequential ResNetImpl::stage(int64_t& in, int64_t width, int blocks, int64_t stride,
                                 int64_t first_dilation, int64_t dilation) {
  nn::Sequential s;
  for (int i = 0; i < blocks; ++i) {
    s->push_back(std::make_shared<BlockImpl>(in, width, i == 0 ? stride : 1,
                                             i == 0 ? first_dilation : dilation));
    in = width * BlockImpl::kExpansion;
  }
  return s;
}

std::vector<torch::Tensor> ResNetImpl::pyramid(const torch::Tensor& x) {
  std::vector<torch::Tensor> out{torch::relu(bn1(conv1(x)))};
  torch::Tensor y = torch::max_pool2d(out.back(), 3, 2, 1);
  for (auto* layer : {&layer1, &layer2, &layer3, &layer4}) {
    y = (*layer)->forward(y);
    out.push_back(y);
  }
  return out;
}

torch::Tensor ResNetImpl::features(const torch::Tensor& x) {
  auto y = torch::max_pool2d(torch::relu(bn1(conv1(x))), 3, 2, 1);
  return layer4->forward(layer3->forward(layer2->forward(layer1->forward(y))));
}

torch::Tensor ResNetImpl::pooled(const torch::Tensor& x) {
  return torch::adaptive_avg_pool2d(features(x), {1, 1}).flatten(1);
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& x) {
  const auto p = pooled(x);
  return fc ? fc(p) : p;
}

ResNet resnet18(int64_t num_classes, int64_t width, int64_t output_stride) {
  return ResNet(std::vector<int>{2, 2, 2, 2}, false, num_classes, width, output_stride);
}
ResNet resnet34(int64_t num_classes, int64_t width, int64_t output_stride) {
  return ResNet(std::vector<int>{3, 4, 6, 3}, false, num_classes, width, output_stride);
}
ResNet resnet50(int64_t num_classes, int64_t width, int64_t output_stride) {
  return ResNet(std::vector<int>{3, 4, 6, 3}, true, num_classes, width, output_stride);
}

ResNet make_resnet(const std::string& arch, int64_t num_classes, int64_t width,
                   int64_t output_stride) {
  if (arch == "resnet18") return resnet18(num_classes, width, output_stride);
  if (arch == "resnet34") return resnet34(num_classes, width, output_stride);
  if (arch == "resnet50") return resnet50(num_classes, width, output_stride);
  ENDOKED_FAIL("unknown architecture '", arch, "' (known: resnet18, resnet34, resnet50)");
}

}  // namespace endoked::vision
