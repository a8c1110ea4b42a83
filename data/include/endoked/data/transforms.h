#pragma once
// Transforms: plain per-image functions, and sample-level transforms that apply them to the
// image, its mask and its boxes together (the MONAI split). Geometric transforms are affine maps
// applied once to the image (bilinear), the mask (nearest) and the box corners.
//
// Randomness comes only from the Rng passed in, which the loader derives from
// (seed, epoch, sample index): a sample is augmented the same way whatever the worker count or
// world size. Random draws are made in coordinates relative to the image size, so a JPEG decoded
// at 1/2 or 1/4 scale (DCT scaling) is cropped and flipped at the same relative place.
#include <cstdint>
#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "endoked/core/seed.h"

namespace endoked::data {

/// A box in pixel coordinates of the sample's current image: [x0, x1) × [y0, y1).
struct Box {
  float x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int label = 0;
};

/// One sample as it moves through the transforms.
struct Sample {
  cv::Mat image;  // RGB: CV_8UC3 after decode; CV_32FC3 after Normalise
  cv::Mat mask;   // CV_8UC1, same size as image; empty when the dataset has none
  std::vector<Box> boxes;
  std::map<std::string, double> labels;
  std::int64_t index = -1;  // index in the dataset
  std::string id;           // image id (exam/file) for messages
};

// ---------------- per-image functions ----------------

/// Mirrors boxes in an image of the given size (horizontal: x → W − x; else y → H − y).
void flip_boxes(std::vector<Box>& boxes, cv::Size size, bool horizontal);

/// out = M · [x, y, 1]ᵀ for every output pixel's source (cv::warpAffine semantics, M maps
/// input → output). Border: constant 0.
cv::Mat warp(const cv::Mat& image, const cv::Matx23d& m, cv::Size out, int interpolation);
/// The box enclosing the four mapped corners, clipped to [0, out); empty boxes are dropped by
/// the caller.
Box map_box(const Box& b, const cv::Matx23d& m, cv::Size out);
/// Brightness/contrast/saturation factors (1 = unchanged) and hue shift in [-0.5, 0.5] turns,
/// in place on 8-bit RGB.
void adjust_colour(cv::Mat& rgb, double brightness, double contrast, double saturation, double hue);
/// 8-bit RGB → float RGB, (x/255 − mean) / std per channel.
cv::Mat normalise(const cv::Mat& rgb, const cv::Vec3f& mean, const cv::Vec3f& std);

// ---------------- sample-level transforms ----------------

class Transform {
 public:
  virtual ~Transform() = default;
  virtual std::string name() const = 0;
  virtual void apply(Sample& sample, Rng& rng) const = 0;
  /// For decode planning: a transform that fixes the output size returns the size its input
  /// must have (in pixels of an input of size `in`) to lose no detail; others return {0, 0}.
  virtual cv::Size2d needed_input(cv::Size2d in) const { return {0, 0}; }
};

/// Applies an affine map to image, mask and boxes; boxes that leave the image are dropped.
void apply_affine(Sample& sample, const cv::Matx23d& m, cv::Size out);

/// What YAML lists: {name: resize, size: [224, 224]}, {name: hflip, p: 0.5}, …
/// Names: resize, random_resized_crop, hflip, vflip, rotate, colour_jitter, normalise.
struct TransformSpec {
  std::string name;
  std::vector<int> size;                  // [width, height]
  double p = 0.5;                         // flips, rotate
  std::vector<double> scale = {0.08, 1};  // random_resized_crop: area fraction
  std::vector<double> ratio = {0.75, 4.0 / 3.0};
  double degrees = 15;  // rotate: uniform in [-degrees, degrees]
  double brightness = 0, contrast = 0, saturation = 0, hue = 0;  // colour_jitter
  std::vector<double> mean = {0.485, 0.456, 0.406};              // normalise
  std::vector<double> std = {0.229, 0.224, 0.225};

  /// Whether `key` is a parameter of this transform (every key while the name is empty, as in
  /// --help). Decoding lists only the named transform's keys, so another transform's parameter
  /// ({name: hflip, degrees: 30}) is an unknown key naming file:line:col.
  bool takes(const std::string& key) const;

  template <class V>
  void visit(V& v) {
    v("name", name, "transform name");
    if (takes("size")) v("size", size, "[width, height] (resize, random_resized_crop)");
    if (takes("p")) v("p", p, "probability (hflip, vflip, rotate)");
    if (takes("scale")) v("scale", scale, "random_resized_crop: [min, max] area fraction");
    if (takes("ratio")) v("ratio", ratio, "random_resized_crop: [min, max] aspect ratio");
    if (takes("degrees")) v("degrees", degrees, "rotate: maximum angle");
    if (takes("brightness"))
      v("brightness", brightness, "colour_jitter: factor drawn in [1-b, 1+b]");
    if (takes("contrast")) v("contrast", contrast, "colour_jitter");
    if (takes("saturation")) v("saturation", saturation, "colour_jitter");
    if (takes("hue")) v("hue", hue, "colour_jitter: shift drawn in [-h, h] turns (≤ 0.5)");
    if (takes("mean")) v("mean", mean, "normalise: per-channel mean (of x/255)");
    if (takes("std")) v("std", std, "normalise: per-channel std");
  }
};

std::unique_ptr<Transform> make_transform(const TransformSpec& spec);

/// An ordered list of transforms.
class Pipeline {
 public:
  Pipeline() = default;
  explicit Pipeline(const std::vector<TransformSpec>& specs);
  void add(std::unique_ptr<Transform> t) { transforms_.push_back(std::move(t)); }
  void apply(Sample& sample, Rng& rng) const;
  /// The smallest decoded size (w, h) that loses no output detail for an original of
  /// `width` × `height`: set by the first transform that fixes the size; {0, 0} (full size)
  /// when none does.
  cv::Size decode_size(int width, int height) const;
  bool empty() const { return transforms_.empty(); }
  /// When the last transform is normalise, removes it and returns its mean/std so that the
  /// caller can fuse it with the layout change to CHW (one pass instead of two).
  bool pop_normalise(cv::Vec3f& mean, cv::Vec3f& std);
  /// When the last transform is a horizontal flip, removes it and returns its probability
  /// (else a negative number). The caller then draws rng.bernoulli(p) after apply() — the same
  /// draw the flip would have made — and mirrors while copying out (the loader's CHW writer).
  double pop_final_hflip();

 private:
  std::vector<std::unique_ptr<Transform>> transforms_;
};

}  // namespace endoked::data
