#pragma once
// `endoked weights import FILE --arch A --out W.pt` and `endoked weights info FILE`.
#include <cstdint>
#include <string>

namespace endoked::recipes {

/// Reads FILE's state dict (a torchvision .pth, a checkpoint with a model/state_dict entry),
/// loads it into architecture `arch` by name (strict, except that a classifier head of another
/// size is left out when `num_classes` is 0: the backbone is what later stages use), checks a
/// forward pass, and writes the model's state dict to `out`. Prints the load report.
/// Returns the exit code (0; errors throw).
int weights_import(const std::string& file, const std::string& arch, const std::string& out,
                   std::int64_t num_classes);
/// Lists FILE's top-level entries: tensors with shape and dtype, containers with their size.
int weights_info(const std::string& file);

}  // namespace endoked::recipes
