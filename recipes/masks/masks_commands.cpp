#include "masks_commands.h"

#include <fmt/format.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/sidecars.h"
#include "endoked/data/store.h"
#include "endoked/engine/sharded_stage.h"
#include "endoked/vision/masks.h"
#include "endoked/vision/seg_metrics.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::recipes {

namespace {

struct MaskItem {
  std::string bytes;
  std::int64_t image = -1;  // global index in the record store (sidecars)
  double quality = 0;
  std::string refiner;
};
using MaskSet = std::map<std::string, MaskItem>;

bool is_sidecar(const std::string& path) {
  return fs::is_directory(path) && fs::exists(fs::path(path) / "manifest.json");
}

std::string store_of(const std::string& sidecar, const std::string& given) {
  if (!given.empty()) return given;
  const data::Manifest m = data::Manifest::load(sidecar);
  const std::string s = m.provenance.value("input_store", "");
  ENDOKED_CHECK(!s.empty(), "'", sidecar,
                "' does not name its record store (provenance input_store): give --store");
  return s;
}

// Rows of an image-level sidecar's blob column (`accepted_only`: status == accepted).
MaskSet read_sidecar(const std::string& dir, const std::string& store, bool accepted_only) {
  const data::Manifest m = data::Manifest::load(dir);
  data::RecordStore records(store);
  std::map<std::string, data::RecordStore::ExamSpan> spans;
  for (auto& s : records.exam_spans()) spans.emplace(s.id, s);
  MaskSet out;
  for (const auto& info : m.shards) {
    data::ShardReader r(dir + "/" + info.file);
    ENDOKED_CHECK(r.has("images", "mask"), "'", r.path(), "' has no images/mask column");
    const auto exams = data::read_rows<data::ExamIndexRow>(r, "exams");
    const bool status = r.has("images", "status");
    for (const auto& e : exams) {
      const auto span = spans.find(e.id);
      ENDOKED_CHECK(span != spans.end(), "'", r.path(), "': exam '", e.id,
                    "' is not in the store '", store, "'");
      for (std::int64_t k = 0; k < e.image_count; ++k) {
        const std::int64_t row = e.first_image + k;
        if (accepted_only && status &&
            r.strings("images", "status")[static_cast<std::size_t>(row)] != "accepted")
          continue;
        MaskItem item;
        item.bytes = r.blob("images", "mask", row);
        if (item.bytes.empty()) continue;
        item.image = span->second.first_image + k;
        if (r.has("images", "quality"))
          item.quality = r.floats("images", "quality")[static_cast<std::size_t>(row)];
        if (r.has("images", "refiner"))
          item.refiner = r.strings("images", "refiner")[static_cast<std::size_t>(row)];
        out[data::case_name(records.image(item.image, false).source_path)] = std::move(item);
      }
    }
  }
  return out;
}

MaskSet read_folder(const std::string& dir) {
  MaskSet out;
  for (const std::string& rel : data::image_files(dir)) {
    const std::string key = data::case_name(rel);
    ENDOKED_CHECK(!out.count(key), "'", dir, "': two masks for case '", key, "'");
    out[key].bytes = files::read_all(dir + "/" + rel);
  }
  ENDOKED_CHECK(!out.empty(), "'", dir, "' holds no mask images (png, jpg, bmp, tif)");
  return out;
}

MaskSet read_set(const std::string& path, const std::string& store, bool accepted_only) {
  ENDOKED_CHECK(fs::is_directory(path), "'", path, "' is neither a sidecar store nor a folder");
  return is_sidecar(path) ? read_sidecar(path, store, accepted_only) : read_folder(path);
}

cv::Mat decode_grey(const std::string& bytes, const std::string& where) {
  try {
    cv::Mat m = data::decode_gray(bytes);
    ENDOKED_CHECK(!m.empty(), "empty image");
    return m;
  } catch (const std::exception& e) {
    ENDOKED_FAIL(where, ": not a mask image (", e.what(), ")");
  }
}

// A new or empty folder for an export (never one with files in it: those are not ours).
// Masks that could not be used: counted, the first ones named, each logged once.
struct Unusable {
  std::int64_t count = 0;
  json cases = json::array();
  void add(const std::string& what, const std::exception& e) {
    ++count;
    if (cases.size() < 20) cases.push_back(what + ": " + e.what());
    log::warn("masks: skipped {} ({})", what, e.what());
  }
};

std::string png_of(const cv::Mat& m) {
  std::vector<std::uint8_t> png;
  cv::imencode(".png", m, png);
  return {png.begin(), png.end()};
}

}  // namespace

