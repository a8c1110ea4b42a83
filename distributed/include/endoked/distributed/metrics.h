#pragma once
// Reducing evaluation metrics over ranks. All functions are collectives (all ranks, same order).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "endoked/distributed/communicator.h"

namespace endoked::dist {

/// Sum of every rank's `value`.
double reduce_sum(Communicator& comm, double value);
std::int64_t reduce_count(Communicator& comm, std::int64_t count);
/// Element-wise sum of every rank's [K, K] confusion matrix (int64): rows true, columns predicted.
at::Tensor reduce_confusion(Communicator& comm, const at::Tensor& confusion);
/// Every rank's 1-D scores (and their labels) concatenated in rank order: the input of AUC/AP,
/// which need all scores at once.
at::Tensor gather_scores(Communicator& comm, const at::Tensor& scores);

}  // namespace endoked::dist
