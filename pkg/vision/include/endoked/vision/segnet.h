#pragma once
// Segmentation networks for distillation (EndoKED's student: masks mined from records → a model).
//
//   UNet  a ResNet encoder (vision/resnet.h, torchvision's names under "encoder.", so published
//         weights load) and a U-Net decoder: from the stride-32 map up, each level upsampled ×2
//         (bilinear) to its skip's size, concatenated with it, two 3×3 conv + BN + ReLU; a 1×1
//         head at stride 2 upsampled to the input. With deep supervision, also a 1×1 head on the
//         stride-16, -8 and -4 levels (each upsampled to the input), for the structure loss on
//         every output (vision/seg_loss.h).
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include <string>
#include <vector>

#include "endoked/vision/resnet.h"

namespace endoked::vision {

class UNetImpl : public torch::nn::Module {
 public:
  /// `backbone` resnet18 | resnet34 | resnet50 at `width` (64 as published); the decoder's
  /// levels (strides 16, 8, 4, 2) have 8, 4, 2, 1 × `decoder_width` channels.
  UNetImpl(const std::string& backbone, int64_t width = 64, int64_t decoder_width = 32,
           bool deep_supervision = true);
  /// Logits [N, 1, H, W] at the input's size: the main output first, then (deep supervision)
  /// the stride-16, -8 and -4 heads. H and W need not be multiples of 32.
  std::vector<torch::Tensor> forward_all(const torch::Tensor& x);
  /// The main output alone (what inference and export use).
  torch::Tensor forward(const torch::Tensor& x);
  ResNet encoder{nullptr};

 private:
  struct Level {
    torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
    torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  };
  std::vector<Level> levels_;
  torch::nn::Conv2d head_{nullptr};
  std::vector<torch::nn::Conv2d> aux_;
};
TORCH_MODULE(UNet);

}  // namespace endoked::vision
