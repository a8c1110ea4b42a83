#pragma once
// Segment Anything, native: the SAM ViT image encoder (B/L/H) and MobileSAM's TinyViT, the prompt
// encoder and the two-way-transformer mask decoder, with the parameter names of the official
// checkpoints (`sam_vit_b_01ec64.pth`, `mobile_sam.pt`, …) so that those load as published, and
// the official predictor's pre- and postprocessing. The variant and its sizes are read from a
// checkpoint's keys and shapes (sam::config_of), never from a flag.
#include <torch/nn/module.h>

#include <opencv2/core/mat.hpp>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "endoked/vision/refine.h"
#include "endoked/vision/weights.h"

namespace endoked::vision::sam {

/// SAM's ViT image encoder (ImageEncoderViT).
struct ViTConfig {
  int img_size = 1024, patch = 16, embed_dim = 768, depth = 12, heads = 12;
  int mlp_dim = 3072;
  bool qkv_bias = true;
  bool rel_pos = true;
  int window = 14;
  std::vector<int> global_blocks{2, 5, 8, 11};  // blocks with global attention
  int out_chans = 256;
};

/// MobileSAM's TinyViT image encoder.
struct TinyViTConfig {
  int img_size = 1024;
  std::vector<int> dims{64, 128, 160, 320}, depths{2, 2, 6, 2}, heads{2, 4, 5, 10},
      windows{7, 7, 14, 7};
  int mlp_ratio = 4;      // hidden = dim × ratio
  int mbconv_expand = 4;  // stage 0's MBConv hidden = dim × expand
  int local_conv = 3;
  int classes = 1000;  // the unused classification head the checkpoints carry
  int out_chans = 256;
};

struct PromptConfig {
  int dim = 256;
  int grid = 64;          // the image embedding's side
  int image_size = 1024;  // the encoder's input side
  int mask_chans = 16;
};

struct DecoderConfig {
  int dim = 256, depth = 2, heads = 8, mlp_dim = 2048;
  int mask_tokens = 4;  // 1 + multimask outputs
  int iou_depth = 3, iou_hidden = 256;
  int downsample = 2;  // attention downsampling of the cross attentions
};

struct Config {
  std::string encoder = "tiny_vit";  // tiny_vit | vit
  ViTConfig vit;
  TinyViTConfig tiny;
  PromptConfig prompt;
  DecoderConfig decoder;
};

/// The configuration a SAM / MobileSAM state dict was made with, from its keys and shapes (the
/// attention heads of the ViT come from its relative-position tables; the decoder's heads, which
/// no shape shows, are 8 as in every official model unless `decoder_heads` says otherwise).
/// Throws Error naming `where` when the keys are not a SAM model's.
Config config_of(const StateDict& state, const std::string& where, int decoder_heads = 8);
/// "vit_b", "vit_l", "vit_h", "vit_t" (MobileSAM) or "custom".
std::string variant_name(const Config& c);

class SamImpl;

/// The whole model: image_encoder.*, prompt_encoder.*, mask_decoder.*.
class Sam {
 public:
  explicit Sam(const Config& config);
  /// Builds the model a checkpoint describes and loads it strictly (unknown, missing or
  /// mis-shaped keys: Error naming them and the file).
  static Sam load(const std::string& checkpoint);
  static Sam from_state(const StateDict& state, const std::string& where);

  const Config& config() const;
  torch::nn::Module& module();
  /// A hash of the parameters (for embedding caches): sha256 of names, shapes and bytes.
  std::string weights_sha256() const;

  /// Image embeddings of preprocessed images [B, 3, S, S] (normalised, padded) → [B, C, g, g].
  at::Tensor encode(const at::Tensor& images) const;

  /// Prompts in the encoder's input frame (after resize_coords). Points [B, N, 2] with labels
  /// [B, N] (1 foreground, 0 background, -1 padding) and/or boxes [B, 4]; mask prompt [B, 1,
  /// 4g, 4g] low-res logits or undefined. → sparse [B, T, C], dense [B, C, g, g].
  std::pair<at::Tensor, at::Tensor> prompt(const at::Tensor& points, const at::Tensor& labels,
                                           const at::Tensor& boxes, const at::Tensor& mask) const;
  /// The mask decoder over one image embedding [1, C, g, g] and B prompts → low-res logits
  /// [B, k, 4g, 4g] and predicted IoU [B, k]; k = 3 with multimask (tokens 1..3), else 1 (token 0).
  std::pair<at::Tensor, at::Tensor> decode(const at::Tensor& embedding, const at::Tensor& sparse,
                                           const at::Tensor& dense, bool multimask) const;

 private:
  std::shared_ptr<SamImpl> impl_;
};

// ---- the official predictor's pre- and postprocessing -------------------------------------

/// (h, w) after scaling the longest side to `side` (rounded as ResizeLongestSide does).
std::array<int, 2> resized_shape(int height, int width, int side);
/// RGB uint8 HWC → resized so that its longest side is `side`, bilinear with antialiasing (as
/// PIL resizes for the official predictor), uint8 HWC.
cv::Mat resize_longest(const cv::Mat& rgb, int side);
/// Resized RGB uint8 HWC → [1, 3, side, side] float: (x − pixel mean) / pixel std, zero-padded
/// bottom and right.
at::Tensor preprocess(const cv::Mat& resized_rgb, int side);
/// Coordinates [..., 2] (x, y) of the original image → the resized frame.
at::Tensor resize_coords(const at::Tensor& xy, std::array<int, 2> original,
                         std::array<int, 2> resized);
/// Low-res logits [B, k, h, w] → upscaled to side × side, cropped to `resized`, upscaled to
/// `original` (bilinear, align_corners false) — logits; threshold at 0 for masks.
at::Tensor postprocess(const at::Tensor& low_res, int side, std::array<int, 2> resized,
                       std::array<int, 2> original);
/// The automatic mask generator's stability score: |logits > t + o| / |logits > t − o| per mask
/// over the last two dimensions (t = 0, o = 1 by default); 0 when the union is empty.
at::Tensor stability_score(const at::Tensor& logits, double threshold = 0.0, double offset = 1.0);

/// The `sam` refiner (refine.h): loads the checkpoint once; thread-safe.
std::unique_ptr<Refiner> make_refiner(const SamRefineOptions& options);

}  // namespace endoked::vision::sam
