#include "mil_stage.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <unordered_map>

#include "endoked/core/config.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/core/ranking.h"
#include "endoked/core/seed.h"
#include "endoked/core/sha256.h"
#include "endoked/data/csv.h"
#include "endoked/data/dataset.h"
#include "endoked/data/loader.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"
#include "endoked/distributed/preemption.h"
#include "endoked/engine/sharded_stage.h"
#include "endoked/vision/weights.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::recipes {
namespace {

constexpr float kUnscored = std::numeric_limits<float>::quiet_NaN();

int policy_label(const std::string& policy, const char* key) {
  if (policy == "exclude") return -1;
  if (policy == "positive") return 1;
  if (policy == "negative") return 0;
  ENDOKED_FAIL("mil.", key, " must be exclude, positive or negative, got '", policy, "'");
}

// "images/has_polyp" → "has_polyp".
std::string truth_column_name(const std::string& column) {
  return column.substr(column.find('/') + 1);
}

// What the stage knows of the store: exams, their bag labels and the images' truth.
struct Corpus {
  std::vector<data::RecordStore::ExamSpan> spans;
  std::vector<int> label;            // per exam: 1, 0, or −1 (not a training bag)
  std::vector<int> truth;            // per image: 0/1, −1 unknown; empty without truth
  std::vector<std::int64_t> shard_exams;  // exams per record shard (the output's layout)
  std::int64_t images = 0;
  std::int64_t exams() const { return static_cast<std::int64_t>(spans.size()); }
};

Corpus load_corpus(const std::string& store, const std::string& labels, int uncertain,
                   int not_mentioned, const std::string& truth, const std::string& truth_column) {
  Corpus c;
  data::RecordStore records(store);
  c.spans = records.exam_spans();
  c.images = records.image_count();
  for (const auto& s : records.manifest().shards) c.shard_exams.push_back(s.exams);
  c.label.assign(c.spans.size(), -1);
  if (!labels.empty()) {
    data::DatasetOptions d;
    d.store = store;
    d.unit = "exam";
    d.sidecars = {labels};
    d.label_columns = {"exams/positive"};
    const auto exams = data::make_dataset(d);
    ENDOKED_CHECK(exams->size() == c.exams(), "labels '", labels, "': ", exams->size(),
                  " exams joined, the store has ", c.exams());
    for (std::int64_t e = 0; e < c.exams(); ++e) {
      const auto code = static_cast<int>(exams->labels(e).at("positive"));
      int& l = c.label[static_cast<std::size_t>(e)];
      l = code == 1 ? 1 : code == 0 ? 0 : code == -1 ? uncertain : not_mentioned;
      if (c.spans[static_cast<std::size_t>(e)].image_count == 0) l = -1;  // nothing to learn
    }
  }
  if (!truth.empty() && fs::is_regular_file(truth)) {  // a CSV: image (source path), label
    const data::CsvTable t = data::read_csv(truth);
    const int image = t.column("image"), label = t.column(truth_column_name(truth_column));
    ENDOKED_CHECK(image >= 0 && label >= 0, "truth CSV '", truth, "' needs the columns image and ",
                  truth_column_name(truth_column), " (the truth_column's name)");
    std::unordered_map<std::string, int> by_path;
    for (const auto& row : t.rows) {
      ENDOKED_CHECK(row.fields.size() == t.header.size(), "truth CSV '", truth, "' line ", row.line,
                    ": ", row.fields.size(), " fields, the header has ", t.header.size());
      const std::string& v = row.fields[static_cast<std::size_t>(label)];
      ENDOKED_CHECK(v == "0" || v == "1", "truth CSV '", truth, "' line ", row.line, ": label '", v,
                    "' is not 0 or 1");
      by_path[row.fields[static_cast<std::size_t>(image)]] = v == "1" ? 1 : 0;
    }
    c.truth.assign(static_cast<std::size_t>(c.images), -1);
    std::int64_t found = 0;
    for (std::int64_t g = 0; g < c.images; ++g) {
      const auto it = by_path.find(records.image(g, false).source_path);
      if (it == by_path.end()) continue;
      c.truth[static_cast<std::size_t>(g)] = it->second;
      ++found;
    }
    log::info("mil: truth CSV {}: {} of {} images have a label", truth, found, c.images);
  } else if (!truth.empty()) {
    data::DatasetOptions d;
    d.store = store;
    d.sidecars = {truth};
    d.label_columns = {truth_column};
    const auto images = data::make_dataset(d);
    const std::string name = truth_column_name(truth_column);
    c.truth.resize(static_cast<std::size_t>(c.images));
    for (std::int64_t g = 0; g < c.images; ++g) {
      const double v = images->labels(g).at(name);
      c.truth[static_cast<std::size_t>(g)] = v == 1 ? 1 : v == 0 ? 0 : -1;
    }
  }
  return c;
}

// Items made of images of the record store: bags (an exam's images, maybe a subset) or chunks
// (images of several exams). Remembers which image each source path is, so a batch's rows map
// back to global image indices even when the loader skipped a corrupt image.
class ImageItems final : public data::Dataset {
 public:
  ImageItems(std::shared_ptr<const data::Dataset> images,
             std::vector<std::vector<std::int64_t>> items, std::vector<std::string> names)
      : images_(std::move(images)), items_(std::move(items)), names_(std::move(names)) {}
  std::int64_t size() const override { return static_cast<std::int64_t>(items_.size()); }
  std::vector<data::RawImage> read(std::int64_t index) const override {
    std::vector<data::RawImage> out;
    for (const std::int64_t g : items_.at(static_cast<std::size_t>(index))) {
      auto one = images_->read(g);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        image_of_[one.at(0).id] = g;
      }
      out.push_back(std::move(one[0]));
    }
    return out;
  }
  std::map<std::string, double> labels(std::int64_t) const override { return {}; }
  std::string item_id(std::int64_t index) const override {
    return names_.at(static_cast<std::size_t>(index));
  }
  const std::vector<std::int64_t>& item(std::int64_t index) const {
    return items_.at(static_cast<std::size_t>(index));
  }
  /// Global image index of a batch row's id.
  std::int64_t image_of(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = image_of_.find(id);
    ENDOKED_CHECK(it != image_of_.end(), "mil: image '", id, "' was not read by this item set");
    return it->second;
  }

