#include "refine_stage.h"

#include <fmt/format.h>

#include <opencv2/imgproc.hpp>

#include <ATen/Parallel.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>

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
#include "endoked/vision/masks.h"
#include "endoked/vision/overlay.h"
#include "endoked/vision/refine_batch.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::recipes {
namespace {

// The record store, the boxes sidecar and the truth, as one shard's work needs them.
struct Sources {
  const RefineOptions& o;
  std::vector<data::RecordStore::ExamSpan> spans;
  std::vector<std::int64_t> shard_first_exam, shard_exams;
  data::Manifest boxes;
  std::shared_ptr<const data::Dataset> images;  // bytes (+ the truth mask)
  const data::FeatureCache* cache = nullptr;    // the refiner's image features, when cached
};

struct Sums {
  std::int64_t images = 0;
  double dice = 0, iou = 0, box_dice = 0, box_iou = 0;
};

// One image of a shard: where it is, and its truth mask's bytes when a truth sidecar is given.
struct Item {
  std::int64_t job = 0;
  std::string where, truth;
};

json refine_shard(const Sources& src, const vision::Refiner& refiner, int s,
                  const std::string& partial, Progress& progress) {
  const RefineOptions& o = src.o;
  const std::string file = o.boxes + "/" + src.boxes.shards.at(static_cast<std::size_t>(s)).file;
  data::ShardReader reader(file);
  const auto exams = data::read_rows<data::ExamIndexRow>(reader, "exams");
  auto rows = data::read_rows<data::BoxesRow>(reader, "images");
  const std::int64_t e0 = src.shard_first_exam[static_cast<std::size_t>(s)];
  ENDOKED_CHECK(
      static_cast<std::int64_t>(exams.size()) == src.shard_exams[static_cast<std::size_t>(s)],
      "refine: '", file, "' has ", exams.size(), " exams, shard ", s, " of the store ",
      src.shard_exams[static_cast<std::size_t>(s)], ": not made from this store");
  struct Job {
    std::int64_t g, row;
  };
  std::vector<Job> jobs;
  for (std::size_t e = 0; e < exams.size(); ++e) {
    const auto& span = src.spans[static_cast<std::size_t>(e0) + e];
    ENDOKED_CHECK(exams[e].id == span.id && exams[e].image_count == span.image_count, "refine: '",
                  file, "' exam ", e, " is '", exams[e].id, "' with ", exams[e].image_count,
                  " images; the store has '", span.id, "' with ", span.image_count);
    for (std::int64_t k = 0; k < span.image_count; ++k)
      if (rows[static_cast<std::size_t>(exams[e].first_image + k)].status == "accepted")
        jobs.push_back({span.first_image + k, exams[e].first_image + k});
  }
  std::vector<data::MaskRow> out(rows.size());
  std::vector<double> dice(jobs.size(), -1), iou(jobs.size()), bdice(jobs.size()),
      biou(jobs.size());
  std::mutex failures_mutex;
  json failures = json::array();
  // One bad image (undecodable, a malformed row) is counted and named, not fatal.
  auto fail = [&](Item& item, const std::string& reason) {
    data::MaskRow& m = out[static_cast<std::size_t>(jobs[static_cast<std::size_t>(item.job)].row)];
    m = data::MaskRow{};
    m.status = "failed";
    std::lock_guard<std::mutex> lock(failures_mutex);
    failures.push_back(item.where + ": " + reason);
  };

  auto cache = src.cache ? src.cache->open(s) : nullptr;
  const bool with_features = refiner.features().values > 0;
  const auto n_jobs = static_cast<std::int64_t>(jobs.size());
  const std::int64_t chunk = with_features ? o.batch : std::max(64, 8 * o.threads);
  vision::RefineBatchStats stats;
  for (std::int64_t c0 = 0; c0 < n_jobs; c0 += chunk) {
    std::vector<Item> items(static_cast<std::size_t>(std::min(chunk, n_jobs - c0)));
    std::vector<vision::RefineItem> batch(items.size());
    const auto n = static_cast<std::int64_t>(items.size());
    // Read and decode (an image that fails here is left empty: refine_batch skips it).
    parallel_for(n, o.threads, [&](std::int64_t i) {
      Item& item = items[static_cast<std::size_t>(i)];
      vision::RefineItem& r = batch[static_cast<std::size_t>(i)];
      item.job = c0 + i;
      const Job& job = jobs[static_cast<std::size_t>(item.job)];
      auto raw = src.images->read(job.g);
      item.where = fmt::format("image '{}'", raw.at(0).id);
      try {
        r.image = data::decode_rgb(raw[0].bytes, 0, 0);
        const data::BoxesRow& b = rows[static_cast<std::size_t>(job.row)];
        r.boxes = vision::parse_boxes(b.boxes, item.where);
        r.cam = vision::decode_cam(b.cam.bytes, item.where);
        if (!r.cam.empty() && r.cam.size() != r.image.size())
          cv::resize(r.cam, r.cam, r.image.size());
        item.truth = std::move(raw[0].mask_bytes);
        if (cache && with_features) r.key = sha256_hex(raw[0].bytes);
      } catch (const Error& e) {
        r.image = cv::Mat();
        fail(item, e.reason());
        progress.add();
      }
    });
    vision::refine_batch(
        refiner, batch, cache.get(), o.threads, stats,
        [&](std::size_t i, vision::Refined&& r) {
          Item& item = items[i];
          const vision::RefineItem& in = batch[i];
          const Job& job = jobs[static_cast<std::size_t>(item.job)];
          data::MaskRow& m = out[static_cast<std::size_t>(job.row)];
          const std::string reason = vision::judge_mask(r, o.accept);
          m.status = reason.empty() ? "accepted" : reason;
          m.mask.bytes = vision::encode_mask_png(r.mask);
          m.quality = r.quality;
          m.refiner = refiner.name();
          m.boxes = rows[static_cast<std::size_t>(job.row)].boxes;
          m.scores = r.scores.dump();
          if (!item.truth.empty() && reason.empty()) {
            const cv::Mat truth = vision::decode_mask(item.truth, item.where + " (truth mask)");
            const auto sc = vision::segmentation_score(r.mask, truth);
            cv::Mat filled = cv::Mat::zeros(in.image.size(), CV_8UC1);
            for (const auto& x : in.boxes)
              filled |= vision::box_mask(in.image.rows, in.image.cols, x);
            const auto bs = vision::segmentation_score(filled, truth);
            const auto k = static_cast<std::size_t>(item.job);
            dice[k] = sc.dice;
            iou[k] = sc.iou;
            bdice[k] = bs.dice;
            biou[k] = bs.iou;
          }
          progress.add();
        },
        [&](std::size_t i, const std::string& reason) {
          fail(items[i], reason);
          progress.add();
        });
  }
  const json features_json = vision::feature_stats(stats, cache.get());

  data::ShardWriter w(partial, s, "masks");
  data::ImageSidecarWriter<data::MaskRow> writer(w);
  for (const auto& e : exams)
    writer.add_exam(e.id, std::vector<data::MaskRow>(out.begin() + e.first_image,
                                                     out.begin() + e.first_image + e.image_count));
  json counts = json::object();
  json samples = {{"accepted", json::array()}, {"rejected", json::array()}};
  for (const Job& job : jobs) {
    const std::string& st = out[static_cast<std::size_t>(job.row)].status;
    counts[st] = counts.value(st, 0) + 1;
    auto& list = samples[st == "accepted" ? "accepted" : "rejected"];
    if (st != "failed" && static_cast<int>(list.size()) < o.montage)
      list.push_back({job.g, job.row});
  }
  Sums t;
  for (std::size_t k = 0; k < jobs.size(); ++k) {
    if (dice[k] < 0) continue;
    ++t.images;
    t.dice += dice[k];
    t.iou += iou[k];
    t.box_dice += bdice[k];
    t.box_iou += biou[k];
  }
  return {{"info", w.close().to_json()},
          {"counts", counts},
          {"samples", samples},
          {"failures", failures},
          {"truth", {t.images, t.dice, t.iou, t.box_dice, t.box_iou}},
          {"features", features_json}};
}

// montage-masks.png: sampled accepted and rejected images with CAM, boxes and mask.
void write_montage(const Sources& src, const std::vector<json>& shards, const RunDir& run) {
  std::vector<cv::Mat> tiles;
  std::vector<std::string> captions;
  for (const char* kind : {"accepted", "rejected"}) {
    int taken = 0;
    for (std::size_t s = 0; s < shards.size() && taken < src.o.montage; ++s) {
      const auto& list = shards[s]["samples"][kind];
      if (list.empty()) continue;
      data::ShardReader boxes(src.o.boxes + "/" + src.boxes.shards[s].file);
      data::ShardReader masks(src.o.output + "/" + data::shard_file_name(static_cast<int>(s)));
      for (const auto& item : list) {
        if (taken >= src.o.montage) break;
        const auto g = item[0].get<std::int64_t>(), row = item[1].get<std::int64_t>();
        const auto raw = src.images->read(g);
        const cv::Mat image = data::decode_rgb(raw.at(0).bytes, 0, 0);
        cv::Mat cam = vision::decode_cam(boxes.blob("images", "cam", row), raw[0].id);
        if (!cam.empty() && cam.size() != image.size()) cv::resize(cam, cam, image.size());
        const cv::Mat mask = vision::decode_mask(masks.blob("images", "mask", row), raw[0].id);
        const std::string status = masks.strings("images", "status")[static_cast<std::size_t>(row)];
        tiles.push_back(vision::overlay(
            image, cam,
            vision::parse_boxes(boxes.strings("images", "boxes")[static_cast<std::size_t>(row)],
                                raw[0].id),
            mask));
        captions.push_back(status);
        ++taken;
      }
    }
  }
  const std::string png = vision::montage_png(tiles, captions);
  if (!png.empty()) files::atomic_write(run.path() + "/montage-masks.png", png);
}

}  // namespace

