#pragma once
// The `ensemble` labelling backend: the rules plus k LLM samples.
//  - polyp_present: when every answer agrees, that value with the mean confidence; otherwise
//    `uncertain`, confidence = the share of the most common answer, a note naming every
//    answer, and a row in the review queue;
//  - polyp_count (all positive): differing counts ("3" and "3+" differ; a sample without a
//    count differs too) keep the rules' count, add a note and a review row (count_review on);
//  - every other field: the rules' value with its evidence spans; a field the rules left null
//    takes the first LLM sample's value (polyps matched by position when the counts agree).
#include <string>
#include <vector>

#include "endoked/report/labels.h"

namespace endoked::report {

struct ReviewRow {
  std::string field;
  std::vector<std::string> answers;   // "rules=positive", "llm#0=negative", …
  std::vector<std::string> evidence;  // "rules: <quoted text>", …
};

report::ExamLabels ensemble_labels(const report::ExamLabels& rules,
                                   const std::vector<report::ExamLabels>& llm,
                                   const std::string& report, bool count_review,
                                   std::vector<ReviewRow>& review);

/// One CSV line (exam id, field, answers, evidence), RFC 4180 quoting, without the newline.
std::string review_csv_line(const std::string& exam_id, const ReviewRow& row);
inline constexpr const char* kReviewCsvHeader = "exam_id,field,answers,evidence";

}  // namespace endoked::report
