#pragma once
// Multiple-instance learning heads for the MIL stage (EndoKED follows WENO, Qu et al. NeurIPS
// 2022: two teachers and a student over a shared encoder). A bag is one exam's images; its label
// is the report's. Every head takes one bag's instance features [K, D] (K ≥ 1 images, D the
// encoder's pooled features).
//
//   AttentionMil — Ilse et al. 2018, plain or gated attention. Instance score: the pre-softmax
//                  attention logit. Bag logit: a linear layer on the attention-weighted mean.
//   DsMil        — Li et al. 2021 (dual-stream): an instance classifier; the critical instance
//                  (highest instance logit) queries every instance; one softmax over the
//                  similarities weights the values; a linear layer on that bag embedding gives
//                  the bag logit. Loss: 0.5 · bag BCE + 0.5 · BCE of the max instance logit.
//   InstanceClassifier — the student: a per-image logit, trained on the teachers' fused soft
//                  labels with weighted_soft_bce.
// Binary labels throughout (polyp present or not): one logit per bag / instance.
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>

#include <cstdint>

namespace endoked::vision {

struct MilOutput {
  torch::Tensor bag_logit;        // [] (scalar)
  torch::Tensor instance_scores;  // [K] (attention logits, or instance logits for DSMIL)
  torch::Tensor attention;        // [K], sums to 1
};

class AttentionMilImpl : public torch::nn::Module {
 public:
  AttentionMilImpl(int64_t in_dim, int64_t hidden = 128, bool gated = true);
  MilOutput forward(const torch::Tensor& instances);
  /// BCE of the bag logit against the bag label (0 or 1).
  torch::Tensor loss(const MilOutput& out, double bag_label) const;

 private:
  torch::nn::Linear v_{nullptr}, u_{nullptr}, w_{nullptr}, classifier_{nullptr};
  bool gated_;
};
TORCH_MODULE(AttentionMil);

class DsMilImpl : public torch::nn::Module {
 public:
  DsMilImpl(int64_t in_dim, int64_t query_dim = 128);
  MilOutput forward(const torch::Tensor& instances);
  /// 0.5 · BCE(bag logit) + 0.5 · BCE(max instance logit), against the bag label.
  torch::Tensor loss(const MilOutput& out, double bag_label) const;

 private:
  torch::nn::Linear instance_{nullptr}, query_{nullptr}, value_{nullptr}, bag_{nullptr};
  int64_t query_dim_;
};
TORCH_MODULE(DsMil);

class InstanceClassifierImpl : public torch::nn::Module {
 public:
  InstanceClassifierImpl(int64_t in_dim, int64_t hidden = 128);
  /// [K, D] → [K] logits.
  torch::Tensor forward(const torch::Tensor& instances);

 private:
  torch::nn::Linear hidden_{nullptr}, out_{nullptr};
};
TORCH_MODULE(InstanceClassifier);

/// Weighted soft binary cross-entropy of logits against soft targets in [0, 1], averaged:
/// −mean(w_pos · y · log σ(x) + w_neg · (1 − y) · log(1 − σ(x))). Both weights must be > 0 (a
/// zero positive weight would teach the student nothing about polyps).
torch::Tensor weighted_soft_bce(const torch::Tensor& logits, const torch::Tensor& targets,
                                double positive_weight = 0.5, double negative_weight = 0.5);

/// Min–max normalisation over a set of scores (a teacher's scores over an epoch), clamped to
/// [0, 1]; all equal → all 0.
torch::Tensor minmax_normalise(const torch::Tensor& scores);

/// The student's soft labels: w1 · teacher1 + w2 · teacher2 (each already normalised, weights
/// normalised to sum 1), clamped to [0, 1], and 0 for every instance of a negative bag
/// (`bag_positive` [K] bool or 0/1).
torch::Tensor fuse_teachers(const torch::Tensor& teacher1, const torch::Tensor& teacher2,
                            const torch::Tensor& bag_positive, double weight1 = 0.5,
                            double weight2 = 0.5);

}  // namespace endoked::vision