 private:
  std::shared_ptr<const data::Dataset> images_;
  std::vector<std::vector<std::int64_t>> items_;
  std::vector<std::string> names_;
  mutable std::mutex mutex_;
  mutable std::unordered_map<std::string, std::int64_t> image_of_;
};

data::LoaderOptions loader_options(int size, int threads, std::uint64_t seed, bool augment) {
  data::LoaderOptions lo;
  lo.threads = threads;
  lo.seed = seed;
  lo.on_error = "skip";
  data::TransformSpec resize;
  resize.name = "resize";
  resize.size = {size, size};
  lo.transforms.push_back(resize);
  if (augment) {
    data::TransformSpec h, v;
    h.name = "hflip";
    v.name = "vflip";
    lo.transforms.push_back(h);
    lo.transforms.push_back(v);
  }
  data::TransformSpec norm;
  norm.name = "normalise";
  lo.transforms.push_back(norm);
  return lo;
}

// A pass over `view` with no augmentation, one item per step, items dealt over the ranks.
std::unique_ptr<data::Loader> inference_loader(std::shared_ptr<const data::Dataset> view, int size,
                                               int threads, const dist::Communicator& comm) {
  data::LoaderOptions lo = loader_options(size, threads, 0, false);
  lo.batch_size = 1;
  lo.tail = "partial";
  return std::make_unique<data::Loader>(std::move(view), lo, 0, comm.rank(), comm.size());
}

// Fisher–Yates with the stage's seeded generator (the same order on every rank).
template <class T>
void shuffle(std::vector<T>& v, Rng& rng) {
  for (std::size_t i = v.size(); i > 1; --i)
    std::swap(v[i - 1], v[static_cast<std::size_t>(rng.randint(0, static_cast<std::int64_t>(i) - 1))]);
}

// Every head's output for a set of images, per global image index / per exam.
struct Scores {
  std::vector<float> attention, weight, dsmil, student;  // per image; NaN: not scored
  std::vector<float> attention_bag, dsmil_bag;           // per exam (logits); NaN: not scored

  void resize(std::int64_t images, std::int64_t exams) {
    for (auto* v : {&attention, &weight, &dsmil, &student})
      v->assign(static_cast<std::size_t>(images), kUnscored);
    for (auto* v : {&attention_bag, &dsmil_bag}) v->assign(static_cast<std::size_t>(exams), kUnscored);
  }
  std::string bytes() const {
    std::string out = "EKMILSC1";
    for (const auto* v : {&attention, &weight, &dsmil, &student, &attention_bag, &dsmil_bag}) {
      const std::uint64_t n = v->size();
      out.append(reinterpret_cast<const char*>(&n), sizeof n);
      out.append(reinterpret_cast<const char*>(v->data()), n * sizeof(float));
    }
    return out;
  }
  static Scores parse(const std::string& b, const std::string& where, std::int64_t images,
                      std::int64_t exams) {
    Scores s;
    ENDOKED_CHECK(b.size() >= 8 && b.compare(0, 8, "EKMILSC1") == 0, where,
                  ": not a mil scores file");
    std::size_t at = 8;
    for (auto* v : {&s.attention, &s.weight, &s.dsmil, &s.student, &s.attention_bag,
                    &s.dsmil_bag}) {
      std::uint64_t n = 0;
      ENDOKED_CHECK(at + sizeof n <= b.size(), where, ": truncated");
      std::memcpy(&n, b.data() + at, sizeof n);
      at += sizeof n;
      ENDOKED_CHECK(n <= (b.size() - at) / sizeof(float), where, ": truncated");
      v->resize(n);
      std::memcpy(v->data(), b.data() + at, n * sizeof(float));
      at += n * sizeof(float);
    }
    ENDOKED_CHECK(static_cast<std::int64_t>(s.student.size()) == images &&
                      static_cast<std::int64_t>(s.attention_bag.size()) == exams,
                  where, ": written for another store (", s.student.size(), " images, ",
                  s.attention_bag.size(), " exams; this one has ", images, ", ", exams, ")");
    return s;
  }
};

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Collective: every head's scores for `exams` (all their images, no augmentation, eval mode).
Scores score_exams(dist::Communicator& comm, MilNetImpl& net,
                   const std::shared_ptr<const data::Dataset>& images, const Corpus& c,
                   const std::vector<std::int64_t>& exams, int size, int threads,
                   const std::string& label) {
  std::vector<std::vector<std::int64_t>> items;
  std::vector<std::string> names;
  std::int64_t total = 0;
  for (const std::int64_t e : exams) {
    const auto& span = c.spans[static_cast<std::size_t>(e)];
    items.emplace_back(static_cast<std::size_t>(span.image_count));
    std::iota(items.back().begin(), items.back().end(), span.first_image);
    names.push_back(span.id);
    total += span.image_count;
  }
  auto view = std::make_shared<ImageItems>(images, items, names);
  const auto loader = inference_loader(view, size, threads, comm);
  torch::NoGradGuard no_grad;
  const bool was_training = net.is_training();
  net.eval();
  // Per bag: [exam, rows, attention bag logit, dsmil bag logit, then per row: image, attention
  // logit, attention weight, dsmil logit, student logit].
  std::vector<double> mine;
  Progress progress(label, comm.is_root() ? (total + comm.size() - 1) / comm.size() : 0, "images");
  data::Batch b;
  while (loader->next(b)) {
    for (std::int64_t i = 0; i < b.items(); ++i) {
      const std::int64_t rows = b.offsets[static_cast<std::size_t>(i) + 1] - b.offsets[static_cast<std::size_t>(i)];
      if (rows == 0) continue;  // every image of the exam was unreadable (counted by the loader)
      const at::Tensor x = b.images.narrow(0, b.offsets[static_cast<std::size_t>(i)], rows);
      std::vector<at::Tensor> parts;
      for (std::int64_t at = 0; at < rows; at += 64)
        parts.push_back(net.features(x.narrow(0, at, std::min<std::int64_t>(64, rows - at))));
      const at::Tensor f = at::cat(parts);
      const vision::MilOutput a = net.attention->forward(f);
      const vision::MilOutput d = net.dsmil->forward(f);
      const at::Tensor s = net.student->forward(f);
      mine.push_back(static_cast<double>(exams[static_cast<std::size_t>(b.indices[static_cast<std::size_t>(i)])]));
      mine.push_back(static_cast<double>(rows));
      mine.push_back(a.bag_logit.item<double>());
      mine.push_back(d.bag_logit.item<double>());
      const auto as = a.instance_scores.to(at::kDouble), aw = a.attention.to(at::kDouble),
                 ds = d.instance_scores.to(at::kDouble), ss = s.to(at::kDouble);
      for (std::int64_t r = 0; r < rows; ++r) {
        mine.push_back(static_cast<double>(
            view->image_of(b.ids[static_cast<std::size_t>(b.offsets[static_cast<std::size_t>(i)] + r)])));
        mine.push_back(as[r].item<double>());
        mine.push_back(aw[r].item<double>());
        mine.push_back(ds[r].item<double>());
        mine.push_back(ss[r].item<double>());
      }
      progress.add(rows);
    }
  }
  progress.finish();
  net.train(was_training);
  Scores out;
  out.resize(c.images, c.exams());
  const std::string bytes(reinterpret_cast<const char*>(mine.data()), mine.size() * sizeof(double));
  for (const auto& part : comm.all_gather_bytes(bytes)) {
    std::vector<double> v(part.size() / sizeof(double));
    std::memcpy(v.data(), part.data(), v.size() * sizeof(double));
    for (std::size_t at = 0; at < v.size();) {
      const auto e = static_cast<std::size_t>(v[at]);
      const auto rows = static_cast<std::size_t>(v[at + 1]);
      out.attention_bag[e] = static_cast<float>(v[at + 2]);
      out.dsmil_bag[e] = static_cast<float>(v[at + 3]);
      at += 4;
      for (std::size_t r = 0; r < rows; ++r, at += 5) {
        const auto g = static_cast<std::size_t>(v[at]);
        out.attention[g] = static_cast<float>(v[at + 1]);
        out.weight[g] = static_cast<float>(v[at + 2]);
        out.dsmil[g] = static_cast<float>(v[at + 3]);
        out.student[g] = static_cast<float>(v[at + 4]);
      }
    }
  }
  return out;
}

