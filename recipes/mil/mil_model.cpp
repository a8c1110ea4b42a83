#include "mil_model.h"

#include <torch/torch.h>

#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "endoked/vision/weights.h"

namespace endoked::recipes {

nlohmann::json MilModelOptions::to_json() const {
  return {{"arch", arch},   {"width", width},         {"attention_hidden", attention_hidden},
          {"gated", gated}, {"query_dim", query_dim}, {"student_hidden", student_hidden}};
}

MilModelOptions MilModelOptions::from_json(const nlohmann::json& j) {
  MilModelOptions o;
  o.arch = j.at("arch").get<std::string>();
  o.width = j.at("width").get<int>();
  o.attention_hidden = j.at("attention_hidden").get<int>();
  o.gated = j.at("gated").get<bool>();
  o.query_dim = j.at("query_dim").get<int>();
  o.student_hidden = j.at("student_hidden").get<int>();
  return o;
}

MilNetImpl::MilNetImpl(const MilModelOptions& o) {
  ENDOKED_CHECK(o.attention_hidden >= 1 && o.query_dim >= 1 && o.student_hidden >= 1,
                "mil.model: attention_hidden, query_dim and student_hidden must be ≥ 1");
  encoder = register_module("encoder", vision::make_resnet(o.arch, 0, o.width));
  const int64_t d = encoder->feature_dim();
  attention = register_module("attention", vision::AttentionMil(d, o.attention_hidden, o.gated));
  dsmil = register_module("dsmil", vision::DsMil(d, o.query_dim));
  student = register_module("student", vision::InstanceClassifier(d, o.student_hidden));
}

torch::Tensor MilNetImpl::features(const torch::Tensor& images) {
  return encoder->pooled(images);
}

void load_mil_weights(MilNetImpl& net, const MilModelOptions& o) {
  if (o.weights.empty()) return;
  vision::StateDict state = vision::read_state_dict(o.weights);
  bool whole = false;
  for (const auto& [name, t] : state) whole = whole || name.rfind("encoder.", 0) == 0;
  vision::LoadReport r;
  if (whole) {
    r = vision::load_state_dict(net, state, o.strict, o.weights);
  } else {
    vision::StateDict encoder;
    std::int64_t classifier = 0;
    for (auto& [name, t] : state) {
      if (name.rfind("fc.", 0) == 0) {
        ++classifier;  // torchvision's ImageNet classifier: the encoder has none
        continue;
      }
      encoder.emplace_back(name, t);
    }
    r = vision::load_state_dict(*net.encoder, encoder, o.strict, o.weights);
    if (classifier > 0)
      log::info("mil: weights: left out {} classifier tensor(s) (fc.*)", classifier);
  }
  ENDOKED_CHECK(r.mismatched.empty() && r.loaded > 0, "mil.model.weights '", o.weights,
                "' does not fit mil.model (arch ", o.arch, ", width ", o.width, "): ", r.loaded,
                " tensor(s) matched; ", r.describe());
  log::info("mil: weights {} -> {}: {} tensor(s) loaded, {} missing, {} unexpected", o.weights,
            whole ? "the whole model" : "the encoder", r.loaded, r.missing.size(),
            r.unexpected.size());
}

}  // namespace endoked::recipes
