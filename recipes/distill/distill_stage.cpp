#include "distill_stage.h"

#include "predict.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include "endoked/core/config.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/parallel.h"
#include "endoked/core/progress.h"
#include "endoked/core/sha256.h"
#include "endoked/data/dataset.h"
#include "endoked/data/feature_cache.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/loader.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"
#include "endoked/engine/sharded_stage.h"
#include "endoked/vision/export.h"
#include "endoked/vision/masks.h"
#include "endoked/vision/overlay.h"
#include "endoked/vision/refine_batch.h"
#include "endoked/vision/seg_loss.h"
#include "endoked/vision/seg_metrics.h"
#include "endoked/vision/segnet.h"
#include "endoked/vision/weights.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::recipes {
namespace {

std::string round_output(const DistillOptions& o, int round) {
  return round == o.rounds ? o.output : fmt::format("{}-round{}", o.output, round);
}

// The record store's exams and shard layout.
struct Layout {
  std::vector<data::RecordStore::ExamSpan> spans;
  std::vector<std::int64_t> shard_first_exam, shard_exams;
  std::int64_t images = 0;
};

// A masks sidecar's status and the boxes each mask started from, per image of the store.
struct MaskIndex {
  std::vector<std::string> status, boxes;
};

MaskIndex read_mask_index(const std::string& dir, const Layout& l) {
  const data::Manifest m = data::Manifest::load(dir);
  ENDOKED_CHECK(m.kind == "masks", "distill: '", dir, "' is a ", m.kind,
                " store, not a masks sidecar (endoked refine)");
  ENDOKED_CHECK(m.shards.size() == l.shard_exams.size(), "distill: masks '", dir, "' has ",
                m.shards.size(), " shards, the store ", l.shard_exams.size(),
                ": not made from this store");
  MaskIndex x;
  x.status.assign(static_cast<std::size_t>(l.images), "no_box");
  x.boxes.assign(x.status.size(), "[]");
  for (std::size_t s = 0; s < m.shards.size(); ++s) {
    const std::string file = dir + "/" + m.shards[s].file;
    data::ShardReader reader(file);
    const auto exams = data::read_rows<data::ExamIndexRow>(reader, "exams");
    const auto& status = reader.strings("images", "status");
    const auto& boxes = reader.strings("images", "boxes");
    ENDOKED_CHECK(static_cast<std::int64_t>(exams.size()) == l.shard_exams[s], "distill: '", file,
                  "' has ", exams.size(), " exams, shard ", s, " of the store ", l.shard_exams[s],
                  ": not made from this store");
    for (std::size_t e = 0; e < exams.size(); ++e) {
      const auto& span = l.spans[static_cast<std::size_t>(l.shard_first_exam[s]) + e];
      ENDOKED_CHECK(exams[e].id == span.id && exams[e].image_count == span.image_count,
                    "distill: '", file, "' exam ", e, " is '", exams[e].id, "' with ",
                    exams[e].image_count, " images; the store has '", span.id, "' with ",
                    span.image_count);
      for (std::int64_t k = 0; k < span.image_count; ++k) {
        const auto row = static_cast<std::size_t>(exams[e].first_image + k);
        const auto g = static_cast<std::size_t>(span.first_image + k);
        x.status[g] = status.at(row);
        x.boxes[g] = boxes.at(row);
      }
    }
  }
  return x;
}

vision::SegmentationNet make_model(const DistillModel& m) {
  ENDOKED_CHECK(m.width >= 4 && m.decoder_width >= 4,
                "distill.model.width and decoder_width must be ≥ 4");
  vision::SegmentationNet net = vision::make_segmentation_net(m.arch, m.backbone, m.width,
                                                              m.decoder_width, m.deep_supervision);
  if (m.weights.empty()) return net;
  const vision::StateDict state = vision::read_state_dict(m.weights);
  // A distill model.pt names every tensor; a torchvision ResNet the encoder's, without the prefix.
  const bool whole = std::any_of(state.begin(), state.end(),
                                 [](const auto& kv) { return kv.first.rfind("encoder.", 0) == 0; });
  vision::StateDict keep;
  std::int64_t dropped = 0;
  for (const auto& [name, t] : state) {
    if (!whole && name.rfind("fc.", 0) == 0) {
      ++dropped;  // the ImageNet classifier: no place in a segmentation model
      continue;
    }
    keep.emplace_back(whole ? name : "encoder." + name, t);
  }
  const vision::LoadReport r = vision::load_state_dict(*net, keep, false, m.weights);
  ENDOKED_CHECK(
      r.mismatched.empty() && r.unexpected.empty() && r.loaded > 0 && (!whole || r.missing.empty()),
      "distill.model.weights '", m.weights, "' does not fit distill.model (backbone ", m.backbone,
      ", width ", m.width, ", decoder_width ", m.decoder_width, "): ", r.loaded,
      " tensor(s) matched; ", r.describe());
  log::info("distill: weights {}: {} tensor(s) loaded ({}){}", m.weights, r.loaded,
            whole ? "the whole model" : "the encoder",
            dropped > 0 ? fmt::format(", {} classifier tensor(s) left out", dropped) : "");
  return net;
}

// Training images: those with a mask from the masks sidecar joined to `base`, and negative images
// whose mask is empty (a 1 × 1 black PNG: the loader resizes a mask to its image).
class TrainingImages final : public data::Dataset {
 public:
  TrainingImages(std::shared_ptr<const data::Dataset> base, std::vector<std::int64_t> masked,
                 const std::vector<std::int64_t>& negatives)
      : base_(std::move(base)),
        images_(std::move(masked)),
        empty_(vision::encode_mask_png(cv::Mat::zeros(1, 1, CV_8UC1))) {
    first_negative_ = static_cast<std::int64_t>(images_.size());
    images_.insert(images_.end(), negatives.begin(), negatives.end());
  }
  std::int64_t size() const override { return static_cast<std::int64_t>(images_.size()); }
  std::vector<data::RawImage> read(std::int64_t i) const override {
    auto raw = base_->read(images_.at(static_cast<std::size_t>(i)));
    if (i >= first_negative_) raw.at(0).mask_bytes = empty_;
    return raw;
  }
  std::map<std::string, double> labels(std::int64_t) const override { return {}; }
  bool single_image() const override { return true; }
  std::string item_id(std::int64_t i) const override {
    return base_->item_id(images_.at(static_cast<std::size_t>(i)));
  }

