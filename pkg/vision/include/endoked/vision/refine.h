#pragma once
// Refiners: boxes (+ the CAM, when there is one) → a mask, with quality scores. One interface,
// refiners registered by name (the SAM refiner registers itself the same way).
//
//   box      the boxes filled: the baseline every refiner must beat.
//   ellipse  the ellipse inscribed in each box (polyps are roughly elliptical).
//   grabcut  OpenCV GrabCut per box on a copy whose longer side is at most grabcut.size pixels,
//            the mask upscaled back: outside the box grown by grabcut.margin (a fraction of the
//            box's size) is background, the ring between probable background, the box probable
//            background outside the ellipse and probable foreground inside it (grabcut.ellipse;
//            else the whole box), the ellipse shrunk to grabcut.core of its size sure foreground
//            (so GrabCut cannot empty the box), the CAM ≥ grabcut.cam_foreground inside the box
//            foreground
//            (when a CAM is given; 0 turns it off); grabcut.iterations rounds. A box GrabCut
//            cannot start from (no background around it) falls back to its seed, and says so.
//   cam      the CAM ≥ cam.threshold inside each box (intersected with the ellipse when
//            cam.ellipse); needs the CAM.
//   sam      Segment Anything (SAM ViT-B/L/H or MobileSAM, sam.checkpoint as published; sam.h):
//            each box a prompt (plus its centre or the CAM's peak in it as a foreground point,
//            sam.point), three masks per box, the one with the highest predicted IoU kept; the
//            union over the boxes. Its own scores: predicted_iou and stability (the lowest over
//            the boxes; stability as the automatic mask generator defines it) and prompt_box_iou
//            (the kept mask's bounding box against its prompt box, lowest); its own rejects:
//            low_predicted_iou, unstable, box_disagreement (sam.min_*). quality = predicted_iou.
//
// Every refiner's result carries the same scores, so one set of acceptance rules judges them:
//   box_share   mask pixels inside the boxes / box pixels;
//   main_share  the largest component's share of the mask;
//   area        mask pixels / image pixels;
//   cam_mean    the mean CAM over the mask (−1 without a CAM);
//   ellipse_iou IoU of the mask with the boxes' inscribed ellipses;
// and `quality` in [0, 1]: cam_mean when there is a CAM, else ellipse_iou.
#include <nlohmann/json.hpp>
#include <opencv2/core/mat.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "endoked/vision/masks.h"

namespace endoked::vision {

struct GrabCutOptions {
  int iterations = 5;
  int size = 256;
  double margin = 0.25;
  bool ellipse = true;
  double core = 0.3;
  double cam_foreground = 0.8;
  template <class V>
  void visit(V& v) {
    v("iterations", iterations, "GrabCut rounds");
    v("size", size, "GrabCut runs on a copy whose longer side is at most this many pixels");
    v("margin", margin, "background starts this fraction of the box's size outside it");
    v("ellipse", ellipse, "probable foreground: the inscribed ellipse (else the whole box)");
    v("core", core,
      "the inscribed ellipse scaled by this (about its centre) is sure foreground (0: none)");
    v("cam_foreground", cam_foreground,
      "CAM at least this inside the box is sure foreground (0: do not use the CAM)");
  }
};

struct CamRefineOptions {
  double threshold = 0.5;
  bool ellipse = true;
  template <class V>
  void visit(V& v) {
    v("threshold", threshold, "mask: CAM at least this inside the box");
    v("ellipse", ellipse, "intersect with the inscribed ellipse");
  }
};

struct SamRefineOptions {
  std::string checkpoint;  // mobile_sam.pt, sam_vit_b_01ec64.pth, … (the variant is read from it)
  std::string point = "none";  // none | centre | cam_peak: a foreground point beside each box
  double min_predicted_iou = 0.5;
  double min_stability = 0.8;
  double min_prompt_box_iou = 0.5;
  template <class V>
  void visit(V& v) {
    v("checkpoint", checkpoint, "a SAM or MobileSAM checkpoint as published (torch.save file)");
    v("point", point, "beside each box prompt: none | centre | cam_peak (a foreground point)");
    v("min_predicted_iou", min_predicted_iou, "reject when SAM's predicted IoU is below this");
    v("min_stability", min_stability,
      "reject when the stability score (|logit > 1| / |logit > -1|) is below this");
    v("min_prompt_box_iou", min_prompt_box_iou,
      "reject when the mask's bounding box overlaps its prompt box less than this (IoU)");
  }
};

struct RefinerOptions {
  GrabCutOptions grabcut;
  CamRefineOptions cam;
  SamRefineOptions sam;
  template <class V>
  void visit(V& v) {
    v("grabcut", grabcut);
    v("cam", cam);
    v("sam", sam);
  }
};

struct Refined {
  cv::Mat mask;  // CV_8UC1 0/1, the image's size
  double quality = 0;
  nlohmann::json scores = nlohmann::json::object();  // box_share, main_share, area, cam_mean, …
  std::string reject;  // a refiner's own reason to reject (judge_mask reports it first), or ""
};

class Refiner {
 public:
  virtual ~Refiner() = default;
  virtual std::string name() const = 0;
  /// Whether refine() needs the CAM.
  virtual bool needs_cam() const { return false; }
  /// `image` RGB CV_8UC3; `boxes` in its pixels; `cam` CV_32FC1 in [0, 1] of the image's size,
  /// or empty. Thread-safe: a stage refines images on several threads with one refiner.
  virtual Refined refine(const cv::Mat& image, const std::vector<Box>& boxes,
                         const cv::Mat& cam) const = 0;

