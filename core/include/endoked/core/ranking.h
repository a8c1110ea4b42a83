#pragma once
// Ranking metrics of binary scores: ROC AUC and average precision, as scikit-learn's
// roc_auc_score and average_precision_score compute them (ties in the scores count as half in
// AUC; AP steps at each distinct threshold).
#include <cstdint>
#include <vector>

namespace endoked {

/// Area under the ROC curve of `scores` against 0/1 `labels` (same length). NaN when one class
/// is absent (undefined), so a report shows it rather than a made-up 0.5.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

/// Average precision: Σ (R_n − R_{n−1}) · P_n over distinct thresholds, high to low. NaN when
/// there is no positive.
double average_precision(const std::vector<double>& scores, const std::vector<int>& labels);

}  // namespace endoked
