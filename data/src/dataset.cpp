#include "endoked/data/dataset.h"
#include "h5.h"

#include <nlohmann/json.hpp>

#include <mutex>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "endoked/core/error.h"
#include "endoked/data/store.h"

namespace endoked::data {
namespace {

// "images/has_polyp" → {"images", "has_polyp"}
std::pair<std::string, std::string> split_column(const std::string& c) {
  const auto slash = c.find('/');
  ENDOKED_CHECK(slash != std::string::npos && slash > 0 && slash + 1 < c.size(), "column '", c,
                "' must be <table>/<column> (images/… or exams/…)");
  return {c.substr(0, slash), c.substr(slash + 1)};
}

struct Condition {
  std::string label, op;
  double value = 0;
  bool holds(double v) const {
    if (op == "==") return v == value;
    if (op == "!=") return v != value;
    if (op == "<") return v < value;
    if (op == "<=") return v <= value;
    if (op == ">") return v > value;
    return v >= value;
  }
};

Condition parse_condition(const std::string& text) {
  std::istringstream in(text);
  Condition c;
  in >> c.label >> c.op >> c.value;
  static const char* kOps[] = {"==", "!=", "<", "<=", ">", ">="};
  bool known = false;
  for (const char* o : kOps) known = known || c.op == o;
  ENDOKED_CHECK(!in.fail() && known, "filter '", text,
                "' must read '<label> <op> <number>' with op one of == != < <= > >=");
  return c;
}

// A sidecar store joined to the records by (exam id, position in exam).
struct Sidecar {
  std::string dir;
  Manifest manifest;
  std::vector<std::unique_ptr<ShardReader>> shards;
  std::unordered_map<std::string, std::pair<std::int32_t, std::int64_t>>
      exam_at;  // id → (shard, row)

  explicit Sidecar(const std::string& d) : dir(d), manifest(Manifest::load(d)) {
    for (std::size_t s = 0; s < manifest.shards.size(); ++s) {
      shards.push_back(std::make_unique<ShardReader>(dir + "/" + manifest.shards[s].file));
      const auto& ids = shards.back()->strings("exams", "id");
      for (std::size_t i = 0; i < ids.size(); ++i)
        exam_at.emplace(ids[i],
                        std::make_pair(static_cast<std::int32_t>(s), static_cast<std::int64_t>(i)));
    }
  }
  bool has(const std::string& table, const std::string& column) const {
    return !shards.empty() && shards[0]->has(table, column);
  }
};

class StoreDataset final : public Dataset {
 public:
  explicit StoreDataset(const DatasetOptions& o) : options_(o), store_(o.store) {
    ENDOKED_CHECK(o.unit == "image" || o.unit == "exam",
                  "dataset.unit must be image or exam, got '", o.unit, "'");
    exam_unit_ = o.unit == "exam";
    spans_ = store_.exam_spans();
    const std::int64_t n_images = store_.image_count();
    image_exam_.resize(static_cast<std::size_t>(n_images));
    for (std::size_t e = 0; e < spans_.size(); ++e)
      for (std::int64_t k = 0; k < spans_[e].image_count; ++k)
        image_exam_[static_cast<std::size_t>(spans_[e].first_image + k)] =
            static_cast<std::int64_t>(e);

    for (const auto& d : o.sidecars) sidecars_.push_back(std::make_unique<Sidecar>(d));
    // Join every exam once: (sidecar, exam) → (shard, exam row).
    join_.assign(sidecars_.size(),
                 std::vector<std::pair<std::int32_t, std::int64_t>>(spans_.size(), {-1, -1}));
    for (std::size_t s = 0; s < sidecars_.size(); ++s)
      for (std::size_t e = 0; e < spans_.size(); ++e) {
        auto it = sidecars_[s]->exam_at.find(spans_[e].id);
        if (it != sidecars_[s]->exam_at.end()) join_[s][e] = it->second;
      }
    if (!o.mask_column.empty()) mask_ = find_column(o.mask_column);
    if (!o.boxes_column.empty()) boxes_ = find_column(o.boxes_column);
    for (const auto& c : o.label_columns) load_labels(c);

    const std::int64_t n_items = exam_unit_ ? static_cast<std::int64_t>(spans_.size()) : n_images;
    std::vector<Condition> conditions;
    for (const auto& f : o.filter) conditions.push_back(parse_condition(f));
    for (const auto& c : conditions)
      ENDOKED_CHECK(item_labels_.count(c.label), "filter '", c.label, " ", c.op,
                    "': no such label (label_columns give ", item_labels_.size(), " labels)");
    for (std::int64_t i = 0; i < n_items; ++i) {
      bool keep = true;
      for (const auto& c : conditions)
        keep = keep && c.holds(item_labels_.at(c.label)[static_cast<std::size_t>(i)]);
      if (keep) items_.push_back(i);
    }
  }

