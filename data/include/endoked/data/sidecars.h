#pragma once
// Typed sidecar schemas. A sidecar's row is a struct that lists its columns once, in a visit
// member: v(column name, member, doc). That one list
//   - writes rows into a shard (TableWriter<Row>, ImageSidecarWriter<Row>),
//   - reads them back (read_rows<Row>),
//   - and describes the layout h5py users see (layout<Row>(table): every dataset with its dtype
//     and meaning; stage outputs record it in their manifest under "columns").
// Column types: std::string (variable-length UTF-8), std::int64_t, double, Blob (packed uint8
// `<col>` with `<col>_offset` and `<col>_length` per row).
//
// Image-level sidecars (scores, boxes, masks, embeddings) are joined to the record store by
// (exam id, position of the image in the exam): their /exams table is ExamIndexRow and their
// /images rows are in exam order, `position` counting from 0 inside the exam.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "endoked/data/store.h"

namespace endoked::data {

struct Blob {
  std::string bytes;
  bool operator==(const Blob& o) const { return bytes == o.bytes; }
};

/// /exams of an image-level sidecar: the join to the record store.
struct ExamIndexRow {
  std::string id;
  std::int64_t first_image = 0;
  std::int64_t image_count = 0;
  template <class V>
  void visit(V& v) {
    v("id", id, "exam id (as in the record store)");
    v("first_image", first_image, "row of the exam's first image in /images");
    v("image_count", image_count, "images of the exam");
  }
};

/// labels sidecar, /exams (endoked label).
struct LabelsRow {
  std::string id;
  std::string labels;
  std::string polyp_present;
  std::int64_t positive = -2;
  std::int64_t polyp_count = -1;
  std::int64_t count_exact = 0;
  double confidence = 0;
  std::string labeller;
  std::string language;
  template <class V>
  void visit(V& v) {
    v("id", id, "exam id");
    v("labels", labels, "the exam's labels as JSON (evidence offsets in code points)");
    v("polyp_present", polyp_present, "positive | negative | uncertain | not_mentioned");
    v("positive", positive, "1 positive, 0 negative, -1 uncertain, -2 not mentioned");
    v("polyp_count", polyp_count, "polyps found, -1 when unknown");
    v("count_exact", count_exact, "1 exact, 0 'at least'");
    v("confidence", confidence, "confidence of polyp_present in [0, 1]");
    v("labeller", labeller, "rules | llm | ensemble");
    v("language", language, "en | zh");
  }
};

/// The first two columns of every image-level sidecar row: where the image is.
struct ImageKey {
  std::int64_t exam = 0;
  std::int64_t position = 0;
  template <class V>
  void visit_key(V& v) {
    v("exam", exam, "row of the exam in /exams");
    v("position", position, "position of the image in its exam (0-based)");
  }
};

/// scores sidecar, /images (MIL): one score per image. −1 in the score columns: not scored
/// (the image could not be decoded).
struct ScoreRow : ImageKey {
  double score = 0;
  double attention = 0;
  double teacher_attention = 0;
  double teacher_dsmil = 0;
  std::int64_t rank = 0;
  std::int64_t exam_label = -1;
  std::int64_t selected = -1;
  template <class V>
  void visit(V& v) {
    visit_key(v);
    v("score", score, "probability that the image shows a polyp (the MIL student)");
    v("attention", attention, "the attention-MIL weight of the image in its exam's bag");
    v("teacher_attention", teacher_attention,
      "attention-MIL instance score, min-max normalised over the training images");
    v("teacher_dsmil", teacher_dsmil,
      "DSMIL instance score, min-max normalised over the training images");
    v("rank", rank, "rank of the score within its exam (0: highest)");
    v("exam_label", exam_label, "the exam's bag label: 1, 0, or -1 (not a training bag)");
    v("selected", selected, "localisation: 1 positive, 0 negative, -1 not selected (mil.select)");
  }
};

/// boxes sidecar, /images (localise): boxes in original-image pixels.
struct BoxesRow : ImageKey {
  std::string status = "not_candidate";
  std::string boxes = "[]";
  std::int64_t count = 0;
  double cam_score = 0;
  double area = 0;
  std::int64_t components = 0;
  Blob cam;
  template <class V>
  void visit(V& v) {
    visit_key(v);
    v("status", status,
      "accepted | not_candidate | the reject reason (no_foreground, border, too_small, "
      "too_large, components)");
    v("boxes", boxes, "JSON [[x0, y0, x1, y1, score], …] in pixels, end-exclusive (accepted)");
    v("count", count, "number of boxes");
    v("cam_score", cam_score, "mean CAM inside the box's component");
    v("area", area, "the largest CAM component's fraction of the image");
    v("components", components, "CAM components above the threshold");
    v("cam", cam, "the CAM as an 8-bit PNG of the image's size (empty unless saved)");
  }
};

/// boxes sidecar, /rejects: the candidates whose CAM gave no acceptable box.
struct BoxRejectRow : ImageKey {
  std::string reason;
  std::string box = "[]";
  double area = 0;
  std::int64_t components = 0;
  template <class V>
  void visit(V& v) {
    visit_key(v);
    v("reason", reason, "no_foreground | border | too_small | too_large | components");
    v("box", box, "JSON [x0, y0, x1, y1]: the largest component's box ([] when none)");
    v("area", area, "the largest component's fraction of the image");
    v("components", components, "CAM components above the threshold");
  }
};

/// masks sidecar, /images (refine, distill): a 1-bit PNG per refined image.
struct MaskRow : ImageKey {
  std::string status = "no_box";
  Blob mask;
  double quality = 0;
  std::string refiner;
  std::string boxes = "[]";
  std::string scores = "{}";
  template <class V>
  void visit(V& v) {
    visit_key(v);
    v("status", status,
      "accepted | no_box | the reject reason (empty, too_small, too_large, box_share, "
      "fragmented)");
    v("mask", mask, "PNG, 0/255 when decoded to 8 bits, the image's size (empty: no_box)");
    v("quality", quality, "the refiner's quality estimate in [0, 1]");
    v("refiner", refiner, "the refiner that made the mask");
    v("boxes", boxes, "JSON [[x0, y0, x1, y1, score], …]: the boxes it started from");
    v("scores", scores, "JSON: box_share, main_share, area, components, cam_mean, ellipse_iou");
  }
};

/// embeddings sidecar, /images (pretrain): one float32 vector per image.
struct EmbeddingRow : ImageKey {
  Blob embedding;
  std::int64_t dim = 0;
  template <class V>
  void visit(V& v) {
    visit_key(v);
    v("embedding", embedding, "dim float32 values, little-endian");
    v("dim", dim, "embedding length");
  }
};

namespace detail {

class RowWriter {
 public:
  RowWriter(ShardWriter& w, const std::string& table) : w_(w), table_(table) {}
  void operator()(const char* name, const std::string& v, const char* = "") {
    w_.add_string(table_, name, v);
  }
  void operator()(const char* name, const std::int64_t& v, const char* = "") {
    w_.add_int(table_, name, v);
  }
  void operator()(const char* name, const double& v, const char* = "") {
    w_.add_float(table_, name, v);
  }
  void operator()(const char* name, const Blob& v, const char* = "") {
    w_.add_blob(table_, name, v.bytes);
  }