 private:
  std::shared_ptr<const data::Dataset> base_;
  std::vector<std::int64_t> images_;
  std::int64_t first_negative_ = 0;
  std::string empty_;
};

// Images of the exams `labels` calls negative, `count` of them spread evenly over those images.
std::vector<std::int64_t> negative_images(const std::string& store, const std::string& labels,
                                          const std::vector<data::RecordStore::ExamSpan>& spans,
                                          std::int64_t count) {
  data::DatasetOptions d;
  d.store = store;
  d.unit = "exam";
  d.sidecars = {labels};
  d.label_columns = {"exams/positive"};
  d.pixels = false;
  const auto exams = data::make_dataset(d);
  ENDOKED_CHECK(exams->size() == static_cast<std::int64_t>(spans.size()), "distill.labels '",
                labels, "': ", exams->size(), " exams joined, the store has ", spans.size());
  std::vector<std::int64_t> all;
  for (std::size_t e = 0; e < spans.size(); ++e)
    if (static_cast<int>(exams->labels(static_cast<std::int64_t>(e)).at("positive")) == 0)
      for (std::int64_t k = 0; k < spans[e].image_count; ++k)
        all.push_back(spans[e].first_image + k);
  const auto n = static_cast<std::int64_t>(all.size());
  if (count >= n) return all;
  std::vector<std::int64_t> out;
  for (std::int64_t i = 0; i < count; ++i)
    out.push_back(all[static_cast<std::size_t>(i * n / count)]);
  return out;
}

// The rows of a batch that decoded (a corrupt image leaves an empty row range).
std::vector<std::int64_t> decoded_rows(const data::Batch& b) {
  std::vector<std::int64_t> rows;
  for (std::int64_t i = 0; i < b.items(); ++i) {
    const std::int64_t r = b.offsets[static_cast<std::size_t>(i)];
    if (b.offsets[static_cast<std::size_t>(i) + 1] != r) rows.push_back(r);
  }
  return rows;
}

// Dice per image of logits > 0 against a 0/1 mask, both [N, 1, H, W]; both empty count as 1.
torch::Tensor dice_per_image(const torch::Tensor& logits, const torch::Tensor& mask) {
  const auto p = (logits > 0).to(torch::kFloat).flatten(1);
  const auto m = mask.to(torch::kFloat).flatten(1);
  const auto inter = (p * m).sum(1), total = p.sum(1) + m.sum(1);
  return torch::where(total > 0, 2 * inter / total.clamp_min(1), torch::ones_like(total));
}

// The side a training batch is resized to: one of `scales` × image_size, rounded to a multiple
// of 32 as PraNet does, chosen by a hash of the batch's images (the same on a resumed run).
int training_side(const DistillOptions& o, const std::vector<std::int64_t>& images) {
  if (o.scales.size() == 1 && o.scales[0] == 1.0) return o.image_size;
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over the indices
  for (const std::int64_t i : images) h = (h ^ static_cast<std::uint64_t>(i)) * 1099511628211ULL;
  const double scale = o.scales[h % o.scales.size()];
  if (scale == 1.0) return o.image_size;
  return std::max(32, static_cast<int>(std::lround(o.image_size * scale / 32.0)) * 32);
}

// Everything the rounds share.
struct Context {
  const DistillOptions& o;
  dist::Communicator& comm;
  const RunDir& run;
  Layout layout;
  MaskIndex pseudo;                                 // the input masks sidecar
  std::vector<std::int64_t> predict;                // images the pseudo masks refined
  std::vector<std::int64_t> heldout;                // truth images with a polyp outside `predict`
  std::shared_ptr<const data::Dataset> truth_only;  // truth masks, no pixels (with truth)
  std::shared_ptr<const data::Dataset> with_truth;  // pixels and truth masks (with truth)
  std::string key;
  json model_json;
  std::unique_ptr<vision::Refiner> refiner;   // distill.refine.refiner, or null
  std::unique_ptr<data::FeatureCache> cache;  // its image features (distill.refine.cache), or null
};

data::LoaderOptions loader_options(const DistillOptions& o, bool augment, std::uint64_t seed) {
  data::LoaderOptions lo = data::square_loader_options(o.image_size, o.threads, seed, augment);
  lo.batch_size = o.batch_size;
  return lo;
}

PredictOptions predict_options(const DistillOptions& o, int threads) {
  return {o.image_size, o.batch_size, threads};
}

// Truth images with a polyp that the pseudo masks did not refine, spread over the store (a fixed
// shuffle), at most eval_images of them, in index order.
std::vector<std::int64_t> heldout_images(const Context& c) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(c.layout.images));
  for (std::size_t g = 0; g < order.size(); ++g) order[g] = static_cast<std::int64_t>(g);
  std::mt19937_64 rng(12345);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<bool> refined(order.size(), false);
  for (const std::int64_t g : c.predict) refined[static_cast<std::size_t>(g)] = true;
  std::vector<std::int64_t> out;
  for (const std::int64_t g : order) {
    if (static_cast<int>(out.size()) >= c.o.eval_images) break;
    if (refined[static_cast<std::size_t>(g)]) continue;
    const auto raw = c.truth_only->read(g);
    if (raw.at(0).mask_bytes.empty()) continue;
    const cv::Mat t = vision::decode_mask(raw[0].mask_bytes, raw[0].id + " (truth mask)");
    if (cv::countNonZero(t) > 0) out.push_back(g);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// This rank's share of the held-out images (every world-size-th one).
std::vector<std::int64_t> heldout_share(const Context& c) {
  std::vector<std::int64_t> mine;
  for (std::size_t i = 0; i < c.heldout.size(); ++i)
    if (static_cast<int>(i % static_cast<std::size_t>(c.comm.size())) == c.comm.rank())
      mine.push_back(c.heldout[i]);
  return mine;
}

// Collective: the PraNet metrics of the model on this rank's share of the held-out images.
std::map<std::string, double> evaluate_heldout(const Context& c, vision::SegmentationNetImpl& net) {
  engine::MetricSums sums;
  predict_each(net, c.with_truth, heldout_share(c), predict_options(c.o, c.o.threads),
               [&](std::int64_t g, const torch::Tensor& logits) {
                 const auto raw = c.truth_only->read(g);
                 const cv::Mat truth =
                     vision::decode_mask(raw.at(0).mask_bytes, raw[0].id + " (truth mask)");
                 const vision::PolypScores s =
                     vision::polyp_scores(probability_at(logits, truth.cols, truth.rows), truth);
                 sums.add("dice", s.dice);
                 sums.add("iou", s.iou);
                 sums.add("weighted_f", s.weighted_f);
                 sums.add("s_measure", s.s_measure);
                 sums.add("mean_e_measure", s.mean_e_measure);
                 sums.add("mae", s.mae);
               });
  return engine::reduce_metrics(c.comm, sums);
}

struct TruthSums {
  std::int64_t images = 0;  // training images with a truth mask
  double train_masks_dice = 0, dice = 0;
  std::int64_t accepted = 0;  // accepted predictions with a truth mask
  double accepted_dice = 0;
  json to_json() const { return {images, train_masks_dice, dice, accepted, accepted_dice}; }
  void add(const json& j) {
    images += j[0].get<std::int64_t>();
    train_masks_dice += j[1].get<double>();
    dice += j[2].get<double>();
    accepted += j[3].get<std::int64_t>();
    accepted_dice += j[4].get<double>();
  }
};

// Predicts the refined images of shard s, judges the masks, writes the round's shard.
json predict_shard(const Context& c, vision::SegmentationNetImpl& net, int round,
                   const std::vector<bool>& trained_on,
                   const std::shared_ptr<const data::Dataset>& train_masks, int s,
                   const std::string& partial, Progress& progress) {
  const DistillOptions& o = c.o;
  const auto& l = c.layout;
  const std::int64_t e0 = l.shard_first_exam[static_cast<std::size_t>(s)];
  const std::int64_t e1 = e0 + l.shard_exams[static_cast<std::size_t>(s)];
  std::int64_t shard_images = 0;
  for (std::int64_t e = e0; e < e1; ++e)
    shard_images += l.spans[static_cast<std::size_t>(e)].image_count;
  // The shard's images are [g0, g0 + shard_images) (none for a shard without exams).
  const std::int64_t g0 = e1 > e0 ? l.spans[static_cast<std::size_t>(e0)].first_image : 0;
  std::vector<std::int64_t> images;
  for (const std::int64_t g : c.predict)
    if (g >= g0 && g < g0 + shard_images) images.push_back(g);
  std::vector<data::MaskRow> rows(static_cast<std::size_t>(shard_images));
  json counts = json::object(), accepted = json::array(), samples = json::array();
  json failures = json::array();
  TruthSums t;
  data::RecordStore records(o.store);
  // One bad image (undecodable, a malformed row or truth mask) is counted and named, not fatal.
  auto fail = [&](std::int64_t g, const std::string& reason) {
    data::MaskRow& row = rows[static_cast<std::size_t>(g - g0)];
    row = data::MaskRow{};
    row.status = "failed";
    counts["failed"] = counts.value("failed", 0) + 1;
    failures.push_back(fmt::format("image {}: {}", g, reason));
    progress.add();
  };
  // A prediction judged by the box rules against the boxes its pseudo mask started from; with
  // distill.refine, an accepted one refined again from its components' boxes and judged again.
  struct Pending {
    std::int64_t g = 0;
    cv::Mat prob, mask;
    vision::Refined r;
    std::string reason, failed;
    json predicted;  // the prediction's scores when it was refined again
  };
  // Writes the image's row (the caller catches Error: the image is then failed).
  auto finish = [&](Pending& p) {
    const auto gi = static_cast<std::size_t>(p.g);
    data::MaskRow& row = rows[static_cast<std::size_t>(p.g - g0)];
    row.status = p.reason.empty() ? "accepted" : p.reason;
    row.mask.bytes = vision::encode_mask_png(p.mask);
    row.quality = cv::countNonZero(p.mask) > 0 ? cv::mean(p.prob, p.mask)[0] : 0.0;
    row.refiner = c.refiner && !p.predicted.is_null() ? "distill+" + c.refiner->name() : "distill";
    row.boxes = c.pseudo.boxes[gi];
    json scores = p.r.scores;
    scores["round"] = round;
    if (!p.predicted.is_null()) scores["predicted"] = p.predicted;
    row.scores = scores.dump();
    if (c.truth_only && trained_on[gi]) {
      const auto truth_raw = c.truth_only->read(p.g);
      if (!truth_raw.at(0).mask_bytes.empty()) {
        const cv::Mat truth =
            vision::decode_mask(truth_raw[0].mask_bytes, truth_raw[0].id + " (truth mask)");
        const auto train_raw = train_masks->read(p.g);
        const cv::Mat train =
            vision::decode_mask(train_raw.at(0).mask_bytes, train_raw[0].id + " (training mask)");
        const double dice = vision::segmentation_score(p.mask, truth).dice;
        const double train_dice = vision::segmentation_score(train, truth).dice;
        ++t.images;
        t.train_masks_dice += train_dice;
        t.dice += dice;
        if (p.reason.empty()) {
          ++t.accepted;
          t.accepted_dice += dice;
        }
      }
    }
    // Counted last: a truth mask that fails above leaves the image `failed` alone.
    counts[row.status] = counts.value(row.status, 0) + 1;
    if (p.reason.empty()) accepted.push_back(p.g);
    if (static_cast<int>(samples.size()) < o.montage) samples.push_back(p.g);
    progress.add();
  };
  auto finish_or_fail = [&](Pending& p) {
    if (!p.failed.empty()) return fail(p.g, p.failed);
    try {
      finish(p);
    } catch (const Error& e) {
      fail(p.g, e.reason());
    }
  };
  auto cache = c.cache ? c.cache->open(s) : nullptr;
  vision::RefineBatchStats stats;
  const std::size_t chunk = c.refiner && c.refiner->features().values > 0
                                ? static_cast<std::size_t>(o.refine.batch)
                                : static_cast<std::size_t>(4 * o.threads);
  std::vector<Pending> pending;
  // The accepted predictions of `pending` refined again from their components' boxes.
  auto refine_pending = [&] {
    std::vector<vision::RefineItem> items(pending.size());
    const bool keyed = cache != nullptr;
    parallel_for(static_cast<std::int64_t>(pending.size()), o.threads, [&](std::int64_t i) {
      Pending& p = pending[static_cast<std::size_t>(i)];
      if (!p.failed.empty() || !p.reason.empty()) return;
      vision::RefineItem& item = items[static_cast<std::size_t>(i)];
      try {
        const data::ImageRecord rec = records.image(p.g, true);
        item.image = data::decode_rgb(rec.bytes, 0, 0);
        for (const auto& comp : vision::components(p.mask)) item.boxes.push_back(comp.box);
        if (keyed) item.key = sha256_hex(rec.bytes);
      } catch (const Error& e) {
        item.image = cv::Mat();
        p.failed = e.reason();
      }
    });
    vision::refine_batch(
        *c.refiner, items, cache.get(), o.threads, stats,
        [&](std::size_t i, vision::Refined&& r) {
          Pending& p = pending[i];
          p.predicted = p.r.scores;
          p.reason = vision::judge_mask(r, o.accept);
          p.mask = r.mask;
          p.r = std::move(r);
        },
        [&](std::size_t i, const std::string& reason) { pending[i].failed = reason; });
    for (Pending& p : pending) finish_or_fail(p);
    pending.clear();
  };
  data::DatasetOptions d;
  d.store = o.store;
  // One shard per rank at a time: one decode thread, LibTorch has the rest.
  predict_each(
      net, data::make_dataset(d), images, predict_options(o, 1),
      [&](std::int64_t g, const torch::Tensor& logits) {
        Pending p;
        p.g = g;
        try {
          const data::ImageRecord rec = records.image(g, false);
          p.prob = probability_at(logits, rec.width, rec.height);
          p.mask = (p.prob > o.threshold) / 255;
          p.r = vision::score_mask(p.mask.clone(),
                                   vision::parse_boxes(c.pseudo.boxes[static_cast<std::size_t>(g)],
                                                       fmt::format("image {}", g)),
                                   {});
          p.reason = vision::judge_mask(p.r, o.accept);
        } catch (const Error& e) {
          p.failed = e.reason();
        }
        if (!c.refiner) return finish_or_fail(p);
        pending.push_back(std::move(p));
        if (pending.size() >= chunk) refine_pending();
      },
      [&](std::int64_t g) { fail(g, "does not decode"); });
  if (!pending.empty()) refine_pending();
  const json features = c.refiner && c.refiner->features().values > 0
                            ? vision::feature_stats(stats, cache.get())
                            : json::object();
  data::ShardWriter sw(partial, s, "masks");
  data::ImageSidecarWriter<data::MaskRow> writer(sw);
  for (std::int64_t e = e0; e < e1; ++e) {
    const auto& span = l.spans[static_cast<std::size_t>(e)];
    writer.add_exam(span.id, std::vector<data::MaskRow>(
                                 rows.begin() + (span.first_image - g0),
                                 rows.begin() + (span.first_image - g0) + span.image_count));
  }
  return {{"info", sw.close().to_json()}, {"counts", counts},     {"accepted", accepted},
          {"samples", samples},           {"failures", failures}, {"truth", t.to_json()},
          {"features", features}};
}

// montage-distill.png: sampled images with the probability map, the mask and the boxes.
void write_montage(const Context& c, vision::SegmentationNetImpl& net,
                   const std::vector<json>& shards) {
  std::vector<std::int64_t> sample;
  for (const auto& sh : shards)
    for (const auto& g : sh["samples"])
      if (static_cast<int>(sample.size()) < c.o.montage) sample.push_back(g.get<std::int64_t>());
  if (sample.empty()) return;
  data::DatasetOptions d;
  d.store = c.o.store;
  const auto images = data::make_dataset(d);
  std::vector<cv::Mat> tiles;
  std::vector<std::string> captions;
  predict_each(
      net, images, sample, predict_options(c.o, 1),
      [&](std::int64_t g, const torch::Tensor& logits) {
        const auto raw = images->read(g);
        const cv::Mat image = data::decode_rgb(raw.at(0).bytes, 0, 0);
        const cv::Mat prob = probability_at(logits, image.cols, image.rows);
        const cv::Mat mask = (prob > c.o.threshold) / 255;
        std::string caption = fmt::format(
            "mean p {:.2f}", cv::countNonZero(mask) > 0 ? cv::mean(prob, mask)[0] : 0.0);
        if (c.truth_only) {
          const auto t = c.truth_only->read(g);
          if (!t.at(0).mask_bytes.empty())
            caption = fmt::format(
                "Dice {:.2f}",
                vision::segmentation_score(mask, vision::decode_mask(t[0].mask_bytes, t[0].id))
                    .dice);
        }
        tiles.push_back(vision::overlay(
            image, prob,
            vision::parse_boxes(c.pseudo.boxes[static_cast<std::size_t>(g)], raw[0].id), mask));
        captions.push_back(caption);
      });
  const std::string png = vision::montage_png(tiles, captions);
  if (!png.empty()) files::atomic_write(c.run.path() + "/montage-distill.png", png);
}

// curves-distill-loss.png and curves-distill-dice.png from the run's metrics.jsonl: the loss and
// held-out Dice per epoch over the rounds (the last record of each epoch wins: a resumed run
// repeats some).
void write_curves(const Context& c) {
  std::ifstream in(c.run.path() + "/metrics.jsonl");
  std::map<std::pair<int, std::int64_t>, double> loss, dice;
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("stage") || !j["stage"].is_string()) continue;
    const std::string stage = j["stage"];
    int round = 0;
    if (std::sscanf(stage.c_str(), "distill-round%d", &round) != 1) continue;
    if (j.contains("epoch_end") && j.contains("loss"))
      loss[{round, j["epoch_end"].get<std::int64_t>()}] = j["loss"].get<double>();
    if (j.contains("eval_epoch") && j.contains("heldout_dice"))
      dice[{round, j["eval_epoch"].get<std::int64_t>()}] = j["heldout_dice"].get<double>();
  }
  if (loss.empty()) return;
  // Epochs numbered over the rounds: round k's epochs follow round k - 1's.
  std::map<int, std::int64_t> first;
  std::int64_t next = 0;
  for (const auto& [key, v] : loss)
    if (!first.count(key.first)) {
      first[key.first] = next;
      std::int64_t last = 0;
      for (const auto& [k2, v2] : loss)
        if (k2.first == key.first) last = std::max(last, k2.second);
      next += last + 1;
    }
  vision::Series l{"loss", {}, {}}, d{"held-out Dice", {}, {}};
  for (const auto& [key, v] : loss) {
    l.x.push_back(static_cast<double>(first[key.first] + key.second + 1));
    l.y.push_back(v);
  }
  for (const auto& [key, v] : dice)
    if (first.count(key.first)) {
      d.x.push_back(static_cast<double>(first[key.first] + key.second + 1));
      d.y.push_back(v);
    }
  std::vector<double> marks;
  for (const auto& [round, f] : first)
    if (f > 0) marks.push_back(static_cast<double>(f) + 0.5);
  const std::string loss_png =
      vision::line_chart_png("distill: training loss (rounds dashed)", {l}, "epoch", marks);
  if (!loss_png.empty()) files::atomic_write(c.run.path() + "/curves-distill-loss.png", loss_png);
  const std::string dice_png = vision::line_chart_png(
      "distill: Dice on held-out truth images (rounds dashed)", {d}, "epoch", marks);
  if (!dice_png.empty()) files::atomic_write(c.run.path() + "/curves-distill-dice.png", dice_png);
}

}  // namespace

