#include "endoked/core/error.h"
#include "endoked/data/synth.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <regex>

#include "../common/test_util.h"
#include "endoked/core/files.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/store.h"
#include "endoked/distributed/communicator.h"
#include "synth_stage.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::data {
namespace {

SynthOptions small(const testing::TempDir& t, const std::string& name) {
  SynthOptions o;
  o.exams = 40;
  o.seed = 11;
  o.width = 128;
  o.height = 96;
  o.min_images = 3;
  o.max_images = 5;
  o.exams_per_shard = 16;
  o.format = "store";
  o.output = t / (name + "/records");
  o.truth = t / (name + "/truth");
  o.threads = 2;
  return o;
}

TEST(Synth, ExamsAreDeterministicAndVaried) {
  SynthOptions o;
  int positives = 0, negatives = 0, uncertain = 0, zh = 0;
  for (int i = 0; i < 400; ++i) {
    const SynthExam a = synth_exam(o, i), b = synth_exam(o, i);
    ASSERT_EQ(a.report, b.report);
    ASSERT_EQ(a.report_truth, b.report_truth);
    positives += a.status == "positive";
    negatives += a.status == "negative";
    uncertain += a.status == "uncertain";
    zh += a.language == "zh";
    if (a.status == "negative" && a.language == "zh") {
      EXPECT_NE(a.report.find("未见"), std::string::npos) << a.report;
    }
    if (a.status == "positive") {
      // Exact, or "N+" when the report adds a vague group ("several … left in place").
      const json& c = a.report_truth["polyp_count"];
      if (c.is_string())
        EXPECT_EQ(c.get<std::string>(), std::to_string(a.polyps.size() + 2) + "+");
      else
        EXPECT_EQ(c, a.polyps.size());
    }
    // None seen through a poor preparation or short of the caecum: uncertain (GUIDELINE 4).
    if (a.status == "negative")
      EXPECT_EQ(a.report_truth["polyp_present"],
                a.bowel_prep == "poor" || !a.caecum_reached ? "uncertain" : "negative");
    EXPECT_GE(a.image_count, 2 * static_cast<int>(a.polyps.size()) + 1);
  }
  EXPECT_NEAR(negatives / 400.0, o.negative_fraction, 0.07);
  EXPECT_NEAR(uncertain / 400.0, o.uncertain_fraction, 0.04);
  EXPECT_NEAR(zh / 400.0, o.chinese_fraction, 0.07);
  EXPECT_GT(positives, 150);
  SynthOptions other = o;
  other.seed = 2;
  EXPECT_NE(synth_exam(other, 5).report, synth_exam(o, 5).report);
}

TEST(Synth, EnglishReportsStateNegationsAndSizes) {
  SynthOptions o;
  o.chinese_fraction = 0;
  o.typo_rate = 0;
  int checked = 0;
  for (int i = 0; i < 200; ++i) {
    const SynthExam e = synth_exam(o, i);
    if (e.status == "negative") {
      const bool negated = e.report.find("No polyps") != std::string::npos ||
                           e.report.find("no polyps") != std::string::npos ||
                           e.report.find("no evidence of polyps") != std::string::npos ||
                           e.report.find("polyps or AVMs") != std::string::npos ||
                           e.report.find("Normal mucosa throughout") != std::string::npos;
      EXPECT_TRUE(negated) << e.report;
    }
    if (e.status == "positive") {
      // Every polyp's size is written in mm, cm or as "diminutive".
      static const std::regex size_re("[0-9]+(\\.[0-9])? ?(mm|cm)|diminutive");
      const bool sized = std::regex_search(e.report, size_re);
      EXPECT_TRUE(sized) << e.report;
      ++checked;
    }
  }
  EXPECT_GT(checked, 50);
}

TEST(Synth, FramesMatchTheirTruth) {
  SynthOptions o;
  o.width = 160;
  o.height = 128;
  int with_polyp = 0, frames = 0;
  for (int i = 0; i < 30; ++i) {
    const SynthExam e = synth_exam(o, i);
    const auto assign = frame_assignment(o, e);
    ASSERT_EQ(static_cast<int>(assign.size()), e.image_count);
    for (int f = 0; f < e.image_count; ++f) {
      const SynthFrame fr = render_frame(o, e, f, assign[static_cast<std::size_t>(f)]);
      const ImageInfo info = check_decodes(fr.jpeg);
      EXPECT_EQ(info.width, 160);
      EXPECT_EQ(info.height, 128);
      const cv::Mat mask = cv::imdecode(
          std::vector<std::uint8_t>(fr.mask_png.begin(), fr.mask_png.end()), cv::IMREAD_GRAYSCALE);
      ASSERT_EQ(mask.cols, 160);
      const int on = cv::countNonZero(mask);
      std::int64_t area = 0;
      for (const auto& b : fr.boxes) {
        area += b.area;
        EXPECT_LT(b.x0, b.x1);
        EXPECT_LT(b.y0, b.y1);
        EXPECT_GE(b.x0, 0);
        EXPECT_LE(b.x1, 160);
        // the box holds mask pixels
        EXPECT_GT(cv::countNonZero(mask(cv::Rect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0))), 0);
      }
      EXPECT_EQ(fr.truth["has_polyp"], !fr.boxes.empty());
      if (fr.boxes.size() == 1) {
        EXPECT_EQ(on, area);
      }  // one polyp: the mask is its visible area
      if (fr.boxes.empty()) {
        EXPECT_EQ(on, 0);
      }
      with_polyp += !fr.boxes.empty();
      ++frames;
      // deterministic to the byte
      if (f == 0) {
        EXPECT_EQ(render_frame(o, e, f, assign[0]).jpeg, fr.jpeg);
      }
    }
  }
  EXPECT_GT(with_polyp, frames / 5);
  EXPECT_LT(with_polyp, frames);
}

