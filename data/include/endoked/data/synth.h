#pragma once
// The synthetic corpus: colonoscopy-like exams (report + frames) with ground truth for every
// stage, generated deterministically from (seed, exam index) — the same corpus whatever the
// number of ranks or threads.
//
// Frames: pink-red mucosa with haustral folds, a dark lumen, vessels, specular highlights,
// vignetted endoscope corners, blur, noise and JPEG compression; polyps of varied size and shape
// (pedunculated with a stalk, sessile, flat), some cut by the border or partly hidden by a fold;
// pathology changes the polyp's colour and surface (hyperplastic: pale and smooth; adenoma:
// red with a tubular pit pattern; cancer: dark, irregular, ulcerated).
// Reports: English and Chinese from many templates, with negations, hedges, history, negative
// sentences inside positive reports, abbreviations and typos. The truth holds the labels each
// report states and, per frame, the polyps actually visible (mask, boxes, pathology).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace endoked::data {

struct SynthOptions {
  std::int64_t exams = 100;
  std::uint64_t seed = 1;
  std::string id_prefix = "EX";
  int width = 320;
  int height = 256;
  int min_images = 4;
  int max_images = 10;
  double negative_fraction = 0.4;    // exams with no polyp
  double uncertain_fraction = 0.05;  // exams whose report hedges ("possible small polyp")
  double chinese_fraction = 0.3;
  double typo_rate = 0.02;  // chance a word of the report gets a typo
  int jpeg_quality = 90;
  std::string format = "raw";  // raw | store
  std::string output = "synth";
  std::string truth;  // default: <output>-truth
  std::int64_t exams_per_shard = 256;
  int threads = 2;
  bool overwrite = false;

  template <class V>
  void visit(V& v) {
    v("exams", exams, "number of exams");
    v("seed", seed, "corpus seed: the same seed gives the same corpus");
    v("id_prefix", id_prefix, "exam ids are <prefix><7-digit index>");
    v("width", width, "frame width in pixels");
    v("height", height, "frame height in pixels");
    v("min_images", min_images, "fewest frames per exam");
    v("max_images", max_images, "most frames per exam");
    v("negative_fraction", negative_fraction, "fraction of exams without polyps");
    v("uncertain_fraction", uncertain_fraction, "fraction of exams with a hedged report");
    v("chinese_fraction", chinese_fraction, "fraction of reports written in Chinese");
    v("typo_rate", typo_rate, "chance per eligible word of a typo in English reports");
    v("jpeg_quality", jpeg_quality, "JPEG quality of the frames");
    v("format", format, "raw (exam folders + reports.csv) | store (a record store)");
    v("output", output, "output directory (raw corpus or record store)");
    v("truth", truth, "ground-truth store directory (default: <output>-truth)");
    v("exams_per_shard", exams_per_shard, "exams per shard (and per unit of work)");
    v("threads", threads, "generation threads per rank");
    v("overwrite", overwrite, "replace existing outputs (only after the new ones are complete)");
  }
  std::string truth_dir() const { return truth.empty() ? output + "-truth" : truth; }
};

// ---- findings and reports (no images) ----

struct SynthPolyp {
  std::string segment;  // caecum, ascending, hepatic_flexure, transverse, splenic_flexure,
                        // descending, sigmoid, rectum
  double size_mm = 0;
  std::string morphology;  // pedunculated | sessile | flat
  std::string paris;       // 0-Ip | 0-Is | 0-IIa
  std::string pathology;   // hyperplastic | adenoma | cancer (what the tissue is)
  std::string histology;   // the report's wording class: hyperplastic_polyp, tubular_adenoma, …
  std::string dysplasia;   // low | high | "" (adenomas)
  std::string removal;     // cold_snare | hot_snare | emr | biopsy | not_removed
  bool pathology_reported = false;
  std::uint64_t appearance_seed = 0;
};

struct SynthExam {
  std::int64_t index = 0;
  std::string id;
  std::string language;            // en | zh
  std::string status;              // positive | negative | uncertain (what the report states)
  std::vector<SynthPolyp> polyps;  // the polyps present (for "uncertain", maybe one faint one)
  bool history_of_polypectomy = false;
  std::string bowel_prep;  // excellent | good | fair | poor
  bool caecum_reached = true;
  int image_count = 0;
  std::string report;
  nlohmann::json report_truth;  // the labels the report states
};

/// Draws the findings and writes the report of exam `index` (no pixels: fast).
SynthExam synth_exam(const SynthOptions& options, std::int64_t index);

// ---- frames ----

struct SynthBox {
  int polyp = 0;                       // index into SynthExam::polyps
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;  // inclusive-exclusive pixel box
  std::int64_t area = 0;               // visible mask pixels
};

struct SynthFrame {
  std::string jpeg;      // the frame as a user would receive it
  std::string mask_png;  // 1-bit PNG (decodes to 8-bit 0/255); 255 = polyp
  std::vector<SynthBox> boxes;
  nlohmann::json truth;  // {"has_polyp", "polyps": [{polyp, box, area, pathology}]}
};

/// Renders frame `frame` of an exam. `show` lists the polyps placed in this frame.
SynthFrame render_frame(const SynthOptions& options, const SynthExam& exam, int frame,
                        const std::vector<int>& show);

/// Which polyps each frame shows (each polyp in 2–4 frames; the rest are normal frames).
std::vector<std::vector<int>> frame_assignment(const SynthOptions& options, const SynthExam& exam);

}  // namespace endoked::data

namespace endoked::data {

struct ShardInfo;

/// Number of work units (shards) of a corpus: ceil(exams / exams_per_shard).
int synth_shard_count(const SynthOptions& options);

struct SynthShardOutcome {
  nlohmann::json records;  // ShardInfo of the record shard (store format), else null
  nlohmann::json truth;    // ShardInfo of the truth shard
  std::int64_t exams = 0;
  std::int64_t images = 0;
  std::int64_t positive_images = 0;
};

/// Generates shard `shard` (exams [shard·E, (shard+1)·E)). Raw format: frames go to
/// `<output_dir>/images/<exam id>/NNN.jpg` and report rows to
/// `<output_dir>/reports.part-NNNNN.csv`; store format: a records shard in `output_dir`. The truth
/// shard goes to `truth_dir`. `on_image` is called once per frame (progress).
SynthShardOutcome synth_shard(const SynthOptions& options, int shard, const std::string& output_dir,
                              const std::string& truth_dir,
                              const std::function<void()>& on_image = {});

/// Raw format, rank 0, after every shard: joins the report parts into reports.csv (atomic).
void synth_join_reports(const SynthOptions& options, const std::string& output_dir);

}  // namespace endoked::data