// Collective. "Precise batch norm": the encoder's running statistics recomputed as the average of
// batch statistics over chunks of `chunk` training images (no augmentation), so eval-mode
// scores do not depend on the last few steps' momentum averages. Ranks share the chunks; the
// average weighs each rank by its chunks, so it does not depend on the world size.
void precise_batch_norm(dist::Communicator& comm, MilNetImpl& net,
                        const std::shared_ptr<const data::Dataset>& images,
                        std::vector<std::int64_t> pool, std::int64_t count, int chunk, int size,
                        int threads, std::uint64_t seed, std::int64_t epoch) {
  if (count <= 0 || pool.empty()) return;
  Rng rng(seed, "mil-batch-norm", static_cast<std::uint64_t>(epoch));
  shuffle(pool, rng);
  pool.resize(std::min<std::size_t>(pool.size(), static_cast<std::size_t>(count)));
  std::vector<std::vector<std::int64_t>> items;
  std::vector<std::string> names;
  for (std::size_t at = 0; at + 1 < pool.size(); at += static_cast<std::size_t>(chunk)) {
    items.emplace_back(pool.begin() + static_cast<std::ptrdiff_t>(at),
                       pool.begin() + static_cast<std::ptrdiff_t>(std::min(pool.size(), at + static_cast<std::size_t>(chunk))));
    names.push_back(fmt::format("batch-norm chunk {}", items.size() - 1));
  }
  std::vector<torch::nn::BatchNorm2dImpl*> norms;
  for (const auto& m : net.encoder->modules(false))
    if (auto* bn = m->as<torch::nn::BatchNorm2d>()) norms.push_back(bn);
  std::vector<c10::optional<double>> momentum;
  for (auto* bn : norms) {
    momentum.push_back(bn->options.momentum());
    bn->reset_running_stats();
    bn->options.momentum(c10::nullopt);  // cumulative average over this pass
  }
  const auto loader = inference_loader(
      std::make_shared<ImageItems>(images, std::move(items), std::move(names)), size, threads, comm);
  torch::NoGradGuard no_grad;
  const bool was_training = net.is_training();
  net.train();
  double mine = 0;
  data::Batch b;
  while (loader->next(b))
    if (b.items() > 0 && b.images.size(0) >= 2) {
      net.features(b.images);
      mine += 1;
    }
  net.train(was_training);
  std::vector<at::Tensor> parts;
  for (std::size_t k = 0; k < norms.size(); ++k) {
    norms[k]->options.momentum(momentum[k]);
    parts.push_back(norms[k]->running_mean.to(at::kDouble) * mine);
    parts.push_back(norms[k]->running_var.to(at::kDouble) * mine);
  }
  parts.push_back(torch::full({1}, mine, torch::kDouble));
  at::Tensor all = torch::cat(parts);
  if (comm.size() > 1) {
    dist::CollectiveOptions co;
    co.op = dist::ReduceOp::kSum;
    co.verify = false;
    comm.all_reduce(all, co);
  }
  const double total = all[all.size(0) - 1].item<double>();
  ENDOKED_CHECK(total > 0, "mil: no batch-norm chunk could be read");
  std::int64_t at = 0;
  for (auto* bn : norms) {
    const std::int64_t n = bn->running_mean.numel();
    bn->running_mean.copy_(all.narrow(0, at, n) / total);
    bn->running_var.copy_(all.narrow(0, at + n, n) / total);
    at += 2 * n;
  }
}