  std::int64_t size() const override { return static_cast<std::int64_t>(items_.size()); }

  std::vector<RawImage> read(std::int64_t index) const override {
    const std::int64_t item = item_at(index);
    std::vector<RawImage> out;
    if (exam_unit_) {
      const auto& span = spans_[static_cast<std::size_t>(item)];
      for (std::int64_t k = 0; k < span.image_count; ++k)
        out.push_back(read_image(span.first_image + k));
    } else {
      out.push_back(read_image(item));
    }
    return out;
  }

  std::map<std::string, double> labels(std::int64_t index) const override {
    const std::int64_t item = item_at(index);
    std::map<std::string, double> out;
    for (const auto& [name, values] : item_labels_)
      out[name] = values[static_cast<std::size_t>(item)];
    return out;
  }

  bool single_image() const override { return !exam_unit_; }

  std::string item_id(std::int64_t index) const override {
    const std::int64_t item = item_at(index);
    if (exam_unit_) return spans_[static_cast<std::size_t>(item)].id;
    const auto& span =
        spans_[static_cast<std::size_t>(image_exam_[static_cast<std::size_t>(item)])];
    return span.id + "#" + std::to_string(item - span.first_image);
  }

 private:
  struct ColumnRef {
    std::size_t sidecar;
    std::string table, column;
  };

  std::int64_t item_at(std::int64_t index) const {
    ENDOKED_CHECK(index >= 0 && index < size(), "dataset index ", index, " outside [0, ", size(),
                  ")");
    return items_[static_cast<std::size_t>(index)];
  }

  ColumnRef find_column(const std::string& full) const {
    const auto [table, column] = split_column(full);
    for (std::size_t s = 0; s < sidecars_.size(); ++s)
      if (sidecars_[s]->has(table, column)) return {s, table, column};
    ENDOKED_FAIL("no sidecar has column '", full, "' (sidecars: ", sidecars_.size(), ")");
  }

  // Shard and row of image `g` in sidecar `s`; throws naming the exam when the join fails.
  std::pair<std::int32_t, std::int64_t> image_row(std::size_t s, std::int64_t g) const {
    const std::int64_t e = image_exam_[static_cast<std::size_t>(g)];
    const auto [shard, exam_row] = join_[s][static_cast<std::size_t>(e)];
    ENDOKED_CHECK(shard >= 0, "sidecar '", sidecars_[s]->dir, "' has no exam '",
                  spans_[static_cast<std::size_t>(e)].id, "'");
    const std::int64_t k = g - spans_[static_cast<std::size_t>(e)].first_image;
    ShardReader& r = *sidecars_[s]->shards[static_cast<std::size_t>(shard)];
    const std::int64_t first = r.ints("exams", "first_image")[static_cast<std::size_t>(exam_row)];
    const std::int64_t count = r.ints("exams", "image_count")[static_cast<std::size_t>(exam_row)];
    ENDOKED_CHECK(k < count, "sidecar '", sidecars_[s]->dir, "': exam '",
                  spans_[static_cast<std::size_t>(e)].id, "' has ", count,
                  " images, the store has more");
    return {shard, first + k};
  }

  // Numeric column of one sidecar shard as doubles (ints or floats), cached while labels load.
  const std::vector<double>& column_values(std::size_t sidecar, std::size_t shard,
                                           const std::string& table, const std::string& column) {
    const std::string key =
        std::to_string(sidecar) + "/" + std::to_string(shard) + "/" + table + "/" + column;
    auto it = numbers_.find(key);
    if (it == numbers_.end())
      it = numbers_.emplace(key, sidecars_[sidecar]->shards[shard]->numbers(table, column)).first;
    return it->second;
  }