  /// Image features: work a refiner does once per image whatever its boxes (SAM's image
  /// embedding), done for a batch of images at once and cacheable. `values` 0: none (the default).
  struct Features {
    std::int64_t values = 0;  // floats per image
    std::string model;        // a hash of all they depend on besides the image
    nlohmann::json about = nlohmann::json::object();  // what they are (variant, shape, …)
  };
  virtual Features features() const { return {}; }
  /// The features of `images` (RGB CV_8UC3), features().values floats each into out[i]; one
  /// batched pass. Uses the calling thread's intra-op threads (torch::set_num_threads).
  virtual void compute_features(const std::vector<cv::Mat>& images,
                                const std::vector<float*>& out) const;
  /// refine() from the image's features as compute_features() gave them (or a cache of them).
  /// Thread-safe. refine(image, boxes, cam) equals compute_features then refine_with.
  virtual Refined refine_with(const cv::Mat& image, const std::vector<Box>& boxes,
                              const cv::Mat& cam, const float* features) const;
};

using RefinerFactory = std::function<std::unique_ptr<Refiner>(const RefinerOptions&)>;

/// Registers a refiner under `name` (replacing one of that name).
void register_refiner(const std::string& name, RefinerFactory factory);
/// Names of the registered refiners, sorted (box, cam, ellipse, grabcut, sam built in).
std::vector<std::string> refiner_names();
/// Throws Error naming the registered refiners when `name` is not one.
std::unique_ptr<Refiner> make_refiner(const std::string& name, const RefinerOptions& options);

/// The common scores of a mask (see the file comment) and its quality.
Refined score_mask(cv::Mat mask, const std::vector<Box>& boxes, const cv::Mat& cam);

struct MaskRules {
  double min_area = 0.005;      // mask pixels / image pixels, at least
  double max_area = 0.5;        // … at most
  double min_box_share = 0.3;   // mask pixels inside the boxes / box pixels, at least
  double min_main_share = 0.8;  // the largest component's share of the mask, at least (0: off)
  template <class V>
  void visit(V& v) {
    v("min_area", min_area, "reject a mask covering less than this fraction of the image");
    v("max_area", max_area, "reject a mask covering more than this fraction of the image");
    v("min_box_share", min_box_share, "reject a mask filling less than this share of its boxes");
    v("min_main_share", min_main_share,
      "reject a mask whose largest component is less than this share of it (0: off)");
  }
};

/// "" when accepted, else the refiner's own reject (Refined::reject) or the first rule broken:
/// empty | too_small | too_large | box_share | fragmented.
std::string judge_mask(const Refined& r, const MaskRules& rules);

}  // namespace endoked::vision
