#include "segment_stage.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>

#include "distill_stage.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/data/dataset.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/loader.h"
#include "endoked/data/store.h"
#include "endoked/engine/sharded_stage.h"
#include "endoked/vision/masks.h"
#include "endoked/vision/overlay.h"
#include "predict.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::recipes {
namespace {

constexpr std::int64_t kFolderBlock = 256;  // a folder's images per unit of work

// The image files of a folder as a dataset (the header's size read when the file is; a file that
// cannot be read or is not an image is left for the loader to skip and name).
class FolderImages final : public data::Dataset {
 public:
  FolderImages(std::string root, std::vector<std::string> files)
      : root_(std::move(root)), files_(std::move(files)) {}
  std::int64_t size() const override { return static_cast<std::int64_t>(files_.size()); }
  std::vector<data::RawImage> read(std::int64_t i) const override {
    data::RawImage r;
    r.id = files_.at(static_cast<std::size_t>(i));
    r.image_index = i;
    try {
      r.bytes = files::read_all(root_ + "/" + r.id);
      const data::ImageInfo info = data::read_image_info(r.bytes);
      r.width = info.width;
      r.height = info.height;
    } catch (const std::exception&) {
      r.width = r.height = 0;  // not an image: the loader's decode fails and names it
    }
    return {r};
  }
  std::map<std::string, double> labels(std::int64_t) const override { return {}; }
  bool single_image() const override { return true; }
  std::string item_id(std::int64_t i) const override {
    return files_.at(static_cast<std::size_t>(i));
  }

 private:
  std::string root_;
  std::vector<std::string> files_;
};

std::string png_path(const std::string& rel) {
  return (fs::path(rel).parent_path() / fs::path(rel).stem()).generic_string() + ".png";
}

}  // namespace

