#include <filesystem>

#include <fmt/format.h>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/parallel.h"
#include "endoked/data/csv.h"
#include "endoked/data/store.h"
#include "endoked/data/synth.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::data {
namespace {
const char* kReportHeader = "exam_id,centre,language,report\n";
}  // namespace

int synth_shard_count(const SynthOptions& o) {
  ENDOKED_CHECK(o.exams >= 0 && o.exams_per_shard > 0,
                "synth.exams must be ≥ 0 and synth.exams_per_shard > 0, got ", o.exams, " and ",
                o.exams_per_shard);
  ENDOKED_CHECK(o.threads >= 1 && o.threads <= 1024, "synth.threads must be in [1, 1024], got ",
                o.threads);
  ENDOKED_CHECK(o.width >= 32 && o.width <= 8192 && o.height >= 32 && o.height <= 8192,
                "synth.width and synth.height must be in [32, 8192], got ", o.width, " × ",
                o.height);
  ENDOKED_CHECK(o.min_images >= 1 && o.min_images <= o.max_images && o.max_images <= 1000,
                "synth.min_images must be in [1, max_images] and max_images ≤ 1000, got ",
                o.min_images, " and ", o.max_images);
  return static_cast<int>((o.exams + o.exams_per_shard - 1) / o.exams_per_shard);
}

SynthShardOutcome synth_shard(const SynthOptions& opt, int shard, const std::string& output_dir,
                              const std::string& truth_dir, const std::function<void()>& on_image) {
  ENDOKED_CHECK(opt.format == "raw" || opt.format == "store",
                "synth.format must be raw or store, got '", opt.format, "'");
  const std::int64_t first = static_cast<std::int64_t>(shard) * opt.exams_per_shard;
  const std::int64_t last = std::min(opt.exams, first + opt.exams_per_shard);
  struct Generated {
    SynthExam exam;
    std::vector<SynthFrame> frames;
  };
  std::vector<Generated> gen(static_cast<std::size_t>(std::max<std::int64_t>(0, last - first)));
  const bool raw = opt.format == "raw";
  parallel_for(static_cast<std::int64_t>(gen.size()), opt.threads, [&](std::int64_t k) {
    Generated& g = gen[static_cast<std::size_t>(k)];
    g.exam = synth_exam(opt, first + k);
    const auto assignment = frame_assignment(opt, g.exam);
    for (int f = 0; f < g.exam.image_count; ++f) {
      g.frames.push_back(render_frame(opt, g.exam, f, assignment[static_cast<std::size_t>(f)]));
      if (raw) {
        const std::string dir = output_dir + "/images/" + g.exam.id;
        fs::create_directories(dir);
        files::write_file(fmt::format("{}/{:03d}.jpg", dir, f), g.frames.back().jpeg);
      }
      if (on_image) on_image();
    }
  });

  SynthShardOutcome out;
  ShardWriter truth(truth_dir, shard, "truth");
  std::unique_ptr<ShardWriter> records;
  if (!raw) records = std::make_unique<ShardWriter>(output_dir, shard, "records");
  std::string report_rows;
  for (auto& g : gen) {
    const SynthExam& e = g.exam;
    const std::int64_t exam_row = truth.rows("exams");
    truth.add_string("exams", "id", e.id);
    truth.add_string("exams", "report_truth", e.report_truth.dump());
    truth.add_int("exams", "first_image", truth.rows("images"));
    truth.add_int("exams", "image_count", e.image_count);
    truth.add_int("exams", "report_positive", e.status == "positive" ? 1 : 0);
    truth.add_int("exams", "polyp_count", static_cast<std::int64_t>(e.polyps.size()));
    std::vector<ImageRecord> images;
    for (std::size_t f = 0; f < g.frames.size(); ++f) {
      SynthFrame& fr = g.frames[f];
      const std::string file = fmt::format("{}/{:03d}.jpg", e.id, f);
      truth.add_int("images", "exam", exam_row);
      truth.add_int("images", "frame", static_cast<std::int64_t>(f));
      truth.add_string("images", "file", file);
      truth.add_int("images", "has_polyp", fr.boxes.empty() ? 0 : 1);
      truth.add_string("images", "truth", fr.truth.dump());
      json boxes = json::array();
      for (const auto& b : fr.boxes) boxes.push_back({b.x0, b.y0, b.x1, b.y1});
      truth.add_string("images", "boxes", boxes.dump());
      truth.add_blob("images", "mask", fr.mask_png);
      out.positive_images += fr.boxes.empty() ? 0 : 1;
      if (!raw) images.push_back({std::move(fr.jpeg), "jpeg", opt.width, opt.height, file, 0});
    }
    if (raw) {
      report_rows +=
          csv_field(e.id) + ",synthetic," + e.language + "," + csv_field(e.report) + "\n";
    } else {
      add_exam(*records,
               ExamRecord{e.id, "synthetic", e.report, json{{"language", e.language}}.dump(), 0, 0},
               images);
    }
    out.exams += 1;
    out.images += static_cast<std::int64_t>(g.frames.size());
  }
  out.truth = truth.close().to_json();
  if (records) {
    out.records = records->close().to_json();
  } else {
    files::atomic_write(fmt::format("{}/reports.part-{:05d}.csv", output_dir, shard), report_rows);
  }
  return out;
}

void synth_join_reports(const SynthOptions& opt, const std::string& output_dir) {
  std::string table = kReportHeader;
  const int n = synth_shard_count(opt);
  for (int s = 0; s < n; ++s) {
    const std::string part = fmt::format("{}/reports.part-{:05d}.csv", output_dir, s);
    table += files::read_all(part);
  }
  files::atomic_write(output_dir + "/reports.csv", table);
  for (int s = 0; s < n; ++s) fs::remove(fmt::format("{}/reports.part-{:05d}.csv", output_dir, s));
}

}  // namespace endoked::data