json masks_export(const MasksExportOptions& o) {
  ENDOKED_CHECK(!o.coco.empty() || !o.png.empty() || !o.nnunet.empty(),
                "masks export: name at least one of --coco, --png, --nnunet");
  ENDOKED_CHECK(is_sidecar(o.masks), "masks export: '", o.masks, "' is not a masks sidecar");
  const std::string store = store_of(o.masks, o.store);
  const MaskSet set = read_sidecar(o.masks, store, !o.all);
  ENDOKED_CHECK(o.coco.empty() || !fs::exists(o.coco), "masks export: '", o.coco,
                "' exists: an export never replaces a file (name a new one)");
  for (const auto* d : {&o.png, &o.nnunet})
    if (!d->empty()) files::new_folder(*d, "exports go to a new folder");
  if (!o.png.empty()) {
    fs::create_directories(o.png + "/masks");
    fs::create_directories(o.png + "/previews");
  }
  if (!o.nnunet.empty()) {
    fs::create_directories(o.nnunet + "/imagesTr");
    fs::create_directories(o.nnunet + "/labelsTr");
  }
  data::RecordStore records(store);
  json images = json::array(), annotations = json::array();
  std::int64_t id = 0;
  Unusable skipped;
  for (const auto& [key, item] : set) {
    cv::Mat mask;
    data::ImageRecord rec;
    try {
      mask = vision::decode_mask(item.bytes, fmt::format("mask of '{}'", key));
      rec = records.image(item.image, !o.nnunet.empty());
      ENDOKED_CHECK(mask.cols == rec.width && mask.rows == rec.height, "mask of '", key, "' is ",
                    mask.cols, "×", mask.rows, ", its image ", rec.width, "×", rec.height);
    } catch (const std::exception& e) {
      skipped.add("'" + key + "'", e);
      continue;
    }
    ++id;
    if (!o.coco.empty()) {
      const vision::Rle rle = vision::rle_encode(mask);
      const vision::Box b = vision::mask_box(mask);
      images.push_back({{"id", id},
                        {"file_name", rec.source_path},
                        {"width", rec.width},
                        {"height", rec.height}});
      annotations.push_back(
          {{"id", id},
           {"image_id", id},
           {"category_id", 1},
           {"segmentation",
            {{"size", {rle.height, rle.width}}, {"counts", vision::rle_counts_string(rle.counts)}}},
           {"area", cv::countNonZero(mask)},
           {"bbox", {b.x0, b.y0, b.width(), b.height()}},
           {"iscrowd", 0},
           {"score", item.quality},
           {"refiner", item.refiner}});
    }
    if (!o.png.empty()) {
      files::atomic_write(o.png + "/masks/" + key + ".png", png_of(mask));
      files::atomic_write(o.png + "/previews/" + key + ".png", png_of(mask * 255));
    }
    if (!o.nnunet.empty()) {
      cv::Mat bgr;
      cv::cvtColor(data::decode_rgb(rec.bytes, 0, 0), bgr, cv::COLOR_RGB2BGR);
      files::atomic_write(o.nnunet + "/imagesTr/" + key + "_0000.png", png_of(bgr));
      files::atomic_write(o.nnunet + "/labelsTr/" + key + ".png", png_of(mask));
    }
  }
  if (!o.coco.empty()) {
    const json coco = {{"info", {{"description", "endoked masks export of " + o.masks}}},
                       {"images", images},
                       {"annotations", annotations},
                       {"categories", json::array({{{"id", 1}, {"name", "polyp"}}})}};
    files::atomic_write(o.coco, coco.dump() + "\n");
  }
  if (!o.nnunet.empty()) {
    const json dataset = {{"channel_names", {{"0", "R"}, {"1", "G"}, {"2", "B"}}},
                          {"labels", {{"background", 0}, {"polyp", 1}}},
                          {"numTraining", id},
                          {"file_ending", ".png"},
                          {"name", "endoked masks of " + fs::path(o.masks).filename().string()}};
    files::atomic_write(o.nnunet + "/dataset.json", dataset.dump(2) + "\n");
  }
  return {{"masks", id},
          {"store", store},
          {"skipped", skipped.count},
          {"skipped_cases", skipped.cases}};
}

