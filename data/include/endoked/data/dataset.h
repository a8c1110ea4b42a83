#pragma once
// Datasets over a record store plus sidecar stores.
//
// A sidecar (the synthetic truth store; later the labels, boxes and masks sidecars) is joined
// to the record store by (exam id, position of the image within the exam), so its rows need not
// be in the same order or shards. An item is an image (unit "image") or an exam's bag of images
// (unit "exam"). Items can be filtered by integer labels read from sidecar columns.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "endoked/data/transforms.h"

namespace endoked::data {

struct DatasetOptions {
  std::string store;                  // the record store
  std::string unit = "image";         // image | exam
  std::vector<std::string> sidecars;  // stores joined by (exam id, position in exam)
  std::string mask_column;            // "images/mask": a blob column of a sidecar
  std::string boxes_column;           // "images/boxes": JSON [[x0, y0, x1, y1(, label)], …]
  std::vector<std::string>
      label_columns;  // numeric columns (labels, scores) of a sidecar: "images/has_polyp",
                      // "exams/report_positive" (exam unit: exams/ only)
  std::vector<std::string> filter;  // "has_polyp == 1"; ops == != < <= > >=
  bool pixels = true;  // false: read() leaves the image bytes out (boxes, masks, labels only)

  template <class V>
  void visit(V& v) {
    v("store", store, "record store directory");
    v("unit", unit, "image | exam (a bag of an exam's images)");
    v("sidecars", sidecars, "stores joined by (exam id, image position)");
    v("mask_column", mask_column, "sidecar blob column holding masks (e.g. images/mask)");
    v("boxes_column", boxes_column, "sidecar JSON column holding boxes (e.g. images/boxes)");
    v("label_columns", label_columns, "sidecar numeric columns (labels, scores) as table/column");
    v("filter", filter, "conditions on labels, all must hold: 'has_polyp == 1'");
    v("pixels", pixels, "false: items carry no image bytes (boxes, masks and labels only)");
  }
};

/// One image of an item, as stored (decoding is the loader's job).
struct RawImage {
  std::string bytes;
  int width = 0;
  int height = 0;
  std::string mask_bytes;  // empty when no mask column
  std::vector<Box> boxes;
  std::string id;  // source path ("EX0000001/003.jpg")
  std::int64_t image_index = -1;
  std::map<std::string, double> labels;  // image-level labels
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual std::int64_t size() const = 0;
  /// The images of item `index` (one for unit image, the bag for unit exam). Thread-safe.
  virtual std::vector<RawImage> read(std::int64_t index) const = 0;
  /// Item-level labels (the image's for unit image, the exam's for unit exam).
  virtual std::map<std::string, double> labels(std::int64_t index) const = 0;
  /// True when every item is exactly one image (unit "image"): the loader then writes samples
  /// straight into the batch tensor.
  virtual bool single_image() const { return false; }
  /// A name for messages ("EX0000001" or "EX0000001/003.jpg").
  virtual std::string item_id(std::int64_t index) const = 0;
};

std::shared_ptr<Dataset> make_dataset(const DatasetOptions& options);

/// Images of `base` (a unit-image dataset) picked by global index, each with the label "target"
/// (0 when `targets` is empty). The training stages' selections (localise's positives and
/// negatives, distill's accepted masks).
class ImageSubset final : public Dataset {
 public:
  ImageSubset(std::shared_ptr<const Dataset> base, std::vector<std::int64_t> images,
              std::vector<float> targets = {})
      : base_(std::move(base)), images_(std::move(images)), targets_(std::move(targets)) {}
  std::int64_t size() const override { return static_cast<std::int64_t>(images_.size()); }
  std::vector<RawImage> read(std::int64_t i) const override { return base_->read(image(i)); }
  std::map<std::string, double> labels(std::int64_t i) const override {
    return {{"target", targets_.empty() ? 0.0 : targets_.at(static_cast<std::size_t>(i))}};
  }
  bool single_image() const override { return true; }
  std::string item_id(std::int64_t i) const override { return base_->item_id(image(i)); }
  /// The global image index of item `i`.
  std::int64_t image(std::int64_t i) const { return images_.at(static_cast<std::size_t>(i)); }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<std::int64_t> images_;
  std::vector<float> targets_;
};

/// A boxes column's text: JSON [[x0, y0, x1, y1(, extra)], …] → one array per box (extra = 0 when
/// absent: a label in a truth sidecar, a score in a boxes sidecar). Throws Error naming `where`.
std::vector<std::array<double, 5>> parse_box_list(const std::string& text,
                                                  const std::string& where);

}  // namespace endoked::data
