#pragma once
// Scoring exam labels against a ground truth (`endoked label eval`, the labelling tests).
//
// Truth per exam is JSON in the synthetic truth store's form (data/synth.h report_truth):
//   {"polyp_present": "positive", "polyp_count": 2 (or "2+": at least 2), "polyps": [{"segment",
//    "size_mm", "morphology", "paris", "removal", "removed", "pathology" (histology),
//    "dysplasia", "pathology_group"}],
//    "history_of_polypectomy", "bowel_prep", "caecum_reached"}; absent keys are not scored.
// Scores:
//  - polyp_present: accuracy, per-class precision/recall/F1 and a confusion matrix;
//  - polyp_count: exact-match accuracy over exams both call positive;
//  - per polyp over exams both call positive: truth polyps are matched to predicted ones in
//    report order when the lists are as long, else by segment, then by order; a truth polyp
//    left unmatched scores every field wrong. Accuracy of each field; a size is right within
//    0.5 mm, or when only a size class was read, when the true size falls in that class; a null
//    truth size ("diminutive") is right only when no size was read; null == null counts as
//    right; a boolean truth "removed" is compared with removed_today(removal);
//  - history_of_polypectomy, bowel_prep, caecum_reached: accuracy and confusion.
// Every wrong value is listed with the evidence text the labeller gave.
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "endoked/report/labels.h"

namespace endoked::report {

/// One hand-labelled report (recipes/label/GUIDELINE.md, tests/data/reports/).
struct LabelledReport {
  std::string id, language, report;  // language: the id's prefix ("en-004" → en)
  nlohmann::json truth;
  bool aside = false;  // the id's number is a multiple of 3: kept aside while developing
};
/// Every `*.jsonl` file of `dir` (sorted by name), one {"id", "report", "truth", …} a line.
/// Throws endoked::Error naming file:line for a line that does not parse or lacks a key.
std::vector<LabelledReport> read_labelled_reports(const std::string& dir);

class LabelEvaluator {
 public:
  void add(const std::string& exam_id, const ExamLabels& predicted, const nlohmann::json& truth,
           const std::string& report);
  /// Per-field scores (see above) as JSON.
  nlohmann::json summary() const;
  /// {"exam", "field", "predicted", "truth", "evidence": ["…"]} per wrong value.
  const std::vector<nlohmann::json>& errors() const { return errors_; }
  /// Adds another evaluator's counts (ranks merge theirs).
  void merge(const LabelEvaluator& other);
  nlohmann::json to_json() const;
  static LabelEvaluator from_json(const nlohmann::json& j);

  /// F1 of polyp_present == positive.
  double positive_f1() const;
  /// Fraction right of a scored field ("polyp_present", "polyp.segment", "polyp.size", …).
  double accuracy(const std::string& field) const;
  std::int64_t scored(const std::string& field) const;

 private:
  struct Tally {
    std::int64_t right = 0, total = 0;
    std::map<std::string, std::map<std::string, std::int64_t>> confusion;  // truth → predicted
  };
  void score(const std::string& exam, const std::string& field, const std::string& predicted,
             const std::string& truth, const std::vector<Span>& evidence, const std::string& report,
             bool right);
  std::map<std::string, Tally> tallies_;
  std::vector<nlohmann::json> errors_;
};

}  // namespace endoked::report
