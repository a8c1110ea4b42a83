#pragma once
// TorchScript export of a trained model, for users outside endoked (Python's torch.jit.load,
// LibTorch's torch::jit::load): the model's forward is traced on an example input with its
// parameters and buffers frozen into the graph as constants, and saved as a TorchScript module
// whose forward(x) computes the same for any batch size (the other dimensions as the example's:
// sizes the model reads from its input become constants when traced).
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>

namespace torch::nn {
class Module;
}

namespace endoked::vision {

/// Traces forward(example) (no gradient; `module`'s parameters are set not to require gradients
/// while tracing and restored after) and writes the TorchScript module to `path` atomically.
/// `name` is the module's class name (letters, digits, '_').
void export_torchscript(torch::nn::Module& module,
                        const std::function<at::Tensor(const at::Tensor&)>& forward,
                        const at::Tensor& example, const std::string& path,
                        const std::string& name);

}  // namespace endoked::vision