  void load_labels(const std::string& full) {
    const ColumnRef c = find_column(full);
    ENDOKED_CHECK(!(exam_unit_ && c.table == "images"), "label column '", full,
                  "': an exam dataset takes exam labels (exams/…)");
    Sidecar& sc = *sidecars_[c.sidecar];
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    const std::size_t n = exam_unit_ ? spans_.size() : image_exam_.size();
    std::vector<double> values(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (c.table == "exams") {
        const std::size_t e = exam_unit_ ? i : static_cast<std::size_t>(image_exam_[i]);
        const auto [shard, row] = join_[c.sidecar][e];
        ENDOKED_CHECK(shard >= 0, "sidecar '", sc.dir, "' has no exam '", spans_[e].id, "'");
        values[i] = column_values(c.sidecar, static_cast<std::size_t>(shard), "exams",
                                  c.column)[static_cast<std::size_t>(row)];
      } else {
        const auto [shard, row] = image_row(c.sidecar, static_cast<std::int64_t>(i));
        values[i] = column_values(c.sidecar, static_cast<std::size_t>(shard), "images",
                                  c.column)[static_cast<std::size_t>(row)];
      }
    }
    numbers_.clear();
    const std::string name = c.column;
    if (c.table == "images") image_labels_[name] = values;
    item_labels_[name] = std::move(values);
  }

  RawImage read_image(std::int64_t g) const {
    ImageRecord rec = const_cast<RecordStore&>(store_).image(g, options_.pixels);
    RawImage im;
    im.bytes = std::move(rec.bytes);
    im.width = rec.width;
    im.height = rec.height;
    im.id = rec.source_path;
    im.image_index = g;
    for (const auto& [name, values] : image_labels_)
      im.labels[name] = values[static_cast<std::size_t>(g)];
    if (mask_) {
      Sidecar& sc = *sidecars_[mask_->sidecar];
      std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
      const auto [shard, row] = image_row(mask_->sidecar, g);
      im.mask_bytes =
          sc.shards[static_cast<std::size_t>(shard)]->blob(mask_->table, mask_->column, row);
    }
    if (boxes_) {
      Sidecar& sc = *sidecars_[boxes_->sidecar];
      std::string text;
      {
        std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
        const auto [shard, row] = image_row(boxes_->sidecar, g);
        text = sc.shards[static_cast<std::size_t>(shard)]->strings(
            boxes_->table, boxes_->column)[static_cast<std::size_t>(row)];
      }
      for (const auto& b : parse_box_list(text, "boxes of image '" + im.id + "'"))
        im.boxes.push_back({static_cast<float>(b[0]), static_cast<float>(b[1]),
                            static_cast<float>(b[2]), static_cast<float>(b[3]),
                            static_cast<int>(b[4])});
    }
    return im;
  }

  DatasetOptions options_;
  mutable RecordStore store_;
  bool exam_unit_ = false;
  std::vector<RecordStore::ExamSpan> spans_;
  std::vector<std::int64_t> image_exam_;  // global image → exam index
  std::vector<std::unique_ptr<Sidecar>> sidecars_;
  std::vector<std::vector<std::pair<std::int32_t, std::int64_t>>> join_;
  std::optional<ColumnRef> mask_, boxes_;
  std::map<std::string, std::vector<double>> item_labels_, image_labels_;
  std::vector<std::int64_t> items_;
  std::map<std::string, std::vector<double>> numbers_;  // only while loading labels
};

}  // namespace

std::shared_ptr<Dataset> make_dataset(const DatasetOptions& options) {
  return std::make_shared<StoreDataset>(options);
}

std::vector<std::array<double, 5>> parse_box_list(const std::string& text,
                                                  const std::string& where) {
  std::vector<std::array<double, 5>> out;
  nlohmann::json list;
  try {
    list = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    ENDOKED_FAIL(where, ": boxes are not valid JSON: ", e.what());
  }
  ENDOKED_CHECK(list.is_array(), where, ": boxes must be a JSON list of [x0, y0, x1, y1(, extra)]");
  for (const auto& b : list) {
    ENDOKED_CHECK(b.is_array() && b.size() >= 4 && b.size() <= 5, where,
                  ": a box must be [x0, y0, x1, y1(, extra)], got ", b.dump());
    std::array<double, 5> v{0, 0, 0, 0, 0};
    for (std::size_t k = 0; k < b.size(); ++k) {
      ENDOKED_CHECK(b[k].is_number(), where, ": a box holds numbers, got ", b.dump());
      v[k] = b[k].get<double>();
    }
    out.push_back(v);
  }
  return out;
}

}  // namespace endoked::data