json run_refine(dist::Communicator& comm, const RefineOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.store.empty(), "refine.store is empty: name the record store");
  ENDOKED_CHECK(!o.boxes.empty(), "refine.boxes is empty: name a boxes sidecar (endoked localise)");
  ENDOKED_CHECK(o.threads >= 1 && o.batch >= 1 && o.montage >= 0,
                "refine.threads and refine.batch must be ≥ 1, montage ≥ 0");
  const auto refiner = vision::make_refiner(o.refiner, o.options);
  const vision::Refiner::Features spec = refiner->features();
  const std::unique_ptr<data::FeatureCache> cache = vision::open_feature_cache(
      *refiner, o.cache, {o.store, o.boxes, o.output, o.truth}, "refine.cache");
  data::cap_library_threads(1);
  const data::Manifest in = data::Manifest::load(o.store);
  Sources src{o, {}, {}, {}, data::Manifest::load(o.boxes), nullptr, cache.get()};
  ENDOKED_CHECK(src.boxes.kind == "boxes", "refine.boxes '", o.boxes, "' is a ", src.boxes.kind,
                " store, not a boxes sidecar");
  ENDOKED_CHECK(src.boxes.shards.size() == in.shards.size(), "refine.boxes '", o.boxes, "' has ",
                src.boxes.shards.size(), " shards, the store ", in.shards.size(),
                ": not made from this store");
  std::vector<std::string> inputs = {o.store, o.boxes};
  if (!o.truth.empty()) inputs.push_back(o.truth);
  engine::begin_outputs(comm, {{o.output, "masks"}}, o.overwrite, inputs);
  {
    data::RecordStore records(o.store);
    src.spans = records.exam_spans();
  }
  std::int64_t first = 0;
  for (const auto& s : in.shards) {
    src.shard_first_exam.push_back(first);
    src.shard_exams.push_back(s.exams);
    first += s.exams;
  }
  data::DatasetOptions d;
  d.store = o.store;
  if (!o.truth.empty()) {
    d.sidecars = {o.truth};
    d.mask_column = "images/mask";
  }
  src.images = data::make_dataset(d);
  log::info("refine: {} ({}), boxes {}, {} shard(s), {} rank(s)", o.refiner,
            refiner->needs_cam() ? "with the CAMs" : "from the boxes", o.boxes, in.shards.size(),
            comm.size());

  const std::string partial = data::partial_dir(o.output);
  engine::ShardedWork w;
  w.stage = "refine";
  w.shards = static_cast<int>(in.shards.size());
  w.unit = "images";
  w.work = [&](int s, Progress& progress) {
    return refine_shard(src, *refiner, s, partial, progress);
  };
  const engine::ShardedResult done = engine::run_shards(comm, w);

  data::Manifest m;
  m.kind = "masks";
  m.columns = data::image_sidecar_layout<data::MaskRow>();
  json counts = json::object(), failures = json::array();
  json features = {{"encoded", 0}, {"encode_seconds", 0.0}};
  std::vector<json> cache_parts;
  Sums t;
  for (const auto& sh : done.shards) {
    m.shards.push_back(data::ShardInfo::from_json(sh["info"]));
    for (const auto& [k, v] : sh["counts"].items())
      counts[k] = counts.value(k, 0) + v.get<std::int64_t>();
    for (const auto& f : sh["failures"]) failures.push_back(f);
    vision::add_feature_stats(features, cache_parts, sh["features"]);
    const auto& tr = sh["truth"];
    t.images += tr[0].get<std::int64_t>();
    t.dice += tr[1].get<double>();
    t.iou += tr[2].get<double>();
    t.box_dice += tr[3].get<double>();
    t.box_iou += tr[4].get<double>();
  }
  std::int64_t refined = 0;
  for (const auto& [k, v] : counts.items()) refined += v.get<std::int64_t>();
  json rejects = json::object();
  for (const auto& [k, v] : counts.items())
    if (k != "accepted") rejects[k] = v;
  json summary = {{"refiner", o.refiner},
                  {"refined", refined},
                  {"accepted", counts.value("accepted", 0)},
                  {"rejects", rejects},
                  {"seconds", done.seconds},
                  {"ms_per_image", refined > 0 ? 1000 * done.seconds / refined : 0.0},
                  {"ranks", comm.size()}};
  if (spec.values > 0) {
    if (cache) features["cache"] = cache->dir();
    summary["features"] = features;
  }
  if (!failures.empty()) summary["failures"] = failures;
  if (t.images > 0) {
    const double n = static_cast<double>(t.images);
    summary["truth"] = {{"images", t.images},
                        {"dice", t.dice / n},
                        {"iou", t.iou / n},
                        {"box_dice", t.box_dice / n},
                        {"box_iou", t.box_iou / n}};
  }
  engine::commit_on_root(comm, [&] {
    m.provenance = engine::provenance(
        "refine", {{"input_store", fs::absolute(o.store).lexically_normal().string()},
                   {"input_content_sha256", in.content_sha256()},
                   {"boxes", fs::absolute(o.boxes).lexically_normal().string()},
                   {"boxes_provenance", src.boxes.provenance},
                   {"refiner", o.refiner},
                   {"options", config::to_yaml(o.options)},
                   {"accept", config::to_yaml(o.accept)},
                   {"config_sha256", sha256_hex(config::to_yaml(o))}});
    if (cache) summary["features"]["cache_rows"] = cache->commit(cache_parts);
    m.summary = summary;
    data::commit_store(o.output, m);
    run.log_metrics(json{{"stage", "refine"}, {"summary", summary}});
    if (o.montage > 0) write_montage(src, done.shards, run);
  });
  for (const auto& f : failures) log::warn("refine: {}", f.get<std::string>());
  if (spec.values > 0)
    log::info("refine: image features: {} encoded ({:.1f} s, batches of {}), {} from the cache{}",
              features["encoded"].get<std::int64_t>(), features["encode_seconds"].get<double>(),
              o.batch, features.value("cached", std::int64_t{0}),
              cache ? " " + cache->dir() : std::string(" (no cache)"));
  log::info("refine: {} image(s) refined with {}, {} accepted, rejects {} -> {}", refined,
            o.refiner, summary["accepted"].get<std::int64_t>(), rejects.dump(), o.output);
  return summary;
}

}  // namespace endoked::recipes