// Min and max of a teacher's scores over `images` (scored ones).
struct Range {
  double lo = 0, hi = 0;
  double apply(double x) const {
    if (!(hi > lo)) return 0.0;
    return std::clamp((x - lo) / (hi - lo), 0.0, 1.0);
  }
  json to_json() const { return {lo, hi}; }
};
Range range_of(const std::vector<float>& v, const std::vector<std::int64_t>& images) {
  Range r{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  for (const std::int64_t g : images) {
    const double x = v[static_cast<std::size_t>(g)];
    if (std::isnan(x)) continue;
    r.lo = std::min(r.lo, x);
    r.hi = std::max(r.hi, x);
  }
  if (!(r.hi >= r.lo)) r = {0, 0};
  return r;
}

// Images of `exams`, in order.
std::vector<std::int64_t> images_of(const Corpus& c, const std::vector<std::int64_t>& exams) {
  std::vector<std::int64_t> out;
  for (const std::int64_t e : exams) {
    const auto& s = c.spans[static_cast<std::size_t>(e)];
    for (std::int64_t k = 0; k < s.image_count; ++k) out.push_back(s.first_image + k);
  }
  return out;
}

// Exam AUC (student max-pooled, each teacher's bag probability) against the exams' labels, and
// image AUC / AP against the truth, over `exams`.
json evaluate(const Corpus& c, const Scores& s, const std::vector<std::int64_t>& exams) {
  json out = json::object();
  std::vector<double> st, at, ds;
  std::vector<int> y;
  for (const std::int64_t e : exams) {
    const int l = c.label[static_cast<std::size_t>(e)];
    const auto& span = c.spans[static_cast<std::size_t>(e)];
    if (l < 0 || std::isnan(s.attention_bag[static_cast<std::size_t>(e)])) continue;
    double best = -std::numeric_limits<double>::infinity();
    for (std::int64_t k = 0; k < span.image_count; ++k) {
      const double v = s.student[static_cast<std::size_t>(span.first_image + k)];
      if (!std::isnan(v)) best = std::max(best, v);
    }
    st.push_back(best);
    at.push_back(s.attention_bag[static_cast<std::size_t>(e)]);
    ds.push_back(s.dsmil_bag[static_cast<std::size_t>(e)]);
    y.push_back(l);
  }
  const auto put = [&](const char* key, double v) {
    if (!std::isnan(v)) out[key] = v;
  };
  if (!y.empty()) {
    put("exam_auc", roc_auc(st, y));
    put("exam_auc_attention", roc_auc(at, y));
    put("exam_auc_dsmil", roc_auc(ds, y));
    out["exams_evaluated"] = y.size();
  }
  if (!c.truth.empty()) {
    std::vector<double> v;
    std::vector<int> t;
    for (const std::int64_t g : images_of(c, exams)) {
      const int truth = c.truth[static_cast<std::size_t>(g)];
      const double x = s.student[static_cast<std::size_t>(g)];
      if (truth < 0 || std::isnan(x)) continue;
      v.push_back(x);
      t.push_back(truth);
    }
    put("image_auc", roc_auc(v, t));
    put("image_ap", average_precision(v, t));
    out["images_evaluated"] = v.size();
  }
  return out;
}

// The output rows and the localisation selection.
struct Outputs {
  std::vector<data::ScoreRow> rows;  // per global image
  std::int64_t positives = 0, negatives = 0;
  json selection = json::object();
};

Outputs make_rows(const Corpus& c, const Scores& s, const Range& attention, const Range& dsmil,
                  const MilSelect* select) {
  Outputs o;
  o.rows.resize(static_cast<std::size_t>(c.images));
  std::vector<std::pair<double, std::int64_t>> negative_pool;
  for (std::int64_t e = 0; e < c.exams(); ++e) {
    const auto& span = c.spans[static_cast<std::size_t>(e)];
    std::vector<std::int64_t> order;
    for (std::int64_t k = 0; k < span.image_count; ++k) {
      const std::int64_t g = span.first_image + k;
      auto& r = o.rows[static_cast<std::size_t>(g)];
      const double st = s.student[static_cast<std::size_t>(g)];
      r.score = std::isnan(st) ? -1.0 : sigmoid(st);
      r.attention = std::isnan(s.weight[static_cast<std::size_t>(g)]) ? -1.0 : s.weight[static_cast<std::size_t>(g)];
      r.teacher_attention = std::isnan(st) ? -1.0 : attention.apply(s.attention[static_cast<std::size_t>(g)]);
      r.teacher_dsmil = std::isnan(st) ? -1.0 : dsmil.apply(s.dsmil[static_cast<std::size_t>(g)]);
      r.exam_label = c.label[static_cast<std::size_t>(e)];
      r.selected = -1;
      order.push_back(g);
    }
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
      return o.rows[static_cast<std::size_t>(a)].score > o.rows[static_cast<std::size_t>(b)].score;
    });
    for (std::size_t k = 0; k < order.size(); ++k) {
      auto& r = o.rows[static_cast<std::size_t>(order[k])];
      r.rank = static_cast<std::int64_t>(k);
      if (!select || r.score < 0) continue;
      if (r.exam_label == 1 && r.score >= select->positive_threshold) {
        r.selected = 1;
        ++o.positives;
      }
      if (r.exam_label == 0) negative_pool.emplace_back(r.score, order[k]);
    }
  }
  if (select) {
    std::stable_sort(negative_pool.begin(), negative_pool.end());
    const auto n = static_cast<std::size_t>(
        std::ceil(select->negative_fraction * static_cast<double>(negative_pool.size()) - 1e-9));
    for (std::size_t k = 0; k < std::min(n, negative_pool.size()); ++k)
      o.rows[static_cast<std::size_t>(negative_pool[k].second)].selected = 0;
    o.negatives = static_cast<std::int64_t>(std::min(n, negative_pool.size()));
    o.selection = {{"positives", o.positives},
                   {"negatives", o.negatives},
                   {"positive_threshold", select->positive_threshold},
                   {"negative_fraction", select->negative_fraction},
                   {"negative_pool", negative_pool.size()}};
    if (!c.truth.empty()) {  // how clean the selection is, when the truth is known
      std::int64_t tp = 0, tn = 0;
      for (std::size_t g = 0; g < o.rows.size(); ++g) {
        tp += o.rows[g].selected == 1 && c.truth[g] == 1;
        tn += o.rows[g].selected == 0 && c.truth[g] == 0;
      }
      if (o.positives > 0) o.selection["positive_precision"] = double(tp) / double(o.positives);
      if (o.negatives > 0) o.selection["negative_precision"] = double(tn) / double(o.negatives);
    }
  }
  return o;
}

