#include "endoked/vision/resnet.h"

#include <torch/torch.h>

namespace endoked::vision {
namespace nn = torch::nn;

BasicBlockImpl::BasicBlockImpl(int64_t in, int64_t out, int64_t stride) {
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)));
  bn1 = register_module("bn1", nn::BatchNorm2d(out));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)));
  bn2 = register_module("bn2", nn::BatchNorm2d(out));
  if (stride != 1 || in != out)
    downsample = register_module(
        "downsample", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                                     nn::BatchNorm2d(out)));
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  auto y = torch::relu(bn1(conv1(x)));
  y = bn2(conv2(y));
  return torch::relu(y + (downsample ? downsample->forward(x) : x));
}

ResNetImpl::ResNetImpl(std::vector<int> blocks, int64_t num_classes) {
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 64, 7).stride(2).padding(3).bias(false)));
  bn1 = register_module("bn1", nn::BatchNorm2d(64));
  layer1 = register_module("layer1", stage(64, 64, blocks.at(0), 1));
  layer2 = register_module("layer2", stage(64, 128, blocks.at(1), 2));
  layer3 = register_module("layer3", stage(128, 256, blocks.at(2), 2));
  layer4 = register_module("layer4", stage(256, 512, blocks.at(3), 2));
  fc = register_module("fc", nn::Linear(512, num_classes));
  for (auto& m : modules(false))
    if (auto* c = m->as<nn::Conv2d>()) nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
}

nn::Sequential ResNetImpl::stage(int64_t in, int64_t out, int blocks, int64_t stride) {
  nn::Sequential s;
  s->push_back(BasicBlock(in, out, stride));
  for (int i = 1; i < blocks; ++i) s->push_back(BasicBlock(out, out, 1));
  return s;
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& x) {
  auto y = torch::max_pool2d(torch::relu(bn1(conv1(x))), 3, 2, 1);
  y = layer4->forward(layer3->forward(layer2->forward(layer1->forward(y))));
  y = torch::adaptive_avg_pool2d(y, {1, 1}).flatten(1);
  return fc(y);
}

ResNet resnet18(int64_t num_classes) { return ResNet(std::vector<int>{2, 2, 2, 2}, num_classes); }

}  // namespace endoked::vision