json masks_eval(const MasksEvalOptions& o) {
  ENDOKED_CHECK(!o.masks.empty() && !o.truth.empty(), "masks eval: give --masks and --truth");
  std::string store = o.store;
  if (store.empty() && is_sidecar(o.masks)) store = store_of(o.masks, "");
  if (is_sidecar(o.truth))
    ENDOKED_CHECK(!store.empty(), "masks eval: a truth sidecar needs the record store: --store");
  const MaskSet pred = read_set(o.masks, store, true);
  const MaskSet truth = read_set(o.truth, store, false);
  const bool sidecar = is_sidecar(o.masks);
  std::vector<vision::ScoredBox> boxes;
  std::vector<std::vector<vision::Box>> truth_boxes;
  double dice = 0, iou = 0, box_iou = 0, weighted_f = 0, s_measure = 0, e_measure = 0, mae = 0;
  std::int64_t n = 0, predicted = 0, truths = 0, matched = 0, extra = 0;
  Unusable skipped;
  for (const auto& [key, p] : pred) {
    const auto t = truth.find(key);
    if (t == truth.end()) {
      ++extra;
      continue;
    }
    cv::Mat tg, pg;
    try {
      tg = decode_grey(t->second.bytes, "truth '" + key + "'");
      pg = decode_grey(p.bytes, "prediction '" + key + "'");
    } catch (const std::exception& e) {
      skipped.add("case '" + key + "'", e);
      continue;
    }
    const vision::PolypScores s = vision::polyp_scores(pg, tg);
    const cv::Mat pb = vision::binarise_prediction(pg, tg.size());
    const vision::Detection d = vision::detect(pb, vision::binarise_truth(tg));
    // The detection view: each predicted component a box scored by the mean of the normalised
    // map over it (a sidecar's binary mask: the row's quality).
    truth_boxes.emplace_back();
    for (const auto& c : vision::components(vision::binarise_truth(tg)))
      truth_boxes.back().push_back(c.box);
    const cv::Mat map = vision::normalised_map(pg, tg.size());
    for (const auto& c : vision::components(pb)) {
      const cv::Rect r(c.box.x0, c.box.y0, c.box.width(), c.box.height());
      const double score = sidecar ? p.quality : cv::mean(map(r), pb(r))[0];
      boxes.push_back({n, c.box, score});
    }
    dice += s.dice;
    iou += s.iou;
    weighted_f += s.weighted_f;
    s_measure += s.s_measure;
    e_measure += s.mean_e_measure;
    mae += s.mae;
    box_iou += d.box_iou;
    predicted += d.predicted;
    truths += d.truth;
    matched += d.matched;
    ++n;
  }
  ENDOKED_CHECK(n > 0, "masks eval: no prediction of '", o.masks, "' has a truth in '", o.truth,
                "' (", pred.size(), " predictions, ", truth.size(),
                " truths; cases are matched by name)");
  const double k = static_cast<double>(n);
  const json out = {
      {"images", n},
      {"dice", dice / k},
      {"iou", iou / k},
      {"weighted_f", weighted_f / k},
      {"s_measure", s_measure / k},
      {"mean_e_measure", e_measure / k},
      {"mae", mae / k},
      {"box_iou", box_iou / k},
      {"precision", predicted > 0 ? static_cast<double>(matched) / predicted : 0.0},
      {"recall", truths > 0 ? static_cast<double>(matched) / truths : 0.0},
      {"ap50", vision::average_precision(boxes, truth_boxes, 0.5)},
      {"predictions_without_truth", extra},
      {"truths_without_prediction", static_cast<std::int64_t>(truth.size()) - n - skipped.count},
      {"skipped", skipped.count},
      {"skipped_cases", skipped.cases},
      {"masks", o.masks},
      {"truth", o.truth}};
  if (!o.json.empty()) files::atomic_write(o.json, out.dump(2) + "\n");
  return out;
}

