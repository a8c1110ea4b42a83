#pragma once
// ResNet-18/34 (He et al., CVPR 2016), the torchvision layout and parameter names
// (conv1, bn1, layer1.0.conv1, …, fc), so torchvision weights can be imported by name.
// Input [N, 3, H, W] float, output [N, num_classes] logits.
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <vector>

namespace endoked::vision {

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNetImpl : public torch::nn::Module {
 public:
  /// `blocks`: per stage, e.g. {2, 2, 2, 2} for ResNet-18.
  ResNetImpl(std::vector<int> blocks, int64_t num_classes);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Sequential stage(int64_t in, int64_t out, int blocks, int64_t stride);
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(ResNet);

ResNet resnet18(int64_t num_classes = 1000);

}  // namespace endoked::vision
