#pragma once
// `endoked label`: report text → exam labels with evidence (a labels sidecar store), on N ranks.
//   Input:  label.store (a record store).
//   Output: label.output, a sidecar store of kind "labels" with the input's shard layout
//           (shard s written by rank s % N, so the same store for every N), /exams columns:
//             id, labels (the JSON of endoked/report/labels.h, code-point offsets),
//             polyp_present (string), positive (1 positive, 0 negative, −1 uncertain,
//             −2 not_mentioned; a label column for datasets), polyp_count (−1 when unknown),
//             count_exact (0/1), confidence, labeller, language;
//           review.csv: the exams an ensemble could not agree on, for a person;
//           manifest.json provenance: labeller versions, config hash, input store hash.
// `endoked label eval`: scores a labels store against a truth store (exams/report_truth, as
// `endoked synth` writes) or a CSV of human labels (exam_id, polyp_present, optional
// polyp_count, history_of_polypectomy, bowel_prep, caecum_reached, polyps as JSON).
// `endoked label export`: a labels store → CSV and/or JSONL.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "endoked/core/run_dir.h"
#include "endoked/distributed/communicator.h"
#include "endoked/report/llm_client.h"

namespace endoked::recipes {

struct LabelOptions {
  std::string store;
  std::string output = "labels";
  std::string backend = "rules";  // rules | llm | ensemble
  std::string language = "auto";
  std::vector<std::string> lexicons;
  int threads = 2;
  int llm_samples = 1;
  bool count_review = true;
  bool overwrite = false;
  bool verify_inputs = true;
  report::LlmOptions llm;
  template <class V>
  void visit(V& v) {
    v("store", store, "input record store");
    v("output", output, "labels sidecar store to write");
    v("backend", backend, "rules | llm | ensemble");
    v("language", language, "rules: auto | en | zh");
    v("lexicons", lexicons, "rules: lexicon files replacing the embedded one of their language");
    v("threads", threads, "rules: labelling threads per rank");
    v("llm_samples", llm_samples, "ensemble: LLM samples per report (k)");
    v("count_review", count_review, "ensemble: send count disagreements to the review queue");
    v("overwrite", overwrite, "replace an existing output (only once the new one is complete)");
    v("verify_inputs", verify_inputs,
      "check each input shard's SHA-256 against its manifest before reading it");
    v("llm", llm);
  }
};

/// Collective over `comm`. Returns the summary (label counts, rate, LLM stats) on every rank.
nlohmann::json run_label(dist::Communicator& comm, const LabelOptions& options, const RunDir& run);

struct LabelEvalOptions {
  std::string labels;
  std::string truth;
  int errors_listed = 100;
  template <class V>
  void visit(V& v) {
    v("labels", labels, "labels store to score");
    v("truth", truth, "truth store (synthetic) or CSV of human labels");
    v("errors_listed", errors_listed, "errors printed (all go to errors.jsonl)");
  }
};

/// Single process. Writes eval.json, errors.jsonl and eval.md into the run directory.
nlohmann::json run_label_eval(const LabelEvalOptions& options, const RunDir& run);

/// Writes every exam's labels as CSV (one row per exam, flat columns) and/or JSONL.
void export_labels(const std::string& labels_dir, const std::string& csv_path,
                   const std::string& jsonl_path);

}  // namespace endoked::recipes