// Collective: writes the scores sidecar (the record store's shard layout) on rank 0, with
// `extra` files (name → bytes) beside the shards.
void write_output(dist::Communicator& comm, const std::string& dir, const Corpus& c,
                  const Outputs& out, const json& provenance, const json& summary,
                  const std::map<std::string, std::string>& extra, const RunDir& run,
                  const std::string& stage) {
  engine::commit_on_root(comm, [&] {
    const std::string partial = data::partial_dir(dir);
    data::Manifest m;
    m.kind = "scores";
    m.columns = data::image_sidecar_layout<data::ScoreRow>();
    std::int64_t e = 0;
    for (std::size_t s = 0; s < c.shard_exams.size(); ++s) {
      data::ShardWriter w(partial, static_cast<int>(s), "scores");
      data::ImageSidecarWriter<data::ScoreRow> rows(w);
      for (std::int64_t k = 0; k < c.shard_exams[s]; ++k, ++e) {
        const auto& span = c.spans[static_cast<std::size_t>(e)];
        rows.add_exam(span.id, std::vector<data::ScoreRow>(
                                   out.rows.begin() + span.first_image,
                                   out.rows.begin() + span.first_image + span.image_count));
      }
      m.shards.push_back(data::ShardInfo::from_json(w.close().to_json()));
    }
    for (const auto& [name, bytes] : extra) files::atomic_write(partial + "/" + name, bytes);
    m.provenance = provenance;
    m.summary = summary;
    data::commit_store(dir, m);
    run.log_metrics(json{{"stage", stage}, {"summary", summary}});
  });
}

std::vector<std::int64_t> all_exams_with_images(const Corpus& c) {
  std::vector<std::int64_t> out;
  for (std::int64_t e = 0; e < c.exams(); ++e)
    if (c.spans[static_cast<std::size_t>(e)].image_count > 0) out.push_back(e);
  return out;
}

std::string scores_file(const std::string& checkpoint_dir, std::int64_t epoch) {
  return fmt::format("{}/mil-scores-epoch-{:04d}.bin", checkpoint_dir, epoch);
}

std::string fmt_metrics(const json& e) {
  std::string out;
  for (const char* k : {"exam_auc", "exam_auc_attention", "exam_auc_dsmil", "image_auc", "image_ap"})
    if (e.contains(k)) out += fmt::format(" {} {:.4f}", k, e[k].get<double>());
  return out;
}

// One epoch's items and what its steps need.
struct Epoch {
  std::int64_t epoch = -1;
  bool teacher = true;
  std::shared_ptr<ImageItems> items;
  // teacher: per item, its bags' labels and, per image of the item (in order), its bag
  std::vector<std::vector<int>> bag_label;
  std::vector<std::vector<int>> bag_of;
  std::vector<float> target;   // student: per global image
  std::int64_t mined_out = 0;
};

}  // namespace