json run_segment(dist::Communicator& comm, const SegmentOptions& o, const RunDir& run) {
  ENDOKED_CHECK(!o.checkpoint.empty(), "segment.checkpoint is empty: name a distill output");
  ENDOKED_CHECK(o.images.empty() != o.store.empty(),
                "segment: name either segment.images (a folder) or segment.store (a record "
                "store), not both");
  ENDOKED_CHECK(!o.output.empty(), "segment.output is empty: name a new folder");
  ENDOKED_CHECK(o.batch_size >= 1 && o.threads >= 1, "segment.batch_size and threads must be ≥ 1");
  ENDOKED_CHECK(o.threshold < 1, "segment.threshold must be < 1, got ", o.threshold);
  data::cap_library_threads(o.threads);
  auto [net, model] = load_distilled(o.checkpoint);
  const double threshold = o.threshold >= 0 ? o.threshold : model.value("threshold", 0.5);
  const PredictOptions predict{model.at("image_size").get<int>(), o.batch_size, o.threads};

  // The images, their output names and units of work.
  std::shared_ptr<const data::Dataset> images;
  std::vector<std::string> names;                // relative path of each image
  std::vector<std::vector<std::int64_t>> units;  // images of each unit of work
  if (!o.store.empty()) {
    data::RecordStore records(o.store);
    const auto spans = records.exam_spans();
    std::size_t e = 0;
    for (const auto& shard : records.manifest().shards) {
      units.emplace_back();
      for (std::int64_t k = 0; k < shard.exams; ++k, ++e)
        for (std::int64_t i = 0; i < spans[e].image_count; ++i)
          units.back().push_back(spans[e].first_image + i);
    }
    for (std::int64_t g = 0; g < records.image_count(); ++g)
      names.push_back(records.image(g, false).source_path);
    data::DatasetOptions d;
    d.store = o.store;
    images = data::make_dataset(d);
  } else {
    ENDOKED_CHECK(fs::is_directory(o.images), "segment.images '", o.images, "' is not a folder");
    names = data::image_files(o.images);
    ENDOKED_CHECK(!names.empty(), "segment.images '", o.images,
                  "' holds no images (png, jpg, jpeg, bmp, tif, tiff)");
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(names.size()); ++i) {
      if (i % kFolderBlock == 0) units.emplace_back();
      units.back().push_back(i);
    }
    images = std::make_shared<FolderImages>(o.images, names);
  }
  {
    std::map<std::string, std::string> seen;
    for (const auto& n : names) {
      const auto [it, fresh] = seen.emplace(png_path(n), n);
      ENDOKED_CHECK(fresh, "segment: '", it->second, "' and '", n, "' would both write masks/",
                    it->first, ": rename one");
    }
  }
  engine::commit_on_root(comm, [&] {
    files::new_folder(o.output, "endoked segment writes into a new folder");
    fs::create_directories(o.output + "/masks");
    if (o.overlays) fs::create_directories(o.output + "/overlays");
  });
  log::info("segment: {} image(s) from {}, {} unit(s) of work, {} rank(s), model {} ({} px)",
            names.size(), o.store.empty() ? o.images : o.store, units.size(), comm.size(),
            o.checkpoint, predict.image_size);

  engine::ShardedWork w;
  w.stage = "segment";
  w.shards = static_cast<int>(units.size());
  w.unit = "images";
  w.items = [&](int s) {
    return static_cast<std::int64_t>(units[static_cast<std::size_t>(s)].size());
  };
  w.work = [&](int s, Progress& progress) {
    std::int64_t written = 0;
    double mask_share = 0;
    json skipped = json::array();
    auto write = [&](const std::string& rel, const std::string& bytes) {
      const fs::path p = fs::path(o.output) / rel;
      fs::create_directories(p.parent_path());
      files::atomic_write(p.string(), bytes);
    };
    predict_each(
        *net, images, units[static_cast<std::size_t>(s)], predict,
        [&](std::int64_t i, const torch::Tensor& logits) {
          const std::string& name = names[static_cast<std::size_t>(i)];
          try {
            // The original size from the header; the pixels are decoded only for an overlay.
            const auto raw = images->read(i);
            const int width = raw.at(0).width, height = raw[0].height;
            ENDOKED_CHECK(width > 0 && height > 0, "no image size in its header");
            const cv::Mat prob = probability_at(logits, width, height);
            const cv::Mat mask = (prob > threshold) / 255;
            write("masks/" + png_path(name), vision::encode_map_png(mask));  // 0/255
            if (o.overlays) {
              const cv::Mat image = data::decode_rgb(raw[0].bytes, 0, 0);
              write("overlays/" + png_path(name),
                    vision::encode_rgb_png(
                        vision::overlay(image, {}, {}, mask, std::max(width, height))));
            }
            mask_share += cv::countNonZero(mask) / static_cast<double>(mask.total());
            ++written;
          } catch (const Error& e) {
            skipped.push_back(name + ": " + e.reason());
          }
          progress.add();
        },
        [&](std::int64_t i) {
          skipped.push_back(names[static_cast<std::size_t>(i)] + ": does not decode");
          progress.add();
        });
    return json{{"written", written}, {"mask_share", mask_share}, {"skipped", skipped}};
  };
  const engine::ShardedResult done = engine::run_shards(comm, w);
  std::int64_t written = 0, n_skipped = 0;
  double mask_share = 0;
  json skipped = json::array();  // the first 100 named in segment.json, all in the log
  for (const auto& sh : done.shards) {
    written += sh["written"].get<std::int64_t>();
    mask_share += sh["mask_share"].get<double>();
    for (const auto& x : sh["skipped"]) {
      if (comm.is_root()) log::warn("segment: skipped {}", x.get<std::string>());
      if (++n_skipped <= 100) skipped.push_back(x);
    }
  }
  json summary = {
      {"images", names.size()},
      {"written", written},
      {"skipped", n_skipped},
      {"mean_mask_share", written > 0 ? mask_share / written : 0.0},
      {"images_per_s", done.seconds > 0 ? names.size() / done.seconds : 0.0},
      {"seconds", done.seconds},
      {"threshold", threshold},
      {"model", model},
      {"checkpoint", fs::absolute(o.checkpoint).lexically_normal().string()},
      {"input", fs::absolute(o.store.empty() ? o.images : o.store).lexically_normal().string()},
      {"ranks", comm.size()}};
  if (!skipped.empty()) summary["skipped_images"] = skipped;
  engine::commit_on_root(comm, [&] {
    files::atomic_write(o.output + "/segment.json", summary.dump(2) + "\n");
    run.log_metrics(json{{"stage", "segment"}, {"summary", summary}});
  });
  log::info("segment: {} mask(s) written, {} skipped -> {}", written, n_skipped, o.output);
  return summary;
}

}  // namespace endoked::recipes
