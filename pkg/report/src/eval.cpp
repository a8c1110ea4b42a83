#include "endoked/report/eval.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "endoked/core/error.h"

using nlohmann::json;

namespace endoked::report {
namespace {

std::string str(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d == std::floor(d)) return std::to_string(static_cast<long long>(d));
  }
  return v.dump();
}

template <typename T>
std::string str(const Field<T>& f) {
  return f.value ? str(json(*f.value)) : "null";
}

}  // namespace

void LabelEvaluator::score(const std::string& exam, const std::string& field,
                           const std::string& predicted, const std::string& truth,
                           const std::vector<Span>& evidence, const std::string& report,
                           bool right) {
  Tally& t = tallies_[field];
  ++t.total;
  if (right) ++t.right;
  ++t.confusion[truth][predicted];
  if (right) return;
  const json ev = evidence_text(report, evidence);
  errors_.push_back({{"exam", exam},
                     {"field", field},
                     {"predicted", predicted},
                     {"truth", truth},
                     {"evidence", ev}});
}

void LabelEvaluator::add(const std::string& exam, const ExamLabels& p, const json& truth,
                         const std::string& report) {
  // Fields compared value for value come from the schema (labels.h); count and size have rules
  // of their own below.
  visit_fields(p, [&](const FieldSpec& s, const auto& f) {
    const std::string field = s.truth();
    if (!s.scored || !truth.contains(field) || truth[field].is_null()) return;
    const std::string pv = str(f), tv = str(truth[field]);
    score(exam, s.key, pv, tv, f.evidence, report, pv == tv);
  });
  const bool both_positive = p.polyp_present.value && *p.polyp_present.value == "positive" &&
                             truth.value("polyp_present", "") == "positive";
  if (!both_positive) return;
  if (truth.contains("polyp_count")) {
    const std::string pv = str(p.polyp_count) + (p.count_exact ? "" : "+");
    const std::string tv = str(truth["polyp_count"]);
    score(exam, "polyp_count", pv, tv, p.polyp_count.evidence, report, pv == tv);
  }
  if (!truth.contains("polyps") || !truth["polyps"].is_array()) return;
  const json& tps = truth["polyps"];
  // Truth polyp i is compared with predicted polyp match[i]: in order when the lists are as long;
  // else the first unused predicted polyp of the same segment, else the first unused one. A
  // truth polyp left without a partner scores every field wrong.
  std::vector<int> match(tps.size(), -1);
  std::vector<char> used(p.polyps.size(), 0);
  auto take = [&](std::size_t i, std::size_t j) {
    match[i] = static_cast<int>(j);
    used[j] = 1;
  };
  if (tps.size() == p.polyps.size()) {
    for (std::size_t i = 0; i < tps.size(); ++i) take(i, i);
  } else {
    for (std::size_t i = 0; i < tps.size(); ++i) {
      const json seg = tps[i].value("segment", json());
      for (std::size_t j = 0; j < p.polyps.size() && match[i] < 0 && seg.is_string(); ++j)
        if (!used[j] && p.polyps[j].segment.value == seg.get<std::string>()) take(i, j);
    }
    for (std::size_t i = 0; i < tps.size(); ++i)
      for (std::size_t j = 0; j < p.polyps.size() && match[i] < 0; ++j)
        if (!used[j]) take(i, j);
  }
  for (std::size_t i = 0; i < tps.size(); ++i) {
    const json& tp = tps[i];
    const std::string who = exam + "#" + std::to_string(i + 1);
    if (match[i] < 0) {
      for (const char* key : {"segment", "size_mm", "removal", "removed", "pathology",
                              "pathology_group", "morphology", "dysplasia"})
        if (tp.contains(key)) {
          const std::string name = std::string(key) == "size_mm"     ? "size"
                                   : std::string(key) == "pathology" ? "histology"
                                                                     : key;
          score(who, "polyp." + name, "missing", str(tp[key]), {}, report, false);
        }
      continue;
    }
    const PolypLabel& pp = p.polyps[static_cast<std::size_t>(match[i])];
    auto field = [&](const std::string& name, const std::string& key, const auto& f) {
      if (!tp.contains(key)) return;
      const std::string pv = str(f), tv = str(tp[key]);
      score(who, "polyp." + name, pv, tv, f.evidence.empty() ? pp.evidence : f.evidence, report,
            pv == tv);
    };
    visit_fields(pp, [&](const FieldSpec& s, const auto& f) {
      if (s.scored) field(s.key, s.truth(), f);
    });
    // Paris types: scored only where the report gives one (most reports do not).
    if (tp.contains("paris") && pp.paris.value) field("paris", "paris", pp.paris);
    // Removed today (GUIDELINE.md 7), whatever the method.
    if (tp.contains("removed") && tp["removed"].is_boolean()) {
      const bool pv = removed_today(pp.removal.value);
      score(who, "polyp.removed", pv ? "true" : "false", str(tp["removed"]),
            pp.removal.evidence.empty() ? pp.evidence : pp.removal.evidence, report,
            pv == tp["removed"].get<bool>());
    }
    if (tp.contains("size_mm")) {
      // A null truth ("diminutive", no number) is right only when no size was read.
      const bool known = !tp["size_mm"].is_null();
      const double truth_mm = known ? tp["size_mm"].get<double>() : 0;
      bool right = !known && !pp.size_mm.value;
      std::string pv = "null";
      if (pp.size_mm.value) {
        right = known && std::abs(*pp.size_mm.value - truth_mm) <= 0.5;
        pv = str(pp.size_mm);
      } else if (known && pp.size_class.value) {
        right = *pp.size_class.value == size_class(truth_mm);
        pv = *pp.size_class.value;
      }
      score(who, "polyp.size", pv, str(tp["size_mm"]),
            pp.size_mm.evidence.empty() ? pp.size_class.evidence : pp.size_mm.evidence, report,
            right);
    }
  }
}

