#pragma once
// The segmentation metrics polyp papers report (PraNet, Polyp-PVT tables), for one image, with the
// definitions their evaluation code uses:
//
//   The prediction: a one-channel map of any depth, resized to the truth's size (bilinear), taken
//   to [0, 1] (8-bit maps / 255 unless they hold only 0 and 1; other depths as they are) and
//   min–max normalised when it is not constant. The truth: segmentation_score's rule (> 127, or
//   > 0 when its values are 0/1).
//
//   dice, iou       segmentation_score: the map binarised at 0.5.
//   mae             mean |map − truth|.
//   s_measure       structure measure (Fan et al., ICCV 2017), α = 0.5: the object score (each of
//                   foreground and background: 2·mean / (mean² + 1 + std), std with n − 1) and the
//                   region score (the SSIM-like score of the four quadrants split at the truth's
//                   centroid, rounded half to even, + 1 as the MATLAB code does, weighted by area).
//                   An empty truth scores 1 − mean(map), a full one mean(map).
//   mean_e_measure  enhanced alignment (Fan et al., IJCAI 2018) of the map binarised at each of the
//                   256 levels of ⌊map·255⌋ (≥ level), averaged: Σ ((φ + 1)² / 4) / (pixels − 1),
//                   φ = 2ab / (a² + b²) of the demeaned binary map a and truth b.
//   weighted_f      weighted F-measure (Margolin et al., CVPR 2014), β² = 1: errors spread to the
//                   nearest foreground pixel (exact Euclidean distance transform), smoothed by the
//                   7 × 7 Gaussian of σ 5 (zero padding), background errors weighted by
//                   2 − 0.5^(distance / 5). 0 when the truth is empty.
//
// A perfect prediction scores dice = iou = s_measure = weighted_f = 1, mae = 0 and
// mean_e_measure ≈ 0.997 (the level 0 binarisation marks every pixel: as the reference code).
#include <opencv2/core/mat.hpp>

namespace endoked::vision {

struct PolypScores {
  double dice = 0, iou = 0, weighted_f = 0, s_measure = 0, mean_e_measure = 0, mae = 0;
};

PolypScores polyp_scores(const cv::Mat& prediction, const cv::Mat& truth);

/// The map as the metrics read it (CV_64F in [0, 1], the truth's size; see above).
cv::Mat normalised_map(const cv::Mat& prediction, cv::Size size);

/// Exact Euclidean distance from every pixel to the nearest nonzero pixel of `mask` (CV_64F),
/// and that pixel's index (row · cols + col, CV_32S). A mask with no nonzero pixel: infinity, −1.
void distance_to_nonzero(const cv::Mat& mask, cv::Mat& distance, cv::Mat& nearest);

}  // namespace endoked::vision
