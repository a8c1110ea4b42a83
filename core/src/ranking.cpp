#include "endoked/core/ranking.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "endoked/core/error.h"

namespace endoked {
namespace {

// Indices sorted by score, descending (stable: equal scores keep input order).
std::vector<std::size_t> by_score_desc(const std::vector<double>& scores,
                                       const std::vector<int>& labels) {
  ENDOKED_CHECK(scores.size() == labels.size(), "ranking metric: ", scores.size(), " scores but ",
                labels.size(), " labels");
  for (std::size_t i = 0; i < scores.size(); ++i) {
    ENDOKED_CHECK(labels[i] == 0 || labels[i] == 1, "ranking metric: label ", labels[i], " at ", i,
                  " is not 0 or 1");
    ENDOKED_CHECK(!std::isnan(scores[i]), "ranking metric: score ", i, " is NaN");
  }
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  return order;
}

}  // namespace

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  const auto order = by_score_desc(scores, labels);
  const double pos = std::accumulate(labels.begin(), labels.end(), 0.0);
  const double neg = static_cast<double>(labels.size()) - pos;
  if (pos == 0 || neg == 0) return std::numeric_limits<double>::quiet_NaN();
  // Trapezoids between distinct thresholds (a tie block is one diagonal step).
  double area = 0, tp = 0, fp = 0;
  for (std::size_t i = 0; i < order.size();) {
    double dtp = 0, dfp = 0;
    std::size_t j = i;
    for (; j < order.size() && scores[order[j]] == scores[order[i]]; ++j)
      (labels[order[j]] ? dtp : dfp) += 1;
    area += dfp * (tp + dtp / 2);
    tp += dtp;
    fp += dfp;
    i = j;
  }
  return area / (pos * neg);
}

double average_precision(const std::vector<double>& scores, const std::vector<int>& labels) {
  const auto order = by_score_desc(scores, labels);
  const double pos = std::accumulate(labels.begin(), labels.end(), 0.0);
  if (pos == 0) return std::numeric_limits<double>::quiet_NaN();
  double ap = 0, tp = 0, seen = 0, last_recall = 0;
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    for (; j < order.size() && scores[order[j]] == scores[order[i]]; ++j) {
      tp += labels[order[j]];
      seen += 1;
    }
    const double recall = tp / pos;
    ap += (recall - last_recall) * (tp / seen);
    last_recall = recall;
    i = j;
  }
  return ap;
}

}  // namespace endoked
