#pragma once
// Boxes and masks: geometry, COCO run-length encoding, mask PNGs and the segmentation metrics.
//
// Masks are cv::Mat CV_8UC1 holding 0/1, the image's size. Boxes are pixel boxes, end-exclusive
// ([x0, x1) × [y0, y1)).
//
//   rle_encode / rle_decode — COCO's RLE: the mask read column by column (Fortran order), counts
//     of alternating runs starting with zeros (a mask starting with a 1 begins with a 0 count);
//     rle_counts_string / rle_counts_parse — the compressed "counts" string pycocotools writes
//     (each count after the second as the difference to the count two before, 5 bits per
//     character from '0', 0x20 marks "more", 0x10 the sign of the last group).
//   segmentation_score — Dice and IoU of one image as the PraNet evaluation computes them: the
//     prediction (any depth) is resized to the truth's size (bilinear), min–max normalised
//     ((p − min) / (max − min + 1e-8)) and binarised at 0.5 (p > 0.5); the truth is > 127 when
//     it is 8-bit 0..255, > 0 when its values are 0/1. Dice = 2|P∩T| / (|P| + |T|),
//     IoU = |P∩T| / |P∪T|; both empty counts as a perfect 1.
#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace endoked::vision {

struct Box {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  double score = 0;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
  bool empty() const { return x1 <= x0 || y1 <= y0; }
  std::int64_t area() const { return empty() ? 0 : static_cast<std::int64_t>(width()) * height(); }
};

/// Intersection over union of two boxes (0 when both are empty).
double box_iou(const Box& a, const Box& b);

/// The bounding box of a mask's nonzero pixels (empty when there are none).
Box mask_box(const cv::Mat& mask);

/// The 8-connected components of a mask's nonzero pixels, largest first.
struct Component {
  Box box;
  std::int64_t area = 0;
};
std::vector<Component> components(const cv::Mat& mask);

/// The box filled with 1 in a height × width mask (clipped to it).
cv::Mat box_mask(int height, int width, const Box& box);

/// The ellipse inscribed in the box, filled with 1.
cv::Mat ellipse_mask(int height, int width, const Box& box);

struct Rle {
  int height = 0, width = 0;
  std::vector<std::uint32_t> counts;
};
Rle rle_encode(const cv::Mat& mask);
/// Throws Error when the counts do not add up to height × width.
cv::Mat rle_decode(const Rle& rle);
std::string rle_counts_string(const std::vector<std::uint32_t>& counts);
/// Throws Error naming `where` on a malformed string.
std::vector<std::uint32_t> rle_counts_parse(std::string_view s, const std::string& where);

/// A 1-bit PNG of the mask (decodes to 0/255 at 8 bits).
std::string encode_mask_png(const cv::Mat& mask);
/// An 8-bit PNG of a map in [0, 1] (a CAM): value × 255, rounded.
std::string encode_map_png(const cv::Mat& map);
/// Decodes a mask image (PNG, JPEG, …; colour is read as grey) to 0/1 with the truth rule of
/// segmentation_score. Throws Error naming `where` when it does not decode.
cv::Mat decode_mask(std::string_view bytes, const std::string& where);
/// Decodes a CAM PNG (encode_map_png) to a float map in [0, 1]; empty bytes → an empty Mat.
/// Throws Error naming `where` when it does not decode.
cv::Mat decode_cam(std::string_view png, const std::string& where);
/// A boxes column's JSON ([[x0, y0, x1, y1(, score)], …]) as boxes (data::parse_box_list).
std::vector<Box> parse_boxes(const std::string& text, const std::string& where);

struct SegmentationScore {
  double dice = 0, iou = 0;
};
SegmentationScore segmentation_score(const cv::Mat& prediction, const cv::Mat& truth);

/// The truth rule alone: 0/1 from an 8-bit mask (> 127, or > 0 when its maximum is 1).
cv::Mat binarise_truth(const cv::Mat& truth);
/// The prediction rule alone: resized to `size` (bilinear), min–max normalised, > 0.5 → 0/1.
cv::Mat binarise_prediction(const cv::Mat& prediction, cv::Size size);

/// Object-level agreement of two 0/1 masks: the boxes of their 8-connected components matched
/// greedily (highest IoU first) at IoU ≥ `iou`; box_iou is the IoU of the two masks' bounding
/// boxes (1 when both are empty).
struct Detection {
  int predicted = 0, truth = 0, matched = 0;
  double box_iou = 0;
};
Detection detect(const cv::Mat& prediction, const cv::Mat& truth, double iou = 0.5);

/// A predicted box in image `image` with its confidence.
struct ScoredBox {
  std::int64_t image = 0;
  Box box;
  double score = 0;
};
/// Average precision at box IoU ≥ `iou` over images: predictions taken in descending score (ties
/// in the given order), each a true positive when the unmatched truth box of its image it
/// overlaps most reaches `iou` (COCO's greedy matching); the area under the precision–recall
/// curve with precision made monotone (PASCAL VOC 2010+ all-point interpolation). `truth[i]`:
/// image i's boxes. 0 when there is no truth box.
double average_precision(std::vector<ScoredBox> predicted,
                         const std::vector<std::vector<Box>>& truth, double iou = 0.5);

}  // namespace endoked::vision
