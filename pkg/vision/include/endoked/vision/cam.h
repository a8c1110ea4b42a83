#pragma once
// Class activation maps and the boxes EndoKED draws from them (the localise stage).
//
//   class_activation_map — CAM (Zhou et al. 2016) of a global-average-pooled classifier:
//                          ReLU(Σ_c w_c · A_c) for feature maps A [C, h, w] and the class's
//                          weights w [C].
//   grad_cam_plus_plus   — Grad-CAM++ (Chattopadhay et al. 2018) from the feature maps and the
//                          gradient of the class score with respect to them, in the closed form
//                          for an exponential score: α = g² / (2g² + ΣA · g³), weights
//                          Σ_ij α · ReLU(g), map ReLU(Σ_c weight_c · A_c).
//   multi_scale_cam      — a CAM function applied at several scales with and without a
//                          horizontal flip (EndoKED's ToCo uses 1.0, 0.5, 1.5), each map resized
//                          back to the image, flipped back, and averaged.
//   normalise_cam        — min–max to [0, 1] (a constant map becomes all zeros).
//   box_from_cam         — foreground = CAM ≥ threshold; the box is the largest 8-connected
//                          component's; rejected (with the reason) when that box touches the image
//                          border, its component covers less than min_area or more than
//                          max_area of the image, or there are max_components or more components.
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

namespace endoked::vision {

/// [C, h, w] features, [C] weights → [h, w] (not normalised).
torch::Tensor class_activation_map(const torch::Tensor& features, const torch::Tensor& weights);

/// [C, h, w] features and ∂score/∂features of the same shape → [h, w] (not normalised).
torch::Tensor grad_cam_plus_plus(const torch::Tensor& features, const torch::Tensor& gradients);

/// Min–max normalisation of a map to [0, 1]; a constant map gives zeros.
torch::Tensor normalise_cam(const torch::Tensor& cam);

/// `cam_of` maps an image [3, h, w] to a map [h', w'] (any size); the result is [H, W] of
/// `image`, in [0, 1]: the average over scales × {as is, flipped} of the maps resized back
/// (bilinear) and flipped back, then normalised. Scales must be > 0. Batched: `image`
/// [N, 3, H, W], `cam_of` maps [N, 3, h, w] to [N, h', w'], the result is [N, H, W], each map
/// normalised alone (one forward per scale and flip for the whole batch).
torch::Tensor multi_scale_cam(const std::function<torch::Tensor(const torch::Tensor&)>& cam_of,
                              const torch::Tensor& image, const std::vector<double>& scales,
                              bool flips = true);

struct BoxRules {
  double threshold = 0.65;    // foreground: CAM ≥ threshold
  double min_area = 0.01;     // the largest component must cover ≥ this fraction of the image
  double max_area = 0.35;     // … and ≤ this fraction
  int max_components = 3;     // reject when there are this many components or more (0: never)
  bool reject_border = true;  // reject a box that touches the image border
  template <class V>
  void visit(V& v) {
    v("threshold", threshold, "foreground: normalised CAM at least this");
    v("min_area", min_area, "reject when the largest component covers less of the image");
    v("max_area", max_area, "reject when the largest component covers more of the image");
    v("max_components", max_components, "reject at this many components or more (0: never)");
    v("reject_border", reject_border, "reject a box that touches the image border");
  }
};

struct CamBox {
  bool accepted = false;
  std::string reject;  // "" | no_foreground | border | too_small | too_large | components
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // pixels, end-exclusive (valid unless no_foreground)
  double area = 0;                     // the largest component's fraction of the image
  int components = 0;
  double score = 0;  // mean CAM inside the largest component
};

/// `cam` [H, W] in [0, 1] (normalise_cam). Every rule is checked in the order listed in the file
/// comment; the first that fails is the reason.
CamBox box_from_cam(const torch::Tensor& cam, const BoxRules& rules);

}  // namespace endoked::vision
