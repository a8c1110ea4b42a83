#include "weights_commands.h"

#include <torch/torch.h>

#include <cstdio>

#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "endoked/vision/resnet.h"
#include "endoked/vision/weights.h"

namespace endoked::recipes {

int weights_import(const std::string& file, const std::string& arch, const std::string& out,
                   std::int64_t num_classes) {
  ENDOKED_CHECK(!out.empty(), "weights import: --out is required");
  vision::StateDict state = vision::read_state_dict(file);
  // The head's size comes from the file unless given; 0 keeps the backbone only.
  std::int64_t classes = num_classes;
  if (classes < 0) {
    classes = 0;
    for (const auto& [k, v] : state)
      if (k == "fc.weight" && v.dim() == 2) classes = v.size(0);
  }
  ENDOKED_CHECK(classes <= 1000000, file, ": a classifier head of ", classes,
                " classes is not plausible");
  if (classes == 0) {
    vision::StateDict backbone;
    for (auto& kv : state)
      if (kv.first.rfind("fc.", 0) != 0) backbone.push_back(std::move(kv));
    state = std::move(backbone);
  }
  auto model = vision::make_resnet(arch, classes);
  const vision::LoadReport report = vision::load_state_dict(*model, state, true, file);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto y = model->forward(torch::zeros({1, 3, 64, 64}));
  ENDOKED_CHECK(torch::isfinite(y).all().item<bool>(), file, ": the imported ", arch,
                " gives non-finite outputs");
  vision::save_state_dict(vision::state_dict_from(*model), out);
  std::printf("%s: %s as %s (%s) -> %s\n", file.c_str(), report.describe().c_str(), arch.c_str(),
              classes ? ("head of " + std::to_string(classes) + " classes").c_str() : "backbone only",
              out.c_str());
  return 0;
}

namespace {
std::string describe(const vision::PyValue& v) {
  if (v.kind == vision::PyValue::Kind::kTensor) {
    std::string shape;
    for (auto s : v.tensor.sizes()) shape += (shape.empty() ? "" : ", ") + std::to_string(s);
    return "[" + shape + "] " + c10::toString(v.tensor.scalar_type());
  }
  if (v.kind == vision::PyValue::Kind::kDict || v.kind == vision::PyValue::Kind::kList ||
      v.kind == vision::PyValue::Kind::kTuple)
    return std::string(v.type_name()) + " of " +
           std::to_string(v.kind == vision::PyValue::Kind::kDict ? v.entries.size() : v.items.size());
  if (v.kind == vision::PyValue::Kind::kInt) return std::to_string(v.integer);
  if (v.kind == vision::PyValue::Kind::kFloat) return std::to_string(v.number);
  if (v.kind == vision::PyValue::Kind::kString) return "'" + v.text.substr(0, 60) + "'";
  if (v.kind == vision::PyValue::Kind::kObject) return "object of " + v.text + " (not read)";
  return v.type_name();
}
}  // namespace

int weights_info(const std::string& file) {
  const vision::PyValue root = vision::load_torch_file(file);
  std::printf("%s: a %s\n", file.c_str(), describe(root).c_str());
  std::int64_t tensors = 0, numel = 0;
  for (const auto& [k, v] : root.entries) {
    std::printf("  %-60s %s\n", (k.kind == vision::PyValue::Kind::kString ? k.text : "?").c_str(),
                describe(v).c_str());
    if (v.kind == vision::PyValue::Kind::kTensor) {
      ++tensors;
      numel += v.tensor.numel();
    }
  }
  std::printf("%lld tensors, %lld values at the top level\n", static_cast<long long>(tensors),
              static_cast<long long>(numel));
  return 0;
}

}  // namespace endoked::recipes