json masks_import(const MasksImportOptions& o) {
  ENDOKED_CHECK(!o.folder.empty() && !o.store.empty() && !o.output.empty(),
                "masks import: give the folder, --store and --output");
  ENDOKED_CHECK(fs::is_directory(o.folder) && !is_sidecar(o.folder), "masks import: '", o.folder,
                "' is not a folder of mask images");
  ENDOKED_CHECK(!fs::exists(o.output), "masks import: '", o.output,
                "' exists: an import never replaces anything (name a new sidecar)");
  // Case name → the file's path below the folder (read one at a time: a million masks need not
  // fit in memory).
  std::map<std::string, std::string> files_by_case;
  for (const std::string& rel : data::image_files(o.folder)) {
    const std::string key = data::case_name(rel);
    ENDOKED_CHECK(!files_by_case.count(key), "masks import: '", o.folder, "': two masks for case '",
                  key, "' ('", files_by_case[key], "', '", rel, "')");
    files_by_case[key] = rel;
  }
  ENDOKED_CHECK(!files_by_case.empty(), "masks import: '", o.folder,
                "' holds no mask images (png, jpg, bmp, tif)");
  data::RecordStore records(o.store);
  const data::Manifest in = data::Manifest::load(o.store);
  const std::vector<data::RecordStore::ExamSpan> spans = records.exam_spans();
  const std::string partial = data::begin_store(o.output, false, "masks", {o.store, o.folder});
  json counts = json::object();
  Unusable failed;
  std::set<std::string> used;
  data::Manifest m;
  m.kind = "masks";
  m.columns = data::image_sidecar_layout<data::MaskRow>();
  Progress progress("masks import", records.image_count(), "images");
  try {
    std::size_t first = 0;
    for (std::size_t s = 0; s < in.shards.size(); ++s) {
      data::ShardWriter w(partial, static_cast<int>(s), "masks");
      {
        data::ImageSidecarWriter<data::MaskRow> writer(w);
        for (std::size_t e = first; e < first + static_cast<std::size_t>(in.shards[s].exams); ++e) {
          const auto& span = spans.at(e);
          std::vector<data::MaskRow> rows(static_cast<std::size_t>(span.image_count));
          for (std::int64_t k = 0; k < span.image_count; ++k) {
            data::MaskRow& row = rows[static_cast<std::size_t>(k)];
            const data::ImageRecord rec = records.image(span.first_image + k, false);
            const std::string key = data::case_name(rec.source_path);
            const auto f = files_by_case.find(key);
            if (f != files_by_case.end()) {
              used.insert(key);
              try {
                const std::string where =
                    fmt::format("'{}/{}' (exam '{}', image {})", o.folder, f->second, span.id, k);
                const cv::Mat mask =
                    vision::decode_mask(files::read_all(o.folder + "/" + f->second), where);
                ENDOKED_CHECK(mask.cols == rec.width && mask.rows == rec.height, where, " is ",
                              mask.cols, "×", mask.rows, ", its image ", rec.width, "×",
                              rec.height);
                json boxes = json::array();
                for (const auto& c : vision::components(mask))
                  boxes.push_back({c.box.x0, c.box.y0, c.box.x1, c.box.y1, 1.0});
                row.status = boxes.empty() ? "empty" : "accepted";
                row.mask = data::Blob{vision::encode_mask_png(mask)};
                row.quality = 1.0;
                row.refiner = "import";
                row.boxes = boxes.dump();
              } catch (const Error& err) {
                row = data::MaskRow{};
                row.status = "failed";
                failed.add("mask of '" + key + "'", err);
              }
            }
            counts[row.status] = counts.value(row.status, 0) + 1;
            progress.add();
          }
          writer.add_exam(span.id, std::move(rows));
        }
      }
      m.shards.push_back(w.close());
      first += static_cast<std::size_t>(in.shards[s].exams);
    }
  } catch (...) {
    data::abandon_store(o.output);
    throw;
  }
  json unmatched = json::array();
  std::int64_t n_unmatched = 0;
  for (const auto& [key, rel] : files_by_case)
    if (!used.count(key) && ++n_unmatched <= 20) unmatched.push_back(key);
  m.provenance = engine::provenance(
      "masks import", {{"input_store", fs::absolute(o.store).lexically_normal().string()},
                       {"input_content_sha256", in.content_sha256()},
                       {"folder", fs::absolute(o.folder).lexically_normal().string()}});
  m.summary = {{"refiner", "import"},
               {"accepted", counts.value("accepted", 0)},
               {"counts", counts},
               {"failed", failed.count},
               {"failures", failed.cases},
               {"unmatched_files", n_unmatched},
               {"unmatched_examples", unmatched}};
  data::commit_store(o.output, m);
  return m.summary;
}

}  // namespace endoked::recipes
