#pragma once
// Internal: argument rules shared by every backend, so a program valid on one rank is valid on
// many.
#include <ATen/core/Tensor.h>

#include <string>

#include "endoked/distributed/communicator.h"

namespace endoked::dist {
/// A defined CPU tensor of a supported dtype; `op` must suit it (kAvg: floating dtypes).
void check_collective_tensor(const at::Tensor& t, const char* what, ReduceOp op = ReduceOp::kSum);
/// "float32[17, 17]" — what ranks compare before a collective and print when they differ.
std::string describe(const at::Tensor& t, bool skip_first_dim = false);
}  // namespace endoked::dist