std::pair<vision::SegmentationNet, json> load_distilled(const std::string& checkpoint) {
  const fs::path pt =
      fs::is_directory(checkpoint) ? fs::path(checkpoint) / "model.pt" : fs::path(checkpoint);
  const fs::path js = pt.parent_path() / "model.json";
  ENDOKED_CHECK(fs::is_regular_file(pt) && fs::is_regular_file(js), "'", checkpoint,
                "' is not a distill output: model.pt and model.json expected in ",
                pt.parent_path().string());
  const json model = json::parse(files::read_all(js.string()), nullptr, false);
  ENDOKED_CHECK(model.is_object() && model.contains("backbone") && model.contains("image_size"),
                "'", js.string(), "' is not a distill model.json");
  DistillModel m;
  try {
    m.arch = model.at("arch").get<std::string>();
    m.backbone = model.at("backbone").get<std::string>();
    m.width = model.at("width").get<int>();
    m.decoder_width = model.at("decoder_width").get<int>();
    m.deep_supervision = model.at("deep_supervision").get<bool>();
  } catch (const json::exception& e) {
    ENDOKED_FAIL("'", js.string(), "': ", e.what());
  }
  m.weights = pt.string();
  vision::SegmentationNet net = make_model(m);
  net->eval();
  return {net, model};
}

