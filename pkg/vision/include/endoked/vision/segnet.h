#pragma once
// Segmentation networks for distillation (EndoKED's student: masks mined from records → a model).
//
//   A segmentation network maps images [N, 3, H, W] to logits at the input's size: the main
//   output first, then the deep-supervision outputs (SegmentationNetImpl::forward_all), each
//   trained with the structure loss (vision/seg_loss.h). Two architectures, by name
//   (make_segmentation_net):
//
//   UNet  a ResNet encoder (vision/resnet.h, torchvision's names under "encoder.", so published
//         weights load) and a U-Net decoder: from the stride-32 map up, each level upsampled ×2
//         (bilinear) to its skip's size, concatenated with it, two 3×3 conv + BN + ReLU; a 1×1
//         head at stride 2 upsampled to the input. With deep supervision, also a 1×1 head on the
//         stride-16, -8 and -4 levels (each upsampled to the input), for the structure loss on
//         every output (vision/seg_loss.h).
//   PraNet  the parallel reverse-attention network of PraNet (Fan et al., MICCAI 2020) on a
//         ResNet encoder (torchvision's names under "encoder."; PraNet's Res2Net and RFB modules
//         replaced by the ResNet stages and a 1×1 + 3×3 reduction to 2 × `decoder_width`
//         channels: "reduce.3|4|5"): a partial decoder aggregates the stride-8, -16 and -32 maps
//         into a global map S_g (stride 8, "aggregate"); reverse attention then refines it top
//         down — at stride 32, 16, 8 the features weighted by 1 − sigmoid(previous map) give a
//         residual added to the previous map ("reverse.5|4|3"): S_5, S_4, S_3. Outputs: S_3
//         (main), then with deep supervision S_4, S_5 and S_g, all at the input's size.
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>

#include <string>
#include <vector>

#include "endoked/vision/resnet.h"

namespace endoked::vision {

/// What distill trains and segment runs.
class SegmentationNetImpl : public torch::nn::Module {
 public:
  /// Logits [N, 1, H, W] at the input's size: the main output first, then (deep supervision)
  /// the auxiliary ones. H and W need not be multiples of 32.
  virtual std::vector<torch::Tensor> forward_all(const torch::Tensor& x) = 0;
  /// The main output alone (what inference and export use).
  virtual torch::Tensor forward(const torch::Tensor& x);
};
using SegmentationNet = std::shared_ptr<SegmentationNetImpl>;

/// `arch` unet | pranet (throws Error naming them otherwise); see the file comment.
SegmentationNet make_segmentation_net(const std::string& arch, const std::string& backbone,
                                      int64_t width = 64, int64_t decoder_width = 32,
                                      bool deep_supervision = true);

class UNetImpl : public SegmentationNetImpl {
 public:
  /// `backbone` resnet18 | resnet34 | resnet50 at `width` (64 as published); the decoder's
  /// levels (strides 16, 8, 4, 2) have 8, 4, 2, 1 × `decoder_width` channels.
  UNetImpl(const std::string& backbone, int64_t width = 64, int64_t decoder_width = 32,
           bool deep_supervision = true);
  /// Logits [N, 1, H, W] at the input's size: the main output first, then (deep supervision)
  /// the stride-16, -8 and -4 heads. H and W need not be multiples of 32.
  std::vector<torch::Tensor> forward_all(const torch::Tensor& x) override;
  torch::Tensor forward(const torch::Tensor& x) override;
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

class PraNetImpl : public SegmentationNetImpl {
 public:
  /// `backbone` and `width` as UNet's; the decoder works at 2 × `decoder_width` channels.
  PraNetImpl(const std::string& backbone, int64_t width = 64, int64_t decoder_width = 16,
             bool deep_supervision = true);
  /// S_3, then (deep supervision) S_4, S_5, S_g; all [N, 1, H, W].
  std::vector<torch::Tensor> forward_all(const torch::Tensor& x) override;
  ResNet encoder{nullptr};

 private:
  struct Block {  // conv1 → bn1 → relu → conv2 → bn2 → relu (→ out: one channel)
    torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, out{nullptr};
    torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
    torch::Tensor operator()(const torch::Tensor& x);
  };
  static Block make_block(torch::nn::Module& parent, const std::string& name, int64_t in,
                          int64_t channels, int64_t kernel1, bool out);
  std::vector<Block> reduce_;  // strides 8, 16, 32
  Block aggregate_;
  std::vector<Block> reverse_;  // strides 32, 16, 8
  bool deep_supervision_;
};
TORCH_MODULE(PraNet);

}  // namespace endoked::vision
