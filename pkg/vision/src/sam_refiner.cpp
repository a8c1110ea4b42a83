// The sam refiner: boxes (and points) as prompts, the best of three masks per box, scores.
#include <torch/torch.h>

#include <opencv2/core.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "endoked/core/error.h"
#include "endoked/core/sha256.h"
#include "endoked/vision/refine.h"
#include "endoked/vision/sam.h"

namespace endoked::vision::sam {
using at::Tensor;

namespace {

class SamRefiner final : public Refiner {
 public:
  explicit SamRefiner(const SamRefineOptions& o) : o_(o), model_(load(o)) {
    const auto& c = model_.config();
    features_.values = static_cast<int64_t>(c.prompt.dim) * c.prompt.grid * c.prompt.grid;
    // The embedding depends on the weights and on the preprocessing (its version and side).
    features_.model =
        sha256_hex("sam-image-embedding/1 side " + std::to_string(c.prompt.image_size) + " " +
                   model_.weights_sha256())
            .substr(0, 32);
    features_.about = {{"what", "SAM image embedding"},
                       {"variant", variant_name(c)},
                       {"shape", {c.prompt.dim, c.prompt.grid, c.prompt.grid}}};
  }
  std::string name() const override { return "sam"; }
  bool needs_cam() const override { return o_.point == "cam_peak"; }

  Features features() const override { return features_; }

  void compute_features(const std::vector<cv::Mat>& images,
                        const std::vector<float*>& out) const override {
    ENDOKED_CHECK(images.size() == out.size(), "sam: ", images.size(), " images, ", out.size(),
                  " outputs");
    if (images.empty()) return;
    const int side = model_.config().prompt.image_size;
    std::vector<Tensor> batch;
    for (const auto& im : images) batch.push_back(preprocess(resize_longest(im, side), side));
    const Tensor e = model_.encode(torch::cat(batch, 0)).contiguous();
    ENDOKED_CHECK(e.numel() == features_.values * static_cast<int64_t>(images.size()),
                  "sam: the encoder gave ", e.numel() / static_cast<int64_t>(images.size()),
                  " values per image, not ", features_.values);
    for (std::size_t i = 0; i < images.size(); ++i)
      std::memcpy(out[i], e[static_cast<int64_t>(i)].data_ptr<float>(),
                  static_cast<std::size_t>(features_.values) * sizeof(float));
  }

  Refined refine(const cv::Mat& image, const std::vector<Box>& boxes,
                 const cv::Mat& cam) const override {
    if (boxes.empty()) return score_mask(cv::Mat::zeros(image.size(), CV_8UC1), boxes, cam);
    std::vector<float> f(static_cast<std::size_t>(features_.values));
    compute_features({image}, {f.data()});
    return refine_with(image, boxes, cam, f.data());
  }

  Refined refine_with(const cv::Mat& image, const std::vector<Box>& boxes, const cv::Mat& cam,
                      const float* features) const override {
    const int side = model_.config().prompt.image_size;
    const std::array<int, 2> original{image.rows, image.cols};
    const auto [rh, rw] = resized_shape(image.rows, image.cols, side);
    const std::array<int, 2> rs{rh, rw};
    cv::Mat mask = cv::Mat::zeros(image.size(), CV_8UC1);
    if (boxes.empty()) return score_mask(mask, boxes, cam);
    const int64_t g = model_.config().prompt.grid;
    const Tensor embedding = torch::from_blob(const_cast<float*>(features),
                                              {1, model_.config().prompt.dim, g, g}, torch::kFloat);
    std::vector<float> xyxy, points;
    for (const auto& b : boxes) {
      // Boxes are end-exclusive pixels; SAM's are corner coordinates of the last pixel.
      xyxy.insert(xyxy.end(), {static_cast<float>(b.x0), static_cast<float>(b.y0),
                               static_cast<float>(b.x1 - 1), static_cast<float>(b.y1 - 1)});
      if (o_.point != "none") {
        cv::Point p((b.x0 + b.x1 - 1) / 2, (b.y0 + b.y1 - 1) / 2);
        if (o_.point == "cam_peak" && !cam.empty()) {
          const cv::Rect r(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
          cv::Point peak;
          cv::minMaxLoc(cam(r & cv::Rect(0, 0, cam.cols, cam.rows)), nullptr, nullptr, nullptr,
                        &peak);
          p = peak + cv::Point(b.x0, b.y0);
        }
        points.insert(points.end(), {static_cast<float>(p.x), static_cast<float>(p.y)});
      }
    }
    const auto n = static_cast<int64_t>(boxes.size());
    const Tensor box_t =
        resize_coords(torch::tensor(xyxy).view({n, 2, 2}), original, rs).view({n, 4});
    Tensor pts, labels;
    if (!points.empty()) {
      pts = resize_coords(torch::tensor(points).view({n, 1, 2}), original, rs);
      labels = torch::ones({n, 1}, torch::kLong);
    }
    const auto [sparse, dense] = model_.prompt(pts, labels, box_t, {});
    const auto [logits, iou] = model_.decode(embedding, sparse, dense, true);
    const Tensor best = iou.argmax(1);                                          // [n]
    const Tensor chosen = logits.index({torch::arange(n), best}).unsqueeze(1);  // [n, 1, h, w]
    const Tensor full = postprocess(chosen, side, rs, original).squeeze(1).contiguous();
    const Tensor stability = stability_score(full);
    double min_iou = 1, min_stability = 1, min_box_iou = 1, sum_iou = 0;
    for (int64_t i = 0; i < n; ++i) {
      const Tensor m = (full[i] > 0).to(torch::kUInt8).contiguous();
      const cv::Mat one(image.rows, image.cols, CV_8UC1, m.data_ptr());
      mask |= one;
      const double pi = iou[i][best[i].item<int64_t>()].item<double>();
      min_iou = std::min(min_iou, pi);
      sum_iou += pi;
      min_stability = std::min(min_stability, stability[i].item<double>());
      const Box mb = mask_box(one);
      min_box_iou = std::min(
          min_box_iou, mb.width() > 0 ? box_iou(mb, boxes[static_cast<std::size_t>(i)]) : 0.0);
    }
    Refined r = score_mask(mask, boxes, cam);
    r.scores["predicted_iou"] = min_iou;
    r.scores["stability"] = min_stability;
    r.scores["prompt_box_iou"] = min_box_iou;
    r.quality = std::clamp(sum_iou / static_cast<double>(n), 0.0, 1.0);
    if (min_iou < o_.min_predicted_iou)
      r.reject = "low_predicted_iou";
    else if (min_stability < o_.min_stability)
      r.reject = "unstable";
    else if (min_box_iou < o_.min_prompt_box_iou)
      r.reject = "box_disagreement";
    return r;
  }

 private:
  static Sam load(const SamRefineOptions& o) {
    ENDOKED_CHECK(!o.checkpoint.empty(),
                  "the sam refiner needs refine.options.sam.checkpoint (mobile_sam.pt, "
                  "sam_vit_b_01ec64.pth, … as published)");
    ENDOKED_CHECK(o.point == "none" || o.point == "centre" || o.point == "cam_peak",
                  "refine.options.sam.point must be none, centre or cam_peak, got '", o.point, "'");
    return Sam::load(o.checkpoint);
  }
  SamRefineOptions o_;
  Sam model_;
  Features features_;
};

}  // namespace

std::unique_ptr<Refiner> make_refiner(const SamRefineOptions& options) {
  return std::make_unique<SamRefiner>(options);
}

}  // namespace endoked::vision::sam
