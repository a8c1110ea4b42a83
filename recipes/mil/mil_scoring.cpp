#include "mil_scoring.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numeric>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/core/ranking.h"
#include "endoked/data/csv.h"
#include "endoked/engine/sharded_stage.h"

namespace fs = std::filesystem;

namespace endoked::recipes::mil {

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

// A pass over `view` with no augmentation, one item per step, items dealt over the ranks.
std::unique_ptr<data::Loader> inference_loader(std::shared_ptr<const data::Dataset> view, int size,
                                               int threads, const dist::Communicator& comm) {
  data::LoaderOptions lo = data::square_loader_options(size, threads, 0, false);
  lo.batch_size = 1;
  lo.tail = "partial";
  return std::make_unique<data::Loader>(std::move(view), lo, 0, comm.rank(), comm.size());
}

double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

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
      const std::int64_t rows =
          b.offsets[static_cast<std::size_t>(i) + 1] - b.offsets[static_cast<std::size_t>(i)];
      if (rows == 0) continue;  // every image of the exam was unreadable (counted by the loader)
      const at::Tensor x = b.images.narrow(0, b.offsets[static_cast<std::size_t>(i)], rows);
      std::vector<at::Tensor> parts;
      for (std::int64_t at = 0; at < rows; at += 64)
        parts.push_back(net.features(x.narrow(0, at, std::min<std::int64_t>(64, rows - at))));
      const at::Tensor f = at::cat(parts);
      const vision::MilOutput a = net.attention->forward(f);
      const vision::MilOutput d = net.dsmil->forward(f);
      const at::Tensor s = net.student->forward(f);
      mine.push_back(static_cast<double>(
          exams[static_cast<std::size_t>(b.indices[static_cast<std::size_t>(i)])]));
      mine.push_back(static_cast<double>(rows));
      mine.push_back(a.bag_logit.item<double>());
      mine.push_back(d.bag_logit.item<double>());
      const auto as = a.instance_scores.to(at::kDouble), aw = a.attention.to(at::kDouble),
                 ds = d.instance_scores.to(at::kDouble), ss = s.to(at::kDouble);
      for (std::int64_t r = 0; r < rows; ++r) {
        mine.push_back(static_cast<double>(view->image_of(
            b.ids[static_cast<std::size_t>(b.offsets[static_cast<std::size_t>(i)] + r)])));
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
                       pool.begin() + static_cast<std::ptrdiff_t>(std::min(
                                          pool.size(), at + static_cast<std::size_t>(chunk))));
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
  const auto loader =
      inference_loader(std::make_shared<ImageItems>(images, std::move(items), std::move(names)),
                       size, threads, comm);
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
      r.attention = std::isnan(s.weight[static_cast<std::size_t>(g)])
                        ? -1.0
                        : s.weight[static_cast<std::size_t>(g)];
      r.teacher_attention =
          std::isnan(st) ? -1.0 : attention.apply(s.attention[static_cast<std::size_t>(g)]);
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
  for (const char* k :
       {"exam_auc", "exam_auc_attention", "exam_auc_dsmil", "image_auc", "image_ap"})
    if (e.contains(k)) out += fmt::format(" {} {:.4f}", k, e[k].get<double>());
  return out;
}

}  // namespace endoked::recipes::mil
