#pragma once
// The MIL network: one encoder (ResNet, pooled features) shared by two teachers — gated
// attention-MIL and DSMIL — and a student instance classifier (vision/mil.h). Saved as a
// torch.save state dict (model.pt) plus model.json (architecture, image size, the teachers'
// normalisation), which `mil score` and later stages read.
#include <torch/nn/module.h>
#include <nlohmann/json.hpp>

#include <string>

#include "endoked/vision/mil.h"
#include "endoked/vision/resnet.h"

namespace endoked::recipes {

struct MilModelOptions {
  std::string arch = "resnet18";
  int width = 64;
  std::string weights;
  bool strict = false;
  int attention_hidden = 128;
  bool gated = true;
  int query_dim = 128;
  int student_hidden = 128;

  template <class V>
  void visit(V& v) {
    v("arch", arch, "encoder: resnet18 | resnet34 | resnet50 (torchvision names)");
    v("width", width,
      "encoder stem channels (64 as published; smaller is faster on CPU but cannot load "
      "published weights)");
    v("weights", weights,
      "torch.save file to start from: a torchvision state dict (the encoder; fc is ignored), a "
      "checkpoint with a model/state_dict entry, or a mil model.pt (every head)");
    v("strict", strict, "weights: refuse missing or unexpected names (shapes must always match)");
    v("attention_hidden", attention_hidden, "attention-MIL hidden size");
    v("gated", gated, "gated attention (Ilse et al.) instead of plain");
    v("query_dim", query_dim, "DSMIL query size");
    v("student_hidden", student_hidden, "student classifier hidden size");
  }
  nlohmann::json to_json() const;
  static MilModelOptions from_json(const nlohmann::json& j);
};

class MilNetImpl : public torch::nn::Module {
 public:
  explicit MilNetImpl(const MilModelOptions& o);
  /// [N, 3, H, W] → [N, D] pooled features.
  torch::Tensor features(const torch::Tensor& images);

  vision::ResNet encoder{nullptr};
  vision::AttentionMil attention{nullptr};
  vision::DsMil dsmil{nullptr};
  vision::InstanceClassifier student{nullptr};
};
TORCH_MODULE(MilNet);

/// Loads `o.weights` (when set) into `net`: a state dict whose names start with "encoder." goes
/// to the whole net, any other (torchvision's) to the encoder. Logs what was loaded; throws
/// Error naming the file on a shape mismatch, or on missing/unexpected names when strict.
void load_mil_weights(MilNetImpl& net, const MilModelOptions& o);

}  // namespace endoked::recipes
