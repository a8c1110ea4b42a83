#pragma once
// The "structure loss" of PraNet / Polyp-PVT for segmentation logits against a mask: a weighted
// binary cross-entropy plus a weighted IoU loss, the weights 1 + 5·|avgpool31(mask) − mask| (the
// pixels near the mask's border count up to 6×), averaged over the batch:
//   wbce = Σ w·BCE(logit, mask) / Σ w,   wiou = 1 − (Σ w·p·m + 1) / (Σ w·(p + m) − Σ w·p·m + 1)
// per image and channel (p = sigmoid(logit)). `ignore` (optional, same shape, 1 = ignore) drops
// pixels from both sums (an uncertain band around a pseudo mask's border). A deep-supervised
// network adds one such loss per output (upsampled to the mask's size).
#include <ATen/core/Tensor.h>

namespace endoked::vision {

/// logits, mask [B, 1, H, W] (mask in [0, 1]); ignore: undefined or [B, 1, H, W] 0/1.
at::Tensor structure_loss(const at::Tensor& logits, const at::Tensor& mask,
                          const at::Tensor& ignore = {});

}  // namespace endoked::vision