TEST(Synth, PathologyChangesColour) {
  // Mean polyp colour per pathology: adenomas redder than hyperplastic, cancers darkest.
  SynthOptions o;
  o.width = 192;
  o.height = 160;
  std::map<std::string, std::vector<double>> red_ratio, brightness;
  for (int i = 0; i < 120; ++i) {
    const SynthExam e = synth_exam(o, i);
    const auto assign = frame_assignment(o, e);
    for (int f = 0; f < e.image_count; ++f) {
      if (assign[static_cast<std::size_t>(f)].size() != 1) continue;
      const SynthFrame fr = render_frame(o, e, f, assign[static_cast<std::size_t>(f)]);
      if (fr.boxes.size() != 1 || fr.boxes[0].area < 200) continue;
      const cv::Mat img =
          cv::imdecode(std::vector<std::uint8_t>(fr.jpeg.begin(), fr.jpeg.end()), cv::IMREAD_COLOR);
      const cv::Mat mask = cv::imdecode(
          std::vector<std::uint8_t>(fr.mask_png.begin(), fr.mask_png.end()), cv::IMREAD_GRAYSCALE);
      const cv::Scalar m = cv::mean(img, mask);  // BGR
      const std::string p = e.polyps[static_cast<std::size_t>(fr.boxes[0].polyp)].pathology;
      red_ratio[p].push_back(m[2] / (m[1] + 1));
      brightness[p].push_back((m[0] + m[1] + m[2]) / 3);
    }
  }
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / v.size();
  };
  ASSERT_GT(red_ratio["hyperplastic"].size(), 5u);
  ASSERT_GT(red_ratio["adenoma"].size(), 5u);
  ASSERT_GT(red_ratio["cancer"].size(), 2u);
  EXPECT_GT(mean(red_ratio["adenoma"]), mean(red_ratio["hyperplastic"]) * 1.15);
  EXPECT_LT(mean(brightness["cancer"]), mean(brightness["hyperplastic"]) * 0.85);
}

TEST(Synth, StoreOutputIsDeterministic) {
  testing::TempDir t;
  auto comm = dist::make_local_communicator();
  const SynthOptions a = small(t, "a"), b = small(t, "b");
  const json sa = recipes::run_synth(*comm, a, RunDir(t / "run", true));
  const json sb = recipes::run_synth(*comm, b, RunDir(t / "run", true));
  EXPECT_EQ(sa["content_sha256"], sb["content_sha256"]);
  EXPECT_EQ(sa["truth_content_sha256"], sb["truth_content_sha256"]);
  EXPECT_EQ(sa["exams"], 40);
  RecordStore records(a.output), truth(a.truth_dir());
  EXPECT_EQ(records.exam_count(), 40);
  EXPECT_EQ(records.manifest().shards.size(), 3u);
  EXPECT_TRUE(verify_store(a.output, VerifyOptions{true}).ok());
  EXPECT_TRUE(verify_store(a.truth_dir(), VerifyOptions{true}).ok());
  // Truth and records line up exam by exam and frame by frame.
  ShardReader tr(a.truth_dir() + "/" + shard_file_name(1));
  const auto& ids = tr.strings("exams", "id");
  EXPECT_EQ(ids[0], records.exam(16).id);
  const json rt = json::parse(tr.strings("exams", "report_truth")[0]);
  EXPECT_TRUE(rt.contains("polyp_present"));
}

TEST(Synth, RawLayoutIsIngestable) {
  testing::TempDir t;
  auto comm = dist::make_local_communicator();
  SynthOptions o = small(t, "raw");
  o.format = "raw";
  o.output = t / "raw";
  o.truth = t / "raw-truth";
  o.exams = 10;
  recipes::run_synth(*comm, o, RunDir(t / "run", true));
  EXPECT_TRUE(fs::exists(t / "raw/reports.csv"));
  EXPECT_TRUE(fs::exists(t / "raw/images/EX0000009/000.jpg"));
  EXPECT_FALSE(fs::exists(t / "raw/reports.part-00000.csv"));
  const std::string table = files::read_all(t / "raw/reports.csv");
  EXPECT_EQ(table.rfind("exam_id,centre,language,report\n", 0), 0u);
  EXPECT_EQ(synth_exam(o, 3).report.empty(), false);
  EXPECT_NE(table.find(synth_exam(o, 3).id), std::string::npos);
  // Nested outputs are refused before anything is written.
  o.truth = t / "raw/truth";
  o.overwrite = true;
  EXPECT_THROW(recipes::run_synth(*comm, o, RunDir(t / "run", true)), Error);
  EXPECT_TRUE(fs::exists(t / "raw/reports.csv"));
}

}  // namespace
}  // namespace endoked::data