std::vector<LabelledReport> read_labelled_reports(const std::string& dir) {
  namespace fs = std::filesystem;
  ENDOKED_CHECK(fs::is_directory(dir), "labelled reports: '", dir, "' is not a directory");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".jsonl") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<LabelledReport> out;
  for (const auto& f : files) {
    std::ifstream in(f);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty()) continue;
      try {
        const json j = json::parse(line);
        LabelledReport x;
        x.id = j.at("id").get<std::string>();
        const auto dash = x.id.find('-');
        ENDOKED_CHECK(dash != std::string::npos, "id '", x.id, "' is not LANGUAGE-NUMBER");
        x.language = x.id.substr(0, dash);
        x.report = j.at("report").get<std::string>();
        x.truth = j.at("truth");
        x.aside = std::stoi(x.id.substr(dash + 1)) % 3 == 0;
        out.push_back(std::move(x));
      } catch (const std::exception& e) {
        ENDOKED_FAIL(f.string(), ":", n, ": ", e.what());
      }
    }
  }
  return out;
}

double LabelEvaluator::positive_f1() const {
  auto it = tallies_.find("polyp_present");
  if (it == tallies_.end()) return 0;
  std::int64_t tp = 0, fp = 0, fn = 0;
  for (const auto& [truth, row] : it->second.confusion)
    for (const auto& [pred, n] : row) {
      if (truth == "positive" && pred == "positive")
        tp += n;
      else if (pred == "positive")
        fp += n;
      else if (truth == "positive")
        fn += n;
    }
  return tp ? 2.0 * tp / (2.0 * tp + fp + fn) : 0.0;
}

double LabelEvaluator::accuracy(const std::string& field) const {
  auto it = tallies_.find(field);
  return it == tallies_.end() || it->second.total == 0
             ? 0.0
             : static_cast<double>(it->second.right) / static_cast<double>(it->second.total);
}

std::int64_t LabelEvaluator::scored(const std::string& field) const {
  auto it = tallies_.find(field);
  return it == tallies_.end() ? 0 : it->second.total;
}

json LabelEvaluator::summary() const {
  json out = json::object();
  for (const auto& [field, t] : tallies_) {
    json f = {{"accuracy", accuracy(field)}, {"right", t.right}, {"scored", t.total}};
    json conf = json::object();
    std::map<std::string, std::int64_t> predicted_total;
    for (const auto& [truth, row] : t.confusion)
      for (const auto& [pred, n] : row) {
        conf[truth][pred] = n;
        predicted_total[pred] += n;
      }
    f["confusion_truth_to_predicted"] = conf;
    if (t.confusion.size() <= 12) {  // per-class P/R/F1 for categorical fields
      json classes = json::object();
      for (const auto& [cls, row] : t.confusion) {
        std::int64_t truth_n = 0;
        for (const auto& [pred, n] : row) truth_n += n;
        const std::int64_t tp = row.count(cls) ? row.at(cls) : 0;
        const double precision =
            predicted_total[cls] ? static_cast<double>(tp) / predicted_total[cls] : 0.0;
        const double recall = truth_n ? static_cast<double>(tp) / truth_n : 0.0;
        classes[cls] = {
            {"precision", precision},
            {"recall", recall},
            {"f1", precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0},
            {"support", truth_n}};
      }
      f["classes"] = classes;
    }
    out[field] = f;
  }
  return out;
}

void LabelEvaluator::merge(const LabelEvaluator& o) {
  for (const auto& [field, t] : o.tallies_) {
    Tally& mine = tallies_[field];
    mine.right += t.right;
    mine.total += t.total;
    for (const auto& [truth, row] : t.confusion)
      for (const auto& [pred, n] : row) mine.confusion[truth][pred] += n;
  }
  errors_.insert(errors_.end(), o.errors_.begin(), o.errors_.end());
}

json LabelEvaluator::to_json() const {
  json t = json::object();
  for (const auto& [field, tally] : tallies_)
    t[field] = {{"right", tally.right}, {"total", tally.total}, {"confusion", tally.confusion}};
  return {{"tallies", t}, {"errors", errors_}};
}

LabelEvaluator LabelEvaluator::from_json(const json& j) {
  LabelEvaluator e;
  for (const auto& [field, t] : j.at("tallies").items()) {
    Tally& tally = e.tallies_[field];
    tally.right = t.at("right").get<std::int64_t>();
    tally.total = t.at("total").get<std::int64_t>();
    tally.confusion =
        t.at("confusion").get<std::map<std::string, std::map<std::string, std::int64_t>>>();
  }
  for (const auto& err : j.at("errors")) e.errors_.push_back(err);
  return e;
}

}  // namespace endoked::report
