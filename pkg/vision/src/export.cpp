#include "endoked/vision/export.h"

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <sstream>

#include "endoked/core/error.h"
#include "endoked/core/files.h"

namespace endoked::vision {

void export_torchscript(torch::nn::Module& module,
                        const std::function<at::Tensor(const at::Tensor&)>& forward,
                        const at::Tensor& example, const std::string& path,
                        const std::string& name) {
  // The tracer bakes tensors it did not see as inputs into the graph as constants (the same
  // tensors, not copies), which it refuses for tensors that require gradients; and a constant
  // saved as requiring gradients cannot be loaded. So the parameters require none until saved.
  struct Frozen {
    std::vector<std::pair<torch::Tensor, bool>> params;
    explicit Frozen(torch::nn::Module& m) {
      for (auto& p : m.parameters()) {
        params.emplace_back(p, p.requires_grad());
        p.requires_grad_(false);
      }
    }
    ~Frozen() {
      for (auto& [p, g] : params) p.requires_grad_(g);
    }
  } frozen(module);
  std::shared_ptr<torch::jit::Graph> graph;
  try {
    torch::NoGradGuard no_grad;
    const auto traced = torch::jit::tracer::trace(
        {example},
        [&](torch::jit::Stack in) -> torch::jit::Stack { return {forward(in.at(0).toTensor())}; },
        [](const torch::autograd::Variable&) { return std::string(); }, /*strict=*/false,
        /*force_outplace=*/false);
    graph = traced.first->graph;
  } catch (const std::exception& e) {
    ENDOKED_FAIL("TorchScript export to '", path, "': tracing failed: ", e.what());
  }
  torch::jit::Module m(c10::QualifiedName("__torch__.endoked." + name));
  graph->insertInput(0, "self")->setType(m._ivalue()->type());
  auto* fn = m._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*m.type()->name(), "forward"), graph);
  m.type()->addMethod(fn);
  std::ostringstream bytes;
  m.save(bytes);
  files::atomic_write(path, bytes.str());
}

}  // namespace endoked::vision
