// Report labelling benchmarks.
//   endoked_bench_label speed [REPORTS] [ROUNDS] [FILE…]  rules labeller, 1 thread: reports/s
//       per core on synthetic reports (70 % English, 30 % Chinese), or on the report files
//       given (cycled), labelling alone and labelling + the JSON the labels store keeps.
//   endoked_bench_label negex TSV [TRIGGERS]      the negation component on the NegEx
//       annotations (report, concept, sentence, Affirmed|Negated): accuracy, sensitivity
//       (negated found), specificity (affirmed kept) with the shipped English lexicon, and
//       with NegEx's own trigger list (TRIGGERS, when given) in the same engine.
//   endoked_bench_label devset DIR [errors]    the rules labeller on the hand-labelled reports of
//       DIR (tests/data/reports): the fields per language, for the development part and
//       the part kept aside (recipes/label/GUIDELINE.md); `errors` prints every wrong value of
//       the development part (never of the part kept aside) to stderr, one JSON line each.
#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "endoked/core/files.h"
#include "endoked/data/csv.h"
#include "endoked/data/synth.h"
#include "endoked/report/eval.h"
#include "endoked/report/lexicons.h"
#include "endoked/report/rules.h"

using nlohmann::json;
using namespace endoked;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int speed(std::int64_t n, int rounds, const std::vector<std::string>& files) {
  data::SynthOptions o;
  o.seed = 5;
  std::vector<std::string> reports;
  std::size_t bytes = 0;
  std::vector<std::string> texts;
  for (const auto& f : files) texts.push_back(files::read_all(f));
  for (std::int64_t i = 0; i < n; ++i) {
    reports.push_back(texts.empty() ? data::synth_exam(o, i).report : texts[static_cast<std::size_t>(i) % texts.size()]);
    bytes += reports.back().size();
  }
  report::RulesLabeller rules(report::load_lexicons());
  double best_label = 1e30, best_json = 1e30;
  std::int64_t positive = 0;
  for (int r = 0; r < rounds; ++r) {
    double t0 = now();
    positive = 0;
    for (const auto& rep : reports) positive += *rules.label(rep).polyp_present.value == "positive";
    best_label = std::min(best_label, now() - t0);
    t0 = now();
    std::size_t out = 0;
    for (const auto& rep : reports) out += report::labels_to_json(rules.label(rep), rep).dump().size();
    best_json = std::min(best_json, now() - t0);
    if (out == 0) return 1;
  }
  std::cout << json{{"reports", n},
                    {"mean_report_bytes", static_cast<double>(bytes) / static_cast<double>(n)},
                    {"positive", positive},
                    {"rounds", rounds},
                    {"source", files.empty() ? json("synthetic") : json(files)},
                    {"reports_per_s_label", static_cast<double>(n) / best_label},
                    {"mb_per_s_label", static_cast<double>(bytes) / best_label / 1e6},
                    {"reports_per_s_label_and_json", static_cast<double>(n) / best_json},
                    {"threads", 1}}
                   .dump()
            << "\n";
  return 0;
}

// NegEx triggers (phrase<TAB><TAB>[TAG]) as a lexicon file: PREN/POST → negated forward/backward,
// PREP/POSP → possible, PSEU → pseudo, CONJ → terminate.
std::string negex_lexicon(const std::string& path) {
  const data::CsvTable t = data::read_csv(path, '\t');
  std::map<std::string, std::vector<std::string>> by_tag;
  auto add = [&](const std::vector<std::string>& f) {
    std::string phrase, tag;
    for (const auto& x : f)
      if (!x.empty()) (phrase.empty() ? phrase : tag) = x;
    if (!phrase.empty() && !tag.empty()) by_tag[tag].push_back(phrase);
  };
  add(t.header);
  for (const auto& r : t.rows) add(r.fields);
  auto list = [&](const std::string& tag) {
    json a = json::array();
    for (const auto& p : by_tag[tag])
      if (p.find_first_of(".!?;") == std::string::npos) a.push_back(p);
    return a.dump();
  };
  return "language: en\nversion: negex\nsentence_breaks: ['.', '!', '?', ';']\n"
         "modifiers:\n  negated: {forward: " + list("[PREN]") + ", backward: " + list("[POST]") +
         "}\n  possible: {forward: " + list("[PREP]") + ", backward: " + list("[POSP]") +
         "}\nterminate: " + list("[CONJ]") + "\npseudo: " + list("[PSEU]") + "\n";
}

