#pragma once
// What distill and segment share: running a segmentation network over images of a dataset as it
// was trained (the training loader's resize and normalisation, no augmentation), and the
// probability map at an image's own size.
#include <torch/torch.h>
#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "endoked/data/dataset.h"
#include "endoked/vision/segnet.h"

namespace endoked::recipes {

struct PredictOptions {
  int image_size = 128;
  int batch_size = 8;
  int threads = 1;  // decode threads
};

/// Runs `net` (eval mode, no gradient) over `images` (global indices) of `base` (a unit-image
/// dataset) and calls fn(index, logits [1, S, S]) for each image that decoded, in order;
/// skipped(index) for each that did not (when given).
void predict_each(vision::SegmentationNetImpl& net, std::shared_ptr<const data::Dataset> base,
                  std::vector<std::int64_t> images, const PredictOptions& options,
                  const std::function<void(std::int64_t, const torch::Tensor&)>& fn,
                  const std::function<void(std::int64_t)>& skipped = {});

/// The probability map of one row of logits [1, S, S], resized (bilinear) to width × height:
/// CV_32FC1 in [0, 1].
cv::Mat probability_at(const torch::Tensor& logits_row, int width, int height);

}  // namespace endoked::recipes
