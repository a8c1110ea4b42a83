// The hand-written development set (tests/data/reports/*.jsonl, recipes/label/GUIDELINE.md):
// reports in real hospital styles, English and Chinese, labelled by hand. The rules labeller
// must meet the goals on the development part of each language, and stay above regression
// floors on the part kept aside while the rules were written (ids whose number is a multiple
// of 3; their errors are never printed).
//
// ENDOKED_DEVSET_ERRORS=1 prints every wrong value of the development part (never the part kept
// aside) with its evidence; ENDOKED_DEVSET_DIR=DIR scores the *.jsonl files of DIR instead.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "endoked/report/ensemble.h"
#include "endoked/report/eval.h"
#include "endoked/report/lexicons.h"
#include "endoked/report/rules.h"

using nlohmann::json;
using namespace endoked::report;

namespace {

using Example = LabelledReport;

std::vector<Example> read_devset() {
  const char* other = std::getenv("ENDOKED_DEVSET_DIR");  // a set of your own, same form
  return read_labelled_reports(other && *other
                                   ? std::string(other)
                                   : std::string(ENDOKED_SOURCE_DIR) + "/tests/data/reports");
}

const RulesLabeller& labeller() {
  static const RulesLabeller r(load_lexicons());
  return r;
}

struct Scores {
  double presence, f1, count, segment, size, removed, group;
  std::int64_t exams, polyps;
};

Scores score(const std::vector<Example>& set, const std::string& name, bool print_errors) {
  LabelEvaluator ev;
  for (const auto& x : set) ev.add(x.id, labeller().label(x.report), x.truth, x.report);
  Scores s{ev.accuracy("polyp_present"),
           ev.positive_f1(),
           ev.accuracy("polyp_count"),
           ev.accuracy("polyp.segment"),
           ev.accuracy("polyp.size"),
           ev.accuracy("polyp.removed"),
           ev.accuracy("polyp.pathology_group"),
           ev.scored("polyp_present"),
           ev.scored("polyp.segment")};
  std::printf(
      "%-10s %3lld exams: presence %.3f  F1(positive) %.3f  count %.3f (%lld)  per polyp (%lld): "
      "segment %.3f size %.3f removed %.3f group %.3f\n",
      name.c_str(), static_cast<long long>(s.exams), s.presence, s.f1, s.count,
      static_cast<long long>(ev.scored("polyp_count")), static_cast<long long>(s.polyps), s.segment,
      s.size, s.removed, s.group);
  if (print_errors)
    for (const auto& e : ev.errors()) std::printf("  %s\n", e.dump().c_str());
  return s;
}

// The issue's goals (recipes/label/GUIDELINE.md): presence accuracy ≥ 0.95, F1(positive) ≥ 0.98,
// exact count ≥ 0.90, per-polyp segment / size / removed / pathology group ≥ 0.95.
const Scores kGoals{0.95, 0.98, 0.90, 0.95, 0.95, 0.95, 0.95, 0, 0};

void expect_at_least(const Scores& s, const Scores& min, const std::string& name) {
  EXPECT_GE(s.presence, min.presence) << name;
  EXPECT_GE(s.f1, min.f1) << name;
  EXPECT_GE(s.count, min.count) << name;
  EXPECT_GE(s.segment, min.segment) << name;
  EXPECT_GE(s.size, min.size) << name;
  EXPECT_GE(s.removed, min.removed) << name;
  EXPECT_GE(s.group, min.group) << name;
}

}  // namespace

