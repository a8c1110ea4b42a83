#include "endoked/vision/seg_loss.h"

#include <torch/torch.h>

#include "endoked/core/error.h"

namespace endoked::vision {

at::Tensor structure_loss(const at::Tensor& logits, const at::Tensor& mask,
                          const at::Tensor& ignore) {
  namespace F = torch::nn::functional;
  ENDOKED_CHECK(logits.dim() == 4 && logits.sizes() == mask.sizes(),
                "structure_loss: logits and mask must both be [B, 1, H, W], got ", logits.sizes(),
                " and ", mask.sizes());
  ENDOKED_CHECK(!ignore.defined() || ignore.sizes() == mask.sizes(),
                "structure_loss: the ignore map must have the mask's shape");
  const at::Tensor m = mask.to(logits.scalar_type());
  at::Tensor w =
      1 + 5 * (F::avg_pool2d(m, F::AvgPool2dFuncOptions(31).stride(1).padding(15)) - m).abs();
  if (ignore.defined()) w = w * (1 - ignore.to(logits.scalar_type()));
  const at::Tensor bce = F::binary_cross_entropy_with_logits(
      logits, m, F::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  const at::Tensor wbce = (w * bce).sum({2, 3}) / w.sum({2, 3}).clamp_min(1e-12);
  const at::Tensor p = torch::sigmoid(logits);
  const at::Tensor inter = (p * m * w).sum({2, 3});
  const at::Tensor uni = ((p + m) * w).sum({2, 3});
  const at::Tensor wiou = 1 - (inter + 1) / (uni - inter + 1);
  return (wbce + wiou).mean();
}

}  // namespace endoked::vision
