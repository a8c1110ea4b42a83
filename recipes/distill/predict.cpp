#include "predict.h"

#include <opencv2/imgproc.hpp>

#include "endoked/data/loader.h"

namespace endoked::recipes {

void predict_each(vision::SegmentationNetImpl& net, std::shared_ptr<const data::Dataset> base,
                  std::vector<std::int64_t> images, const PredictOptions& options,
                  const std::function<void(std::int64_t, const torch::Tensor&)>& fn,
                  const std::function<void(std::int64_t)>& skipped) {
  if (images.empty()) return;
  torch::NoGradGuard no_grad;
  auto subset = std::make_shared<data::ImageSubset>(std::move(base), std::move(images));
  data::LoaderOptions lo =
      data::square_loader_options(options.image_size, options.threads, 0, false);
  lo.batch_size = options.batch_size;
  data::Loader loader(subset, lo, 0, 0, 1);
  data::Batch b;
  while (loader.next(b)) {
    std::vector<std::int64_t> rows, decoded;
    for (std::int64_t i = 0; i < b.items(); ++i) {
      const auto k = static_cast<std::size_t>(i);
      const std::int64_t g = subset->image(b.indices[k]);
      if (b.offsets[k + 1] == b.offsets[k]) {
        if (skipped) skipped(g);
        continue;
      }
      rows.push_back(b.offsets[k]);
      decoded.push_back(g);
    }
    if (rows.empty()) continue;
    const torch::Tensor logits =
        net.forward(b.images.index_select(0, torch::tensor(rows, torch::kLong)));
    for (std::size_t k = 0; k < decoded.size(); ++k)
      fn(decoded[k], logits[static_cast<std::int64_t>(k)]);
  }
}

cv::Mat probability_at(const torch::Tensor& logits_row, int width, int height) {
  const torch::Tensor p = torch::sigmoid(logits_row.squeeze(0)).contiguous();
  cv::Mat small(static_cast<int>(p.size(0)), static_cast<int>(p.size(1)), CV_32FC1,
                p.data_ptr<float>());
  cv::Mat full;
  cv::resize(small, full, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
  return full;
}

}  // namespace endoked::recipes