json run_mil(dist::Communicator& comm, const MilOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.store.empty(), "mil.store is empty: name the record store");
  ENDOKED_CHECK(!o.labels.empty(), "mil.labels is empty: name the labels sidecar (endoked label)");
  ENDOKED_CHECK(o.image_size >= 64, "mil.image_size must be ≥ 64, got ", o.image_size);
  ENDOKED_CHECK(o.max_images >= 1 && o.items_per_step >= 1 && o.group >= 1 && o.chunk >= 1 &&
                    o.threads >= 1,
                "mil.max_images, items_per_step, group, chunk and threads must be ≥ 1");
  ENDOKED_CHECK(o.teacher_weights.size() == 2 && o.teacher_weights[0] >= 0 &&
                    o.teacher_weights[1] >= 0 && o.teacher_weights[0] + o.teacher_weights[1] > 0,
                "mil.teacher_weights must be two weights ≥ 0, not both 0");
  ENDOKED_CHECK(o.positive_weight > 0 && o.negative_weight > 0,
                "mil.positive_weight and negative_weight must be > 0 (a zero weight teaches the "
                "student nothing about that class)");
  ENDOKED_CHECK(o.trainer.epochs >= 2 && o.trainer.epochs % 2 == 0,
                "mil.trainer.epochs must be even and ≥ 2 (teacher and student epochs alternate), got ",
                o.trainer.epochs);
  ENDOKED_CHECK(o.trainer.eval_every == 1,
                "mil.trainer.eval_every must be 1: each epoch's scores feed the next epoch");
  ENDOKED_CHECK(o.select.negative_fraction >= 0 && o.select.negative_fraction <= 1,
                "mil.select.negative_fraction must be in [0, 1]");
  const int uncertain = policy_label(o.uncertain, "uncertain");
  const int not_mentioned = policy_label(o.not_mentioned, "not_mentioned");
  data::cap_library_threads(o.threads);

  std::vector<std::string> inputs = {o.store, o.labels};
  if (!o.truth.empty()) inputs.push_back(o.truth);
  const data::Manifest in = data::Manifest::load(o.store);
  const data::Manifest labels_manifest = data::Manifest::load(o.labels);
  const std::string key =
      engine::resume_key(config::to_yaml(o), in.content_sha256() + labels_manifest.content_sha256());
  engine::begin_outputs(comm, {{o.output, "scores"}}, o.overwrite, inputs, key);
  const Corpus c = load_corpus(o.store, o.labels, uncertain, not_mentioned, o.truth, o.truth_column);
  data::DatasetOptions image_options;
  image_options.store = o.store;
  const std::shared_ptr<const data::Dataset> images = data::make_dataset(image_options);

  std::vector<std::int64_t> train, positives, negatives;
  for (std::int64_t e = 0; e < c.exams(); ++e) {
    const int l = c.label[static_cast<std::size_t>(e)];
    if (l < 0) continue;
    train.push_back(e);
    (l == 1 ? positives : negatives).push_back(e);
  }
  ENDOKED_CHECK(!positives.empty() && !negatives.empty(), "mil: training needs positive and negative exams; '",
                o.labels, "' gives ", positives.size(), " positive and ", negatives.size(),
                " negative (", c.exams() - static_cast<std::int64_t>(train.size()),
                " excluded: uncertain ", o.uncertain, ", not mentioned ", o.not_mentioned, ")");
  const std::vector<std::int64_t> train_images = images_of(c, train);
  log::info("mil: {} exams ({} positive, {} negative, {} excluded), {} training images, {} rank(s)",
            c.exams(), positives.size(), negatives.size(),
            c.exams() - static_cast<std::int64_t>(train.size()), train_images.size(), comm.size());

  torch::manual_seed(o.seed);
  MilNet net(o.model);
  load_mil_weights(*net, o.model);
  ENDOKED_CHECK(o.optimizer == "adam" || o.optimizer == "sgd", "mil.optimizer must be adam or sgd, got '",
                o.optimizer, "'");
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (o.optimizer == "adam")
    optimizer = std::make_unique<torch::optim::Adam>(
        net->parameters(),
        torch::optim::AdamOptions(o.trainer.lr_schedule.lr).weight_decay(o.weight_decay));
  else
    optimizer = std::make_unique<torch::optim::SGD>(
        net->parameters(), torch::optim::SGDOptions(o.trainer.lr_schedule.lr)
                               .momentum(0.9)
                               .weight_decay(o.weight_decay));

  engine::TrainerOptions to = o.trainer;
  // Default: one checkpoint directory per config and inputs, so a rerun of the same run resumes
  // and a changed config or corpus starts afresh.
  if (to.checkpoint.dir.empty()) to.checkpoint.dir = run.path() + "/checkpoints/mil-" + key.substr(0, 12);
  const std::string ckpt = to.checkpoint.dir;
  const bool resuming = to.resume && fs::exists(ckpt + "/latest");
  if (comm.is_root() && !resuming && fs::exists(ckpt)) {
    for (const auto& f : fs::directory_iterator(ckpt))  // an earlier run's targets
      if (f.path().filename().string().rfind("mil-scores-epoch-", 0) == 0) fs::remove(f.path());
  }
  comm.barrier();
  engine::Trainer trainer(to, comm, run, config::to_yaml(o), "mil");

  // Scores after each epoch: in memory, and in the checkpoint directory for a resumed run.
  std::map<std::int64_t, Scores> scores;
  const auto scores_for = [&](std::int64_t epoch) -> const Scores& {
    auto it = scores.find(epoch);
    if (it == scores.end()) {
      const std::string path = scores_file(ckpt, epoch);
      ENDOKED_CHECK(fs::exists(path), "mil: resuming epoch ", epoch, " needs ", path,
                    " (written after epoch ", epoch - 1, "); it is missing");
      it = scores.emplace(epoch, Scores::parse(files::read_all(path), path, c.images, c.exams()))
               .first;
    }
    return it->second;
  };

  auto current = std::make_shared<Epoch>();
  const auto build_epoch = [&](std::int64_t e) {
    auto ep = std::make_shared<Epoch>();
    ep->epoch = e;
    ep->teacher = e % 2 == 0;
    std::vector<std::vector<std::int64_t>> items;
    std::vector<std::string> names;
    if (ep->teacher) {
      const bool mining = o.mining.after_epochs >= 0 && e >= o.mining.after_epochs && e > 0;
      const Scores* s = mining ? &scores_for(e) : nullptr;
      Rng rng(o.seed, "mil-bags", static_cast<std::uint64_t>(e));
      std::vector<std::int64_t> bags;
      if (o.balance) {
        const std::size_t n = std::max(positives.size(), negatives.size());
        std::vector<std::int64_t> p = positives, q = negatives;
        shuffle(p, rng);  // the minority class cycles through a fresh order
        shuffle(q, rng);
        for (std::size_t i = 0; i < n; ++i) {
          bags.push_back(p[i % p.size()]);
          bags.push_back(q[i % q.size()]);
        }
      } else {
        bags = train;
      }
      for (const std::int64_t b : bags) {
        const auto& span = c.spans[static_cast<std::size_t>(b)];
        const int label = c.label[static_cast<std::size_t>(b)];
        std::vector<std::int64_t> keep(static_cast<std::size_t>(span.image_count));
        std::iota(keep.begin(), keep.end(), span.first_image);
        if (s && label == 1) {  // hard-positive mining
          std::vector<std::int64_t> easy, rest;
          for (const std::int64_t g : keep) {
            const float x = s->student[static_cast<std::size_t>(g)];
            (!std::isnan(x) && sigmoid(x) >= o.mining.threshold ? easy : rest).push_back(g);
          }
          std::vector<std::int64_t> stay;
          for (const std::int64_t g : easy)
            if (!rng.bernoulli(o.mining.drop)) stay.push_back(g);
          if (stay.empty() && !easy.empty())
            stay.push_back(easy[static_cast<std::size_t>(rng.randint(0, static_cast<std::int64_t>(easy.size()) - 1))]);
          ep->mined_out += static_cast<std::int64_t>(easy.size() - stay.size());
          stay.insert(stay.end(), rest.begin(), rest.end());
          std::sort(stay.begin(), stay.end());
          keep = stay;
        }
        if (static_cast<int>(keep.size()) > o.max_images) {  // a random subset, in exam order
          shuffle(keep, rng);
          keep.resize(static_cast<std::size_t>(o.max_images));
          std::sort(keep.begin(), keep.end());
        }
        if (items.empty() || ep->bag_label.back().size() == static_cast<std::size_t>(o.group)) {
          items.emplace_back();
          ep->bag_label.emplace_back();
          ep->bag_of.emplace_back();
          names.push_back(span.id);
        } else {
          names.back() += "+" + span.id;
        }
        items.back().insert(items.back().end(), keep.begin(), keep.end());
        ep->bag_of.back().insert(ep->bag_of.back().end(), keep.size(),
                                 static_cast<int>(ep->bag_label.back().size()));
        ep->bag_label.back().push_back(label);
      }
    } else {
      const Scores& s = scores_for(e);
      const Range ra = range_of(s.attention, train_images), rd = range_of(s.dsmil, train_images);
      const double w1 = o.teacher_weights[0] / (o.teacher_weights[0] + o.teacher_weights[1]);
      ep->target.assign(static_cast<std::size_t>(c.images), kUnscored);
      std::vector<std::int64_t> usable;
      for (const std::int64_t ex : train) {
        const auto& span = c.spans[static_cast<std::size_t>(ex)];
        const bool pos = c.label[static_cast<std::size_t>(ex)] == 1;
        for (std::int64_t k = 0; k < span.image_count; ++k) {
          const auto g = static_cast<std::size_t>(span.first_image + k);
          if (std::isnan(s.attention[g])) continue;  // unreadable at scoring time
          ep->target[g] = pos ? static_cast<float>(std::clamp(
                                    w1 * ra.apply(s.attention[g]) + (1 - w1) * rd.apply(s.dsmil[g]),
                                    0.0, 1.0))
                              : 0.0F;
          usable.push_back(static_cast<std::int64_t>(g));
        }
      }
      Rng rng(o.seed, "mil-chunks", static_cast<std::uint64_t>(e));
      shuffle(usable, rng);
      for (std::size_t at = 0; at < usable.size(); at += static_cast<std::size_t>(o.chunk)) {
        items.emplace_back(usable.begin() + static_cast<std::ptrdiff_t>(at),
                           usable.begin() + static_cast<std::ptrdiff_t>(std::min(usable.size(), at + static_cast<std::size_t>(o.chunk))));
        names.push_back(fmt::format("chunk {} of epoch {}", items.size() - 1, e));
      }
    }
    ep->items = std::make_shared<ImageItems>(images, std::move(items), std::move(names));
    return ep;
  };

  data::LoaderOptions train_loader = loader_options(o.image_size, o.threads, o.seed, o.augment);
  train_loader.batch_size = o.items_per_step;
  train_loader.tail = "pad";
  const engine::BatchSourceFactory source = [&](std::int64_t epoch, std::int64_t cursor) {
    current = build_epoch(epoch);
    if (current->mined_out > 0)
      log::info("mil: epoch {}: hard-positive mining left out {} easy image(s)", epoch,
                current->mined_out);
    return engine::loader_source(current->items, train_loader, comm.rank(), comm.size())(epoch,
                                                                                          cursor);
  };

  const auto rows_of = [](const data::Batch& b, std::int64_t i) {
    return std::make_pair(b.offsets[static_cast<std::size_t>(i)],
                          b.offsets[static_cast<std::size_t>(i) + 1] - b.offsets[static_cast<std::size_t>(i)]);
  };
  const engine::StepFn step = [&](const data::Batch& b) {
    const Epoch& ep = *current;
    std::vector<at::Tensor> losses;
    for (std::int64_t i = 0; i < b.items(); ++i) {
      const auto [first, rows] = rows_of(b, i);
      if (rows == 0) continue;
      const at::Tensor f = net->features(b.images.narrow(0, first, rows));
      if (ep.teacher) {
        // Rows are the item's images in order, less any the loader could not decode.
        const auto index = static_cast<std::size_t>(b.indices[static_cast<std::size_t>(i)]);
        const std::vector<std::int64_t>& expected = ep.items->item(static_cast<std::int64_t>(index));
        std::vector<std::vector<std::int64_t>> bag_rows(ep.bag_label[index].size());
        std::size_t at = 0;
        for (std::int64_t r = 0; r < rows; ++r) {
          const std::int64_t g = ep.items->image_of(b.ids[static_cast<std::size_t>(first + r)]);
          while (at < expected.size() && expected[at] != g) ++at;
          ENDOKED_CHECK(at < expected.size(), "mil: batch row ", r, " is not an image of item ", index);
          bag_rows[static_cast<std::size_t>(ep.bag_of[index][at++])].push_back(r);
        }
        at::Tensor loss = 0 * net->student->forward(f).sum();  // every parameter gets a gradient
        std::int64_t bags = 0;
        for (std::size_t k = 0; k < bag_rows.size(); ++k) {
          if (bag_rows[k].empty()) continue;
          const at::Tensor x = f.index_select(0, torch::tensor(bag_rows[k], torch::kLong));
          const double y = ep.bag_label[index][k];
          const vision::MilOutput a = net->attention->forward(x);
          const vision::MilOutput d = net->dsmil->forward(x);
          loss = loss + net->attention->loss(a, y) + net->dsmil->loss(d, y);
          ++bags;
        }
        losses.push_back(bags > 0 ? loss / static_cast<double>(bags) : loss);
      } else {
        std::vector<float> t(static_cast<std::size_t>(rows));
        for (std::int64_t r = 0; r < rows; ++r)
          t[static_cast<std::size_t>(r)] = ep.target[static_cast<std::size_t>(
              ep.items->image_of(b.ids[static_cast<std::size_t>(first + r)]))];
        const at::Tensor targets = torch::from_blob(t.data(), {rows}, torch::kFloat).clone();
        const at::Tensor logits = net->student->forward(f);
        losses.push_back(vision::weighted_soft_bce(logits, targets, o.positive_weight,
                                                   o.negative_weight) +
                         0 * (net->attention->forward(f).bag_logit +
                              net->dsmil->forward(f).bag_logit));
      }
    }
    engine::StepOutput out;
    out.loss = losses.empty() ? torch::zeros({}, torch::requires_grad())
                              : torch::stack(losses).mean();
    return out;
  };

  const engine::EvalFn eval = [&](std::int64_t epoch) {
    precise_batch_norm(comm, *net, images, train_images, o.batch_norm_images, o.chunk,
                       o.image_size, o.threads, o.seed, epoch);
    Scores s = score_exams(comm, *net, images, c, train, o.image_size, o.threads,
                           fmt::format("mil: scoring after epoch {}", epoch));
    if (comm.is_root()) {
      fs::create_directories(ckpt);
      files::atomic_write(scores_file(ckpt, epoch + 1), s.bytes());
      // A resume starts from `latest`, at most in epoch epoch + 1: older targets are not needed.
      std::error_code ignored;
      if (epoch >= 1) fs::remove(scores_file(ckpt, epoch - 1), ignored);
    }
    const json e = evaluate(c, s, train);
    scores.clear();  // only the next epoch's are needed
    scores.emplace(epoch + 1, std::move(s));
    engine::MetricSums m;
    if (comm.is_root())
      for (const auto& [k, v] : e.items())
        if (k.find("auc") != std::string::npos || k.find("_ap") != std::string::npos)
          m.add(k, v.get<double>());
    return m;
  };

  const engine::FitResult fit = trainer.fit(*net, *optimizer, source, step, eval);
  json summary = {{"epochs", fit.epochs}, {"steps", fit.steps}, {"seconds", fit.seconds},
                  {"resumed", fit.resumed}, {"ranks", comm.size()}};
  if (fit.preempted) {
    summary["preempted"] = true;
    return summary;
  }

  // Every exam's images (also those without a training label), then the output.
  const std::vector<std::int64_t> all = all_exams_with_images(c);
  const Scores s = score_exams(comm, *net, images, c, all, o.image_size, o.threads, "mil: scoring");
  const Range ra = range_of(s.attention, train_images), rd = range_of(s.dsmil, train_images);
  const Outputs out = make_rows(c, s, ra, rd, &o.select);
  const json e = evaluate(c, s, all);
  summary["exams"] = c.exams();
  summary["images"] = c.images;
  summary["training_exams"] = {{"positive", positives.size()}, {"negative", negatives.size()}};
  summary["selection"] = out.selection;
  for (const auto& [k, v] : e.items()) summary[k] = v;

  json model = {{"model", o.model.to_json()},
                {"image_size", o.image_size},
                {"normalisation", {{"attention", ra.to_json()}, {"dsmil", rd.to_json()}}},
                {"epochs", fit.epochs},
                {"steps", fit.steps}};
  std::map<std::string, std::string> extra;
  if (comm.is_root()) {
    const std::string tmp = data::partial_dir(o.output) + "/model.pt";
    vision::save_state_dict(vision::state_dict_from(*net), tmp);
    extra["model.json"] = model.dump(2) + "\n";
  }
  write_output(comm, o.output, c, out, engine::provenance("mil", {{"input_store", fs::absolute(o.store).lexically_normal().string()},
                                                                 {"input_content_sha256", in.content_sha256()},
                                                                 {"labels", fs::absolute(o.labels).lexically_normal().string()},
                                                                 {"config_sha256", sha256_hex(config::to_yaml(o))}}),
               summary, extra, run, "mil");
  log::info("mil: {} images scored;{}; localisation: {} positive, {} negative image(s) -> {}",
            c.images, fmt_metrics(e), out.positives, out.negatives, o.output);
  return summary;
}