 private:
  ShardWriter& w_;
  const std::string& table_;
};

class RowReader {
 public:
  RowReader(ShardReader& r, const std::string& table, std::int64_t row)
      : r_(r), table_(table), row_(static_cast<std::size_t>(row)) {}
  void operator()(const char* name, std::string& v, const char* = "") {
    v = r_.strings(table_, name).at(row_);
  }
  void operator()(const char* name, std::int64_t& v, const char* = "") {
    v = r_.ints(table_, name).at(row_);
  }
  void operator()(const char* name, double& v, const char* = "") {
    v = r_.floats(table_, name).at(row_);
  }
  void operator()(const char* name, Blob& v, const char* = "") {
    v.bytes = r_.blob(table_, name, static_cast<std::int64_t>(row_));
  }

 private:
  ShardReader& r_;
  const std::string& table_;
  std::size_t row_;
};

class Declarer {
 public:
  Declarer(ShardWriter& w, const std::string& table) : w_(w), table_(table) {}
  template <typename T>
  void operator()(const char* name, const T&, const char* = "") {
    w_.declare(table_, name,
               std::is_same_v<T, std::string>    ? 's'
               : std::is_same_v<T, std::int64_t> ? 'i'
               : std::is_same_v<T, double>       ? 'f'
                                                 : 'b');
  }