TEST(ReportDevSet, LabelsFollowTheGuideline) {
  const auto all = read_devset();
  std::map<std::string, std::vector<Example>> dev, aside;
  for (const auto& x : all) (x.aside ? aside : dev)[x.language].push_back(x);
  ASSERT_GE(dev["en"].size() + aside["en"].size(), 60u);
  ASSERT_GE(dev["zh"].size() + aside["zh"].size(), 60u);
  // ENDOKED_DEVSET_SHOW=en-004,zh-010: the labels of those reports (development part only).
  if (const char* show = std::getenv("ENDOKED_DEVSET_SHOW"))
    for (const auto& x : all)
      if (!x.aside && ("," + std::string(show) + ",").find("," + x.id + ",") != std::string::npos)
        std::printf("%s\n%s\n", x.id.c_str(),
                    labels_to_json(labeller().label(x.report), x.report).dump().c_str());
  const char* env = std::getenv("ENDOKED_DEVSET_ERRORS");
  const bool errors = env && *env && *env != '0';
  std::vector<Example> all_aside;
  for (const std::string lang : {"en", "zh"}) {
    expect_at_least(score(dev[lang], lang + " dev", errors), kGoals, lang + " development part");
    score(aside[lang], lang + " aside", false);
    all_aside.insert(all_aside.end(), aside[lang].begin(), aside[lang].end());
  }
  // The part kept aside (the rules were never fitted to it) is held to the same goals.
  // benchmarks/results/label.md records the figures.
  expect_at_least(score(all_aside, "aside", false), kGoals, "the part kept aside");
}

// The evaluator's strict per-polyp rules, on a report whose truth it can be checked by hand.
TEST(ReportDevSet, EvaluatorScoresMissingPolypsAndNullSizes) {
  const std::string report =
      "Findings: A diminutive polyp in the rectum was removed with cold snare. A 7 mm polyp in the "
      "sigmoid colon was biopsied.";
  const ExamLabels l = labeller().label(report);
  ASSERT_EQ(l.polyps.size(), 2u);
  LabelEvaluator ev;
  ev.add("x", l, json::parse(R"({"polyp_present": "positive", "polyp_count": 3, "polyps": [
           {"segment": "rectum", "size_mm": null, "removed": true},
           {"segment": "caecum", "size_mm": 4, "removed": true},
           {"segment": "sigmoid", "size_mm": 7, "removed": false}]})"),
         report);
  // The caecum polyp is missing: its three fields are wrong; the other two polyps are right
  // (matched by segment although the lists differ in length).
  EXPECT_NEAR(ev.accuracy("polyp.segment"), 2.0 / 3, 1e-9);
  EXPECT_NEAR(ev.accuracy("polyp.size"), 2.0 / 3, 1e-9);
  EXPECT_NEAR(ev.accuracy("polyp.removed"), 2.0 / 3, 1e-9);
  EXPECT_EQ(ev.accuracy("polyp_count"), 0.0);
}

// The ensemble sends every count disagreement to review, "3" against "3+" included.
TEST(ReportDevSet, EnsembleReviewsPresenceAndCountDisagreements) {
  const std::string report = "Findings: three polyps in the sigmoid colon, 4 mm, cold snare.";
  const ExamLabels rules = labeller().label(report);
  ASSERT_EQ(*rules.polyp_count.value, 3);
  ASSERT_TRUE(rules.count_exact);
  ExamLabels llm = rules;
  llm.labeller = "llm";
  std::vector<ReviewRow> review;
  ensemble_labels(rules, {llm}, report, true, review);
  EXPECT_TRUE(review.empty());
  llm.count_exact = false;  // "at least 3"
  const ExamLabels e = ensemble_labels(rules, {llm}, report, true, review);
  ASSERT_EQ(review.size(), 1u);
  EXPECT_EQ(review[0].field, "polyp_count");
  EXPECT_EQ(review[0].answers, (std::vector<std::string>{"rules=3", "llm#0=3+"}));
  EXPECT_EQ(*e.polyp_count.value, 3);  // the rules' count is kept
  llm.polyp_present.value = "negative";
  review.clear();
  const ExamLabels u = ensemble_labels(rules, {llm}, report, true, review);
  ASSERT_EQ(review.size(), 1u);
  EXPECT_EQ(review[0].field, "polyp_present");
  EXPECT_EQ(*u.polyp_present.value, "uncertain");
}