json run_distill(dist::Communicator& comm, const DistillOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.store.empty(), "distill.store is empty: name the record store");
  ENDOKED_CHECK(!o.masks.empty(), "distill.masks is empty: name a masks sidecar (endoked refine)");
  ENDOKED_CHECK(o.image_size >= 32 && o.batch_size >= 2 && o.threads >= 1 && o.montage >= 0 &&
                    o.rounds >= 1 && o.round_epochs >= 0 && o.ignore_band >= 0 &&
                    o.eval_images >= 0,
                "distill.image_size must be ≥ 32, batch_size ≥ 2 (batch norm), threads and "
                "rounds ≥ 1, round_epochs, ignore_band, eval_images and montage ≥ 0");
  ENDOKED_CHECK(o.negatives >= 0, "distill.negatives must be ≥ 0, got ", o.negatives);
  ENDOKED_CHECK(!o.scales.empty() && std::all_of(o.scales.begin(), o.scales.end(),
                                                 [](double s) { return s > 0 && s <= 4; }),
                "distill.scales must be a list of factors in (0, 4], e.g. [0.75, 1, 1.25]");
  ENDOKED_CHECK(o.threshold > 0 && o.threshold < 1, "distill.threshold must be in (0, 1), got ",
                o.threshold);
  data::cap_library_threads(o.threads);
  const data::Manifest in_m = data::Manifest::load(o.store);
  const data::Manifest masks_m = data::Manifest::load(o.masks);
  Context c{o, comm, run, {}, {}, {}, {}, nullptr, nullptr, {}, {}, nullptr, nullptr};
  {
    data::RecordStore records(o.store);
    c.layout.spans = records.exam_spans();
    c.layout.images = records.image_count();
  }
  std::int64_t first = 0;
  for (const auto& s : in_m.shards) {
    c.layout.shard_first_exam.push_back(first);
    c.layout.shard_exams.push_back(s.exams);
    first += s.exams;
  }
  c.pseudo = read_mask_index(o.masks, c.layout);
  std::vector<std::int64_t> train;
  for (std::int64_t g = 0; g < c.layout.images; ++g) {
    const std::string& st = c.pseudo.status[static_cast<std::size_t>(g)];
    if (st == "accepted") train.push_back(g);
    if (st != "no_box" && st != "failed") c.predict.push_back(g);
  }
  ENDOKED_CHECK(!train.empty(), "distill: the masks sidecar '", o.masks,
                "' has no accepted mask to learn from");
  c.key = engine::resume_key(config::to_yaml(o), in_m.content_sha256() + masks_m.content_sha256());
  if (!o.refine.refiner.empty()) {
    ENDOKED_CHECK(o.refine.batch >= 1, "distill.refine.batch must be ≥ 1");
    c.refiner = vision::make_refiner(o.refine.refiner, o.refine.options);
    ENDOKED_CHECK(!c.refiner->needs_cam(), "distill.refine.refiner '", o.refine.refiner,
                  "' needs the CAM, which distill does not have: box, ellipse, grabcut or sam");
    std::vector<std::string> others = {o.store, o.masks, o.truth, o.labels};
    for (int r = 1; r <= o.rounds; ++r) others.push_back(round_output(o, r));
    c.cache =
        vision::open_feature_cache(*c.refiner, o.refine.cache, others, "distill.refine.cache");
  }

  // Outputs: a round's output left by an earlier run of this config (preempted in a later round)
  // is replaced without `overwrite`; everything else only with it.
  std::vector<std::string> inputs = {o.store, o.masks};
  if (!o.truth.empty()) inputs.push_back(o.truth);
  if (!o.labels.empty()) inputs.push_back(o.labels);
  std::vector<engine::Output> fresh, ours;
  for (int r = 1; r <= o.rounds; ++r) {
    const std::string dir = round_output(o, r);
    bool mine = false;
    if (r < o.rounds && fs::exists(dir + "/manifest.json")) {
      const data::Manifest m = data::Manifest::load(dir);
      mine = m.kind == "masks" && m.provenance.value("resume_key", "") == c.key;
    }
    (mine ? ours : fresh).push_back({dir, "masks"});
  }
  engine::begin_outputs(comm, fresh, o.overwrite, inputs);
  if (!ours.empty()) engine::begin_outputs(comm, ours, true, inputs);

  if (!o.truth.empty()) {
    data::DatasetOptions t;
    t.store = o.store;
    t.sidecars = {o.truth};
    t.mask_column = "images/mask";
    c.with_truth = data::make_dataset(t);
    t.pixels = false;
    c.truth_only = data::make_dataset(t);
    c.heldout = heldout_images(c);
  }
  std::vector<std::int64_t> negatives;
  if (!o.labels.empty())
    negatives = negative_images(o.store, o.labels, c.layout.spans,
                                std::llround(o.negatives * static_cast<double>(train.size())));
  log::info(
      "distill: {} images, {} accepted mask(s) to learn from ({} refined), {} negative image(s), "
      "{} round(s), {} held-out truth image(s), {} rank(s)",
      c.layout.images, train.size(), c.predict.size(), negatives.size(), o.rounds, c.heldout.size(),
      comm.size());

  torch::manual_seed(o.seed);
  vision::SegmentationNet net = make_model(o.model);
  c.model_json = {{"arch", o.model.arch},
                  {"backbone", o.model.backbone},
                  {"width", o.model.width},
                  {"decoder_width", o.model.decoder_width},
                  {"deep_supervision", o.model.deep_supervision},
                  {"image_size", o.image_size},
                  {"mean", {0.485, 0.456, 0.406}},
                  {"std", {0.229, 0.224, 0.225}},
                  {"threshold", o.threshold}};

  json summary = {{"rounds", json::array()}, {"ranks", comm.size()}};
  std::int64_t steps = 0, epochs = 0;
  double seconds = 0;
  std::string train_masks_dir = o.masks;
  for (int round = 1; round <= o.rounds; ++round) {
    data::DatasetOptions d;
    d.store = o.store;
    d.sidecars = {train_masks_dir};
    d.mask_column = "images/mask";
    const auto with_masks = data::make_dataset(d);
    auto train_set = std::make_shared<TrainingImages>(with_masks, train, negatives);
    engine::TrainerOptions to = o.trainer;
    if (round > 1 && o.round_epochs > 0) to.epochs = o.round_epochs;
    if (to.checkpoint.dir.empty())
      to.checkpoint.dir = fmt::format("{}/checkpoints/distill-{}", run.path(), c.key.substr(0, 12));
    to.checkpoint.dir += fmt::format("-round{}", round);
    const std::string name = fmt::format("distill-round{}", round);
    engine::Trainer trainer(to, comm, run, config::to_yaml(o), name);
    torch::optim::Adam optimizer(net->parameters(),
                                 torch::optim::AdamOptions(to.lr_schedule.lr).weight_decay(1e-4));
    std::map<int, std::int64_t> input_sizes;  // this rank's steps per training side (scales)
    const engine::StepFn step = [&](const data::Batch& b) {
      engine::StepOutput out;
      const auto rows = decoded_rows(b);
      if (rows.empty()) {
        out.loss = torch::zeros({}, torch::requires_grad());
        return out;
      }
      const auto idx = torch::tensor(rows, torch::kLong);
      auto x = b.images.index_select(0, idx);
      auto m = b.masks.index_select(0, idx).to(torch::kFloat);
      namespace F = torch::nn::functional;
      const int size = training_side(o, b.indices);
      if (size != x.size(2)) {
        const auto resize = F::InterpolateFuncOptions()
                                .size(std::vector<std::int64_t>{size, size})
                                .mode(torch::kBilinear)
                                .align_corners(false);
        x = F::interpolate(x, resize);
        m = (F::interpolate(m, resize) > 0.5).to(torch::kFloat);
      }
      ++input_sizes[size];
      torch::Tensor ignore;
      if (o.ignore_band > 0) {
        const auto pool =
            F::MaxPool2dFuncOptions(2 * o.ignore_band + 1).stride(1).padding(o.ignore_band);
        ignore = F::max_pool2d(m, pool) + F::max_pool2d(-m, pool);  // dilated − eroded
      }
      const std::vector<torch::Tensor> outs = net->forward_all(x);
      torch::Tensor loss = vision::structure_loss(outs[0], m, ignore);
      for (std::size_t i = 1; i < outs.size(); ++i)
        loss = loss + vision::structure_loss(outs[i], m, ignore);
      out.loss = loss;
      out.metrics["dice"] = dice_per_image(outs[0].detach(), m).mean().item<double>();
      return out;
    };
    // With truth: the held-out Dice after every epoch, at the training resolution.
    engine::EvalFn eval;
    if (!c.heldout.empty())
      eval = [&](std::int64_t) {
        engine::MetricSums sums;
        const std::vector<std::int64_t> mine = heldout_share(c);
        if (mine.empty()) return sums;
        auto subset = std::make_shared<data::ImageSubset>(c.with_truth, mine);
        data::Loader loader(subset, loader_options(o, false, o.seed), 0, 0, 1);
        data::Batch b;
        while (loader.next(b)) {
          const auto rows = decoded_rows(b);
          if (rows.empty()) continue;
          const auto idx = torch::tensor(rows, torch::kLong);
          const auto dice = dice_per_image(net->forward(b.images.index_select(0, idx)),
                                           b.masks.index_select(0, idx));
          sums.add("heldout_dice", dice.sum().item<double>(), static_cast<double>(rows.size()));
        }
        return sums;
      };
    data::LoaderOptions train_loader = loader_options(o, o.augment, o.seed + round - 1);
    train_loader.tail = "pad";
    const engine::FitResult fit = trainer.fit(
        *net, optimizer, engine::loader_source(train_set, train_loader, comm.rank(), comm.size()),
        step, eval);
    steps += fit.steps;
    epochs += fit.epochs;
    seconds += fit.seconds;
    summary["steps"] = steps;
    if (fit.preempted) {
      summary["preempted"] = true;
      summary["round"] = round;
      return summary;
    }

    // Predict the refined images, judge the masks, write the round's output.
    net->eval();
    json r = {
        {"round", round},           {"trained_on", train.size()}, {"negatives", negatives.size()},
        {"masks", train_masks_dir}, {"epochs", fit.epochs},       {"steps", fit.steps},
        {"seconds", fit.seconds},   {"last_loss", fit.last_loss}};
    if (o.scales.size() > 1) {
      r["input_sizes"] = json::object();
      for (const auto& [side, n] : input_sizes) r["input_sizes"][std::to_string(side)] = n;
    }
    if (!c.heldout.empty()) r["heldout"] = evaluate_heldout(c, *net);
    r["heldout_images"] = c.heldout.size();
    std::vector<bool> trained_on(static_cast<std::size_t>(c.layout.images), false);
    for (const std::int64_t g : train) trained_on[static_cast<std::size_t>(g)] = true;
    d.pixels = false;
    const auto train_masks = data::make_dataset(d);
    const std::string out_dir = round_output(o, round);
    const std::string partial = data::partial_dir(out_dir);
    engine::ShardedWork w;
    w.stage = name;
    w.shards = static_cast<int>(in_m.shards.size());
    w.unit = "images";
    w.work = [&](int s, Progress& progress) {
      return predict_shard(c, *net, round, trained_on, train_masks, s, partial, progress);
    };
    // Every rank reopens the cache: the parts rank 0 committed in earlier rounds are then read
    // (the manifest is read when the cache is opened).
    if (c.cache)
      c.cache = vision::open_feature_cache(*c.refiner, o.refine.cache, {}, "distill.refine.cache");
    const engine::ShardedResult done = engine::run_shards(comm, w);
    data::Manifest m;
    m.kind = "masks";
    m.columns = data::image_sidecar_layout<data::MaskRow>();
    json counts = json::object();
    std::vector<std::int64_t> accepted;
    json failures = json::array();
    TruthSums t;
    json features = json::object();  // the re-refiner's image features (sam)
    std::vector<json> cache_parts;
    for (const auto& sh : done.shards) {
      m.shards.push_back(data::ShardInfo::from_json(sh["info"]));
      for (const auto& [k, v] : sh["counts"].items())
        counts[k] = counts.value(k, 0) + v.get<std::int64_t>();
      for (const auto& g : sh["accepted"]) accepted.push_back(g.get<std::int64_t>());
      for (const auto& f : sh["failures"]) {
        if (comm.is_root()) log::warn("distill: round {}: {}", round, f.get<std::string>());
        failures.push_back(f);
      }
      t.add(sh["truth"]);
      vision::add_feature_stats(features, cache_parts, sh["features"]);
    }
    std::sort(accepted.begin(), accepted.end());
    if (c.refiner) {
      r["refiner"] = c.refiner->name();
      if (!features.empty()) r["features"] = features;
    }
    r["predicted"] = c.predict.size();
    r["accepted"] = accepted.size();
    json rejects = json::object();
    for (const auto& [k, v] : counts.items())
      if (k != "accepted") rejects[k] = v;
    r["rejects"] = rejects;
    if (!failures.empty()) r["failures"] = failures;
    r["predict_seconds"] = done.seconds;
    if (t.images > 0) {
      const double n = static_cast<double>(t.images);
      r["truth"] = {{"images", t.images},
                    {"train_masks_dice", t.train_masks_dice / n},
                    {"dice", t.dice / n},
                    {"accepted", t.accepted},
                    {"accepted_dice", t.accepted > 0 ? t.accepted_dice / t.accepted : 0.0}};
    }
    if (c.cache) r["features"]["cache"] = c.cache->dir();
    summary["rounds"].push_back(r);
    const bool last = round == o.rounds;
    engine::commit_on_root(comm, [&] {
      if (last) {
        vision::save_state_dict(vision::state_dict_from(*net), partial + "/model.pt");
        vision::export_torchscript(
            *net, [&](const torch::Tensor& x) { return torch::sigmoid(net->forward(x)); },
            torch::zeros({1, 3, o.image_size, o.image_size}), partial + "/model.ts", "Segmenter");
        json model = c.model_json;
        model["steps"] = steps;
        model["torchscript"] =
            "model.ts: forward(x [N, 3, image_size, image_size] RGB as (x / 255 - mean) / std) -> "
            "polyp probabilities [N, 1, image_size, image_size]";
        files::atomic_write(partial + "/model.json", model.dump(2) + "\n");
      }
      m.provenance = engine::provenance(
          "distill", {{"input_store", fs::absolute(o.store).lexically_normal().string()},
                      {"input_content_sha256", in_m.content_sha256()},
                      {"masks", fs::absolute(train_masks_dir).lexically_normal().string()},
                      {"pseudo_masks", fs::absolute(o.masks).lexically_normal().string()},
                      {"pseudo_masks_provenance", masks_m.provenance},
                      {"round", round},
                      {"rounds", o.rounds},
                      {"model", c.model_json},
                      {"accept", config::to_yaml(o.accept)},
                      {"resume_key", c.key},
                      {"config_sha256", sha256_hex(config::to_yaml(o))}});
      if (c.cache) r["features"]["cache_rows"] = c.cache->commit(cache_parts);
      m.summary = r;
      data::commit_store(out_dir, m);
      run.log_metrics(json{{"stage", name}, {"round_summary", r}});
      if (last && o.montage > 0) write_montage(c, *net, done.shards);
    });
    log::info("distill: round {}: {} of {} prediction(s) accepted{} -> {}", round, accepted.size(),
              c.predict.size(),
              r.contains("truth")
                  ? fmt::format("; Dice on the training images {:.3f} (their masks {:.3f})",
                                r["truth"]["dice"].get<double>(),
                                r["truth"]["train_masks_dice"].get<double>())
                  : std::string(),
              out_dir);
    train = accepted;
    train_masks_dir = out_dir;
    if (!last)
      ENDOKED_CHECK(!train.empty(), "distill: round ", round,
                    " accepted none of its predictions: nothing to learn from in round ", round + 1,
                    " (see ", out_dir, "; loosen distill.accept or train longer)");
    net->train();
  }
  const json& final_round = summary["rounds"].back();
  summary["epochs"] = epochs;
  summary["seconds"] = seconds;
  summary["predicted"] = final_round["predicted"];
  summary["accepted"] = final_round["accepted"];
  if (final_round.contains("truth")) summary["truth"] = final_round["truth"];
  if (final_round.contains("heldout")) summary["heldout"] = final_round["heldout"];
  if (comm.is_root()) {
    write_curves(c);
    run.log_metrics(json{{"stage", "distill"}, {"summary", summary}});
  }
  return summary;
}

}  // namespace endoked::recipes
