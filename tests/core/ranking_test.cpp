// ROC AUC and average precision against values computed by hand (scikit-learn agrees).
#include <gtest/gtest.h>

#include <cmath>

#include "endoked/core/error.h"
#include "endoked/core/ranking.h"

namespace endoked {
namespace {

TEST(Ranking, AucCountsOrderedPairs) {
  // Positives 0.9, 0.4; negatives 0.5, 0.1: of 4 (pos, neg) pairs, 3 are ordered.
  EXPECT_NEAR(roc_auc({0.9, 0.5, 0.4, 0.1}, {1, 0, 1, 0}), 0.75, 1e-12);
  EXPECT_NEAR(roc_auc({0.9, 0.8, 0.2, 0.1}, {1, 1, 0, 0}), 1.0, 1e-12);
  EXPECT_NEAR(roc_auc({0.1, 0.2, 0.8, 0.9}, {1, 1, 0, 0}), 0.0, 1e-12);
}

TEST(Ranking, AucCountsTiesAsHalf) {
  // A positive tied with a negative: half a pair. Pairs: (0.7,0.7) ½, (0.7,0.2) 1, (0.9,·) 2.
  EXPECT_NEAR(roc_auc({0.9, 0.7, 0.7, 0.2}, {1, 1, 0, 0}), 3.5 / 4, 1e-12);
  EXPECT_NEAR(roc_auc({0.5, 0.5, 0.5}, {1, 0, 0}), 0.5, 1e-12);
}

TEST(Ranking, AucUndefinedWithOneClass) {
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {1, 1})));
  EXPECT_TRUE(std::isnan(roc_auc({}, {})));
}

TEST(Ranking, AveragePrecisionSteps) {
  // Ranked: 1 (P 1/1), 0, 1 (P 2/3), 0 → AP = ½·1 + ½·⅔.
  EXPECT_NEAR(average_precision({0.9, 0.8, 0.7, 0.1}, {1, 0, 1, 0}), 0.5 + 1.0 / 3, 1e-12);
  EXPECT_NEAR(average_precision({0.9, 0.8}, {1, 1}), 1.0, 1e-12);
  // A tie block counts once at its threshold: {0.5: 1 pos, 1 neg} → P ½ at recall 1.
  EXPECT_NEAR(average_precision({0.5, 0.5}, {1, 0}), 0.5, 1e-12);
  EXPECT_TRUE(std::isnan(average_precision({0.3}, {0})));
}

TEST(Ranking, RejectsBadInput) {
  EXPECT_THROW(roc_auc({0.1}, {1, 0}), Error);
  EXPECT_THROW(roc_auc({0.1, 0.2}, {1, 2}), Error);
  EXPECT_THROW(average_precision({std::nan(""), 0.2}, {1, 0}), Error);
}

}  // namespace
}  // namespace endoked