json score(const report::RulesLabeller& r, const data::CsvTable& t) {
  std::int64_t tp = 0, tn = 0, fp = 0, fn = 0, missing = 0;
  const int ci = t.column("Concept"), si = t.column("Sentence"), ni = t.column("Negation");
  for (const auto& row : t.rows) {
    if (row.fields.size() <= static_cast<std::size_t>(std::max({ci, si, ni}))) continue;
    const std::string& sentence = row.fields[static_cast<std::size_t>(si)];
    std::string concept = row.fields[static_cast<std::size_t>(ci)];
    std::string upper = concept;
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    auto at = sentence.find(upper);  // the annotated concept is upper-cased in its sentence
    if (at == std::string::npos) {
      ++missing;
      continue;
    }
    const auto st = r.context(sentence, {static_cast<std::int64_t>(at), static_cast<std::int64_t>(at + upper.size())}, "en");
    const bool negated = row.fields[static_cast<std::size_t>(ni)] == "Negated";
    if (st.negated && negated) ++tp;
    else if (st.negated) ++fp;
    else if (negated) ++fn;
    else ++tn;
  }
  const double n = static_cast<double>(tp + tn + fp + fn);
  return {{"sentences", tp + tn + fp + fn},
          {"concept_not_found", missing},
          {"accuracy", (tp + tn) / n},
          {"sensitivity", tp + fn ? static_cast<double>(tp) / static_cast<double>(tp + fn) : 0.0},
          {"specificity", tn + fp ? static_cast<double>(tn) / static_cast<double>(tn + fp) : 0.0},
          {"precision", tp + fp ? static_cast<double>(tp) / static_cast<double>(tp + fp) : 0.0},
          {"tp", tp}, {"fp", fp}, {"fn", fn}, {"tn", tn}};
}

int negex(const std::string& tsv, const std::string& triggers) {
  const data::CsvTable t = data::read_csv(tsv, '\t');
  json out = {{"data", tsv}};
  out["endoked_lexicon"] = score(report::RulesLabeller(report::load_lexicons(), "en"), t);
  if (!triggers.empty())
    out["negex_triggers"] =
        score(report::RulesLabeller({report::load_lexicon(negex_lexicon(triggers), triggers)}, "en"), t);
  std::cout << out.dump() << "\n";
  return 0;
}

int devset(const std::string& dir, bool errors) {
  const auto reports = report::read_labelled_reports(dir);
  report::RulesLabeller rules(report::load_lexicons());
  std::map<std::string, report::LabelEvaluator> ev;  // "en/dev", "zh/aside", "all/aside", …
  for (const auto& r : reports) {
    const report::ExamLabels l = rules.label(r.report);
    const std::string part = r.aside ? "aside" : "dev";
    for (const std::string& key : {r.language + "/" + part, r.language + "/all", "all/" + part})
      ev[key].add(r.id, l, r.truth, r.report);
  }
  json out = {{"data", dir}, {"reports", reports.size()}};
  for (const auto& [key, e] : ev)
    out["scores"][key] = {{"exams", e.scored("polyp_present")},
                          {"polyp_present_accuracy", e.accuracy("polyp_present")},
                          {"positive_f1", e.positive_f1()},
                          {"count_accuracy", e.accuracy("polyp_count")},
                          {"counts", e.scored("polyp_count")},
                          {"segment", e.accuracy("polyp.segment")},
                          {"size", e.accuracy("polyp.size")},
                          {"removed", e.accuracy("polyp.removed")},
                          {"pathology_group", e.accuracy("polyp.pathology_group")},
                          {"polyps", e.scored("polyp.segment")}};
  std::cout << out.dump() << "\n";
  if (errors)
    for (const auto& e : ev["all/dev"].errors()) std::cerr << e.dump() << "\n";
  return 0;
}

// One report's labels in full, beside its truth: `show DIR ID`.
int show(const std::string& dir, const std::string& id) {
  report::RulesLabeller rules(report::load_lexicons());
  for (const auto& r : report::read_labelled_reports(dir)) {
    if (r.id != id) continue;
    std::cout << r.report
              << "\n\npredicted: " << report::labels_to_json(rules.label(r.report), r.report).dump()
              << "\ntruth:     " << r.truth.dump() << "\n";
    return 0;
  }
  std::cerr << "no report " << id << " in " << dir << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "speed";
    if (mode == "speed")
      return speed(argc > 2 ? std::atoll(argv[2]) : 20000, argc > 3 ? std::atoi(argv[3]) : 3,
                   std::vector<std::string>(argv + std::min(argc, 4), argv + argc));
    if (mode == "negex" && argc > 2) return negex(argv[2], argc > 3 ? argv[3] : "");
    if (mode == "devset" && argc > 2)
      return devset(argv[2], argc > 3 && std::string(argv[3]) == "errors");
    if (mode == "show" && argc > 3) return show(argv[2], argv[3]);
    std::cerr << "usage: endoked_bench_label speed [REPORTS] [ROUNDS] | negex TSV [TRIGGERS] | "
                 "devset DIR [errors] | show DIR ID\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
