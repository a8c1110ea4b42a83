#include "endoked/report/ensemble.h"

#include <map>

#include "endoked/data/csv.h"

namespace endoked::report {
namespace {

using report::ExamLabels;

// The evidence of one answer as one line of text.
std::string quote(const std::string& report, const std::vector<report::Span>& spans) {
  std::string out;
  for (const auto& text : report::evidence_text(report, spans))
    out += (out.empty() ? "" : " … ") + text;
  return out;
}

template <typename T>
void fill(report::Field<T>& mine, const report::Field<T>& other) {
  if (!mine.value && other.value) mine = other;
}

void fill_polyp(report::PolypLabel& p, const report::PolypLabel& o) {
  report::polyp_fields([&](const report::FieldSpec&, auto m) { fill(p.*m, o.*m); });
}

}  // namespace

ExamLabels ensemble_labels(const ExamLabels& rules, const std::vector<ExamLabels>& llm,
                           const std::string& report, bool count_review,
                           std::vector<ReviewRow>& review) {
  ExamLabels out = rules;
  out.labeller = "ensemble";
  out.version = rules.version;
  for (const auto& l : llm) out.version += "+" + l.version;
  for (const auto& l : llm) out.notes.insert(out.notes.end(), l.notes.begin(), l.notes.end());

  std::vector<std::pair<std::string, const ExamLabels*>> answers = {{"rules", &rules}};
  for (std::size_t i = 0; i < llm.size(); ++i)
    answers.emplace_back("llm#" + std::to_string(i), &llm[i]);
  std::map<std::string, int> votes;
  double confidence = 0;
  for (const auto& [who, l] : answers) {
    ++votes[l->polyp_present.value.value_or("not_mentioned")];
    confidence += l->polyp_present.confidence;
  }
  if (votes.size() == 1) {
    out.polyp_present.confidence = confidence / static_cast<double>(answers.size());
  } else {
    ReviewRow row{"polyp_present", {}, {}};
    int best = 0;
    std::string note = "labellers disagree on polyp_present:";
    for (const auto& [who, l] : answers) {
      const std::string v = l->polyp_present.value.value_or("not_mentioned");
      row.answers.push_back(who + "=" + v);
      row.evidence.push_back(who + ": " + quote(report, l->polyp_present.evidence));
      note += " " + who + "=" + v;
      best = std::max(best, votes[v]);
    }
    review.push_back(std::move(row));
    out.notes.push_back(note);
    out.polyp_present.value = "uncertain";
    out.polyp_present.confidence = static_cast<double>(best) / static_cast<double>(answers.size());
    out.polyp_present.evidence.clear();
    for (const auto& [who, l] : answers)
      out.polyp_present.evidence.insert(out.polyp_present.evidence.end(),
                                        l->polyp_present.evidence.begin(),
                                        l->polyp_present.evidence.end());
    out.polyps.clear();
    out.polyp_count = {};
    return out;
  }
  if (*out.polyp_present.value == "positive" && count_review) {
    // "3" and "3+" (at least 3) differ too.
    auto count = [](const ExamLabels& l) {
      return l.polyp_count.value ? std::to_string(*l.polyp_count.value) + (l.count_exact ? "" : "+")
                                 : std::string("null");
    };
    bool differ = false;
    for (const auto& l : llm) differ = differ || count(l) != count(rules);
    if (differ) {
      ReviewRow row{"polyp_count", {}, {}};
      for (const auto& [who, l] : answers) {
        row.answers.push_back(who + "=" + count(*l));
        row.evidence.push_back(who + ": " + quote(report, l->polyp_count.evidence));
      }
      out.notes.push_back("labellers disagree on polyp_count; the rules' count is kept");
      review.push_back(std::move(row));
    }
  }
  if (!llm.empty()) {
    const ExamLabels& first = llm.front();
    // Presence and count were decided above; every other exam field the rules left empty
    // comes from the first LLM answer.
    report::exam_fields([&](const report::FieldSpec& s, auto m) {
      if (std::string(s.key) != "polyp_present" && std::string(s.key) != "polyp_count")
        fill(out.*m, first.*m);
    });
    if (out.polyps.empty() && !first.polyps.empty())
      out.polyps = first.polyps;
    else if (out.polyps.size() == first.polyps.size())
      for (std::size_t i = 0; i < out.polyps.size(); ++i)
        fill_polyp(out.polyps[i], first.polyps[i]);
  }
  return out;
}

std::string review_csv_line(const std::string& exam_id, const ReviewRow& row) {
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? " | " : "") + v[i];
    return s;
  };
  using data::csv_field;
  return csv_field(exam_id) + "," + csv_field(row.field) + "," + csv_field(join(row.answers)) +
         "," + csv_field(join(row.evidence));
}

}  // namespace endoked::report