json run_mil_score(dist::Communicator& comm, const MilScoreOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.store.empty(), "mil_score.store is empty: name the record store to score");
  ENDOKED_CHECK(!o.checkpoint.empty(), "mil_score.checkpoint is empty: name a mil model.pt");
  ENDOKED_CHECK(o.threads >= 1, "mil_score.threads must be ≥ 1");
  const std::string model_json = (fs::path(o.checkpoint).parent_path() / "model.json").string();
  ENDOKED_CHECK(fs::exists(o.checkpoint), "mil score: no checkpoint '", o.checkpoint, "'");
  ENDOKED_CHECK(fs::exists(model_json), "mil score: '", model_json,
                "' is missing: the model's architecture is read from the model.json a mil run "
                "writes beside model.pt");
  json model;
  MilModelOptions mo;
  int size = 0;
  Range ra, rd;
  try {
    model = json::parse(files::read_all(model_json));
    mo = MilModelOptions::from_json(model.at("model"));
    size = model.at("image_size").get<int>();
    const auto& n = model.at("normalisation");
    ra = {n.at("attention").at(0).get<double>(), n.at("attention").at(1).get<double>()};
    rd = {n.at("dsmil").at(0).get<double>(), n.at("dsmil").at(1).get<double>()};
  } catch (const json::exception& e) {
    ENDOKED_FAIL("mil score: '", model_json, "' is not a mil model description: ", e.what());
  }
  data::cap_library_threads(o.threads);
  std::vector<std::string> inputs = {o.store};
  for (const auto* d : {&o.labels, &o.truth})
    if (!d->empty()) inputs.push_back(*d);
  const data::Manifest in = data::Manifest::load(o.store);
  engine::begin_outputs(comm, {{o.output, "scores"}}, o.overwrite, inputs);
  const Corpus c = load_corpus(o.store, o.labels, -1, -1, o.truth, o.truth_column);
  MilNet net(mo);
  mo.weights = o.checkpoint;
  mo.strict = true;
  load_mil_weights(*net, mo);
  data::DatasetOptions image_options;
  image_options.store = o.store;
  const std::shared_ptr<const data::Dataset> images = data::make_dataset(image_options);
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::int64_t> all = all_exams_with_images(c);
  const Scores s = score_exams(comm, *net, images, c, all, size, o.threads, "mil score");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Outputs out = make_rows(c, s, ra, rd, nullptr);
  json summary = evaluate(c, s, all);
  summary["exams"] = c.exams();
  summary["images"] = c.images;
  summary["seconds"] = seconds;
  summary["images_per_s"] = seconds > 0 ? static_cast<double>(c.images) / seconds : 0.0;
  summary["ranks"] = comm.size();
  write_output(comm, o.output, c, out,
               engine::provenance("mil score", {{"input_store", fs::absolute(o.store).lexically_normal().string()},
                                               {"input_content_sha256", in.content_sha256()},
                                               {"checkpoint", fs::absolute(o.checkpoint).lexically_normal().string()}}),
               summary, {}, run, "mil score");
  log::info("mil score: {} images in {:.1f}s;{} -> {}", c.images, seconds, fmt_metrics(summary),
            o.output);
  return summary;
}

}  // namespace endoked::recipes