 private:
  ShardWriter& w_;
  const std::string& table_;
};

class LayoutWriter {
 public:
  explicit LayoutWriter(const std::string& table) : table_(table) {}
  template <typename T>
  void operator()(const char* name, const T&, const char* doc = "") {
    const std::string path = table_ + "/" + name;
    if constexpr (std::is_same_v<T, Blob>) {
      out_.push_back({{"dataset", path}, {"dtype", "uint8 (packed)"}, {"doc", doc}});
      out_.push_back(
          {{"dataset", path + "_offset"}, {"dtype", "int64"}, {"doc", "start in " + path}});
      out_.push_back(
          {{"dataset", path + "_length"}, {"dtype", "int64"}, {"doc", "bytes in " + path}});
    } else {
      const char* dtype = std::is_same_v<T, std::string> ? "string (UTF-8, variable length)"
                          : std::is_same_v<T, double>    ? "float64"
                                                         : "int64";
      out_.push_back({{"dataset", path}, {"dtype", dtype}, {"doc", doc}});
    }
  }
  nlohmann::json take() { return std::move(out_); }

 private:
  std::string table_;
  nlohmann::json out_ = nlohmann::json::array();
};

}  // namespace detail

/// Appends rows of one table of a shard.
template <class Row>
class TableWriter {
 public:
  TableWriter(ShardWriter& shard, std::string table) : shard_(shard), table_(std::move(table)) {}
  /// Creates every column now, so the table is written even if it gets no rows.
  void declare() {
    detail::Declarer d(shard_, table_);
    Row row;
    row.visit(d);
  }
  void add(const Row& row) {
    detail::RowWriter w(shard_, table_);
    const_cast<Row&>(row).visit(w);
  }

 private:
  ShardWriter& shard_;
  std::string table_;
};

/// Writes an image-level sidecar exam by exam: the /exams join rows and the /images rows, with
/// `exam` and `position` filled in.
template <class Row>
class ImageSidecarWriter {
 public:
  explicit ImageSidecarWriter(ShardWriter& shard)
      : exams_(shard, "exams"), images_(shard, "images") {}
  void add_exam(const std::string& id, std::vector<Row> images) {
    exams_.add({id, next_image_, static_cast<std::int64_t>(images.size())});
    for (std::size_t k = 0; k < images.size(); ++k) {
      images[k].exam = next_exam_;
      images[k].position = static_cast<std::int64_t>(k);
      images_.add(images[k]);
    }
    next_image_ += static_cast<std::int64_t>(images.size());
    ++next_exam_;
  }

 private:
  TableWriter<ExamIndexRow> exams_;
  TableWriter<Row> images_;
  std::int64_t next_exam_ = 0, next_image_ = 0;
};

/// Every row of `table` in a shard.
template <class Row>
std::vector<Row> read_rows(ShardReader& shard, const std::string& table) {
  std::vector<Row> out(static_cast<std::size_t>(shard.rows(table)));
  for (std::size_t i = 0; i < out.size(); ++i) {
    detail::RowReader r(shard, table, static_cast<std::int64_t>(i));
    out[i].visit(r);
  }
  return out;
}

/// The datasets `Row` gives `table` as h5py sees them: [{"dataset", "dtype", "doc"}, …].
template <class Row>
nlohmann::json layout(const std::string& table) {
  detail::LayoutWriter w(table);
  Row row;
  row.visit(w);
  return w.take();
}

/// The layout of an image-level sidecar: its /exams join table and its /images rows.
template <class Row>
nlohmann::json image_sidecar_layout() {
  nlohmann::json j = layout<ExamIndexRow>("exams");
  for (auto& c : layout<Row>("images")) j.push_back(std::move(c));
  return j;
}

}  // namespace endoked::data
