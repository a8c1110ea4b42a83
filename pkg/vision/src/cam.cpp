#include "endoked/vision/cam.h"

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "endoked/core/error.h"

namespace endoked::vision {
namespace F = torch::nn::functional;

namespace {
void check_maps(const torch::Tensor& features, const char* what) {
  ENDOKED_CHECK(features.dim() == 3 && features.size(1) >= 1 && features.size(2) >= 1, what,
                ": feature maps must be [C, h, w], got ", features.sizes());
}
}  // namespace

torch::Tensor class_activation_map(const torch::Tensor& features, const torch::Tensor& weights) {
  check_maps(features, "CAM");
  ENDOKED_CHECK(weights.dim() == 1 && weights.size(0) == features.size(0),
                "CAM: weights must be [C] = [", features.size(0), "], got ", weights.sizes());
  return torch::relu((weights.view({-1, 1, 1}) * features).sum(0));
}

torch::Tensor grad_cam_plus_plus(const torch::Tensor& features, const torch::Tensor& gradients) {
  check_maps(features, "Grad-CAM++");
  ENDOKED_CHECK(gradients.sizes() == features.sizes(), "Grad-CAM++: gradients ", gradients.sizes(),
                " and features ", features.sizes(), " differ");
  const auto g2 = gradients.pow(2), g3 = gradients.pow(3);
  const auto sum_a = features.sum({1, 2}, /*keepdim=*/true);
  auto denominator = 2 * g2 + sum_a * g3;
  denominator = torch::where(denominator != 0, denominator, torch::ones_like(denominator));
  const auto alpha = torch::where(gradients != 0, g2 / denominator, torch::zeros_like(g2));
  const auto weights = (alpha * torch::relu(gradients)).sum({1, 2});  // [C]
  return torch::relu((weights.view({-1, 1, 1}) * features).sum(0));
}

torch::Tensor normalise_cam(const torch::Tensor& cam) {
  const auto lo = cam.min(), hi = cam.max();
  if ((hi - lo).item<double>() <= 0) return torch::zeros_like(cam);
  return (cam - lo) / (hi - lo);
}

torch::Tensor multi_scale_cam(const std::function<torch::Tensor(const torch::Tensor&)>& cam_of,
                              const torch::Tensor& image, const std::vector<double>& scales,
                              bool flips) {
  const bool batched = image.dim() == 4;
  ENDOKED_CHECK((image.dim() == 3 || batched) && image.size(-3) == 3,
                "multi-scale CAM: the image must be [3, H, W] or [N, 3, H, W], got ",
                image.sizes());
  ENDOKED_CHECK(!scales.empty(), "multi-scale CAM: no scales");
  const torch::Tensor x = batched ? image : image.unsqueeze(0);
  const int64_t h = x.size(2), w = x.size(3);
  torch::Tensor sum = torch::zeros({x.size(0), h, w}, x.options().dtype(torch::kFloat));
  int n = 0;
  for (const double s : scales) {
    ENDOKED_CHECK(s > 0, "multi-scale CAM: scale ", s, " must be > 0");
    const int64_t sh = std::max<int64_t>(1, std::llround(h * s)),
                  sw = std::max<int64_t>(1, std::llround(w * s));
    const auto scaled = F::interpolate(x, F::InterpolateFuncOptions()
                                              .size(std::vector<int64_t>{sh, sw})
                                              .mode(torch::kBilinear)
                                              .align_corners(false));
    for (int flip = 0; flip <= (flips ? 1 : 0); ++flip) {
      const auto input = flip ? scaled.flip({3}) : scaled;
      auto cam = (batched ? cam_of(input) : cam_of(input[0]).unsqueeze(0)).to(torch::kFloat);
      ENDOKED_CHECK(cam.dim() == 3 && cam.size(0) == x.size(0), "multi-scale CAM: a map must be ",
                    batched ? "[N, h, w]" : "[h, w]", ", got ",
                    batched ? cam.sizes() : cam.squeeze(0).sizes());
      cam = F::interpolate(cam.unsqueeze(1), F::InterpolateFuncOptions()
                                                 .size(std::vector<int64_t>{h, w})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(false))
                .squeeze(1);
      sum += flip ? cam.flip({2}) : cam;
      ++n;
    }
  }
  std::vector<torch::Tensor> maps;
  for (int64_t i = 0; i < sum.size(0); ++i) maps.push_back(normalise_cam(sum[i] / n));
  return batched ? torch::stack(maps) : maps[0];
}

CamBox box_from_cam(const torch::Tensor& cam, const BoxRules& rules) {
  ENDOKED_CHECK(cam.dim() == 2 && cam.size(0) >= 1 && cam.size(1) >= 1,
                "box from CAM: the map must be [H, W], got ", cam.sizes());
  const auto c = cam.to(torch::kFloat).contiguous();
  const int h = static_cast<int>(c.size(0)), w = static_cast<int>(c.size(1));
  const cv::Mat map(h, w, CV_32F, const_cast<float*>(c.data_ptr<float>()));
  cv::Mat fg = map >= rules.threshold;
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(fg, labels, stats, centroids, 8, CV_32S) - 1;
  CamBox box;
  box.components = n;
  if (n <= 0) {
    box.reject = "no_foreground";
    return box;
  }
  int best = 1;
  for (int k = 2; k <= n; ++k)
    if (stats.at<int>(k, cv::CC_STAT_AREA) > stats.at<int>(best, cv::CC_STAT_AREA)) best = k;
  box.x0 = stats.at<int>(best, cv::CC_STAT_LEFT);
  box.y0 = stats.at<int>(best, cv::CC_STAT_TOP);
  box.x1 = box.x0 + stats.at<int>(best, cv::CC_STAT_WIDTH);
  box.y1 = box.y0 + stats.at<int>(best, cv::CC_STAT_HEIGHT);
  box.area =
      static_cast<double>(stats.at<int>(best, cv::CC_STAT_AREA)) / (static_cast<double>(h) * w);
  box.score = cv::mean(map, labels == best)[0];
  if (rules.reject_border && (box.x0 == 0 || box.y0 == 0 || box.x1 == w || box.y1 == h))
    box.reject = "border";
  else if (box.area < rules.min_area)
    box.reject = "too_small";
  else if (box.area > rules.max_area)
    box.reject = "too_large";
  else if (rules.max_components > 0 && n >= rules.max_components)
    box.reject = "components";
  box.accepted = box.reject.empty();
  return box;
}

}  // namespace endoked::vision
