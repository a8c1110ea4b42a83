#pragma once
// ResNet-18/34/50 (He et al., CVPR 2016) in torchvision's layout and parameter names (conv1, bn1,
// layer1.0.conv1, …, layer2.0.downsample.0, fc; ResNet-50's bottleneck puts the stride on the
// 3×3 conv, as torchvision's "v1.5" does), so torchvision state dicts load by name
// (vision/weights.h). Input [N, 3, H, W] float.
//   pyramid(x)  → the stem's and every stage's map (a U-Net's skips)
//   features(x) → the last stage's feature map [N, C, H/s, W/s] (s = the output stride, 32 as
//                 published; C = 512, or 2048 for -50)
//   pooled(x)   → its global average [N, C]
//   forward(x)  → fc(pooled(x)) [N, num_classes]; with num_classes 0 there is no fc and forward
//                 is pooled (an encoder).
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <vector>

namespace endoked::vision {

class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlockImpl(int64_t in, int64_t width, int64_t stride, int64_t dilation = 1);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in, int64_t width, int64_t stride, int64_t dilation = 1);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

class ResNetImpl : public torch::nn::Module {
 public:
  /// `blocks`: per stage, e.g. {2, 2, 2, 2} for ResNet-18; `bottleneck`: ResNet-50's blocks;
  /// `width`: the stem's channels (64 as published; the stages have width × 1, 2, 4, 8). A
  /// narrower net keeps torchvision's names but not its shapes: published weights need 64.
  /// `output_stride`: 32 as published; 16 or 8 keep the last stage(s) at a finer resolution
  /// with dilated 3×3 convs instead of a stride (torchvision's replace_stride_with_dilation:
  /// the same parameters, so the same weights load) — finer CAMs.
  ResNetImpl(std::vector<int> blocks, bool bottleneck, int64_t num_classes, int64_t width = 64,
             int64_t output_stride = 32);
  torch::Tensor features(const torch::Tensor& x);
  /// The maps after the stem (stride 2, before the max-pool) and after each stage (strides 4, 8,
  /// 16, 32 as published): a U-Net's skips. The last is features(x).
  std::vector<torch::Tensor> pyramid(const torch::Tensor& x);
  /// Their channels: width, then each stage's output.
  const std::vector<int64_t>& pyramid_channels() const { return pyramid_channels_; }
  torch::Tensor pooled(const torch::Tensor& x);
  torch::Tensor forward(const torch::Tensor& x);
  /// Channels of features() and pooled(): 8 × width (512), or 32 × width (2048) with bottlenecks.
  int64_t feature_dim() const { return feature_dim_; }

 private:
  template <class BlockImpl>
  torch::nn::Sequential stage(int64_t& in, int64_t width, int blocks, int64_t stride,
                              int64_t first_dilation, int64_t dilation);
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  torch::nn::Linear fc{nullptr};
  int64_t feature_dim_ = 0;
  std::vector<int64_t> pyramid_channels_;
};
TORCH_MODULE(ResNet);

ResNet resnet18(int64_t num_classes = 1000, int64_t width = 64, int64_t output_stride = 32);
ResNet resnet34(int64_t num_classes = 1000, int64_t width = 64, int64_t output_stride = 32);
ResNet resnet50(int64_t num_classes = 1000, int64_t width = 64, int64_t output_stride = 32);
/// "resnet18" | "resnet34" | "resnet50"; throws Error naming the known ones otherwise.
ResNet make_resnet(const std::string& arch, int64_t num_classes, int64_t width = 64,
                   int64_t output_stride = 32);

}  // namespace endoked::vision
