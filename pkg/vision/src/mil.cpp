#include "endoked/vision/mil.h"

#include <torch/torch.h>

#include <cmath>

#include "endoked/core/error.h"

namespace endoked::vision {
namespace nn = torch::nn;
namespace F = torch::nn::functional;

namespace {
void check_bag(const torch::Tensor& x, int64_t dim, const char* head) {
  ENDOKED_CHECK(x.dim() == 2 && x.size(0) >= 1 && x.size(1) == dim, head,
                ": a bag is [K ≥ 1, ", dim, "] instance features, got ", x.sizes());
}
torch::Tensor bce(const torch::Tensor& logit, double label) {
  return F::binary_cross_entropy_with_logits(logit, torch::full_like(logit, label));
}
}  // namespace

AttentionMilImpl::AttentionMilImpl(int64_t in_dim, int64_t hidden, bool gated) : gated_(gated) {
  v_ = register_module("attention_v", nn::Linear(in_dim, hidden));
  if (gated) u_ = register_module("attention_u", nn::Linear(in_dim, hidden));
  w_ = register_module("attention_w", nn::Linear(hidden, 1));
  classifier_ = register_module("classifier", nn::Linear(in_dim, 1));
}

MilOutput AttentionMilImpl::forward(const torch::Tensor& x) {
  check_bag(x, v_->weight.size(1), "attention MIL");
  auto h = torch::tanh(v_(x));
  if (gated_) h = h * torch::sigmoid(u_(x));
  const auto logits = w_(h).squeeze(1);        // [K]
  const auto a = torch::softmax(logits, 0);     // [K]
  const auto z = (a.unsqueeze(1) * x).sum(0);   // [D]
  return {classifier_(z).squeeze(0), logits, a};
}

torch::Tensor AttentionMilImpl::loss(const MilOutput& out, double bag_label) const {
  return bce(out.bag_logit, bag_label);
}

DsMilImpl::DsMilImpl(int64_t in_dim, int64_t query_dim) : query_dim_(query_dim) {
  instance_ = register_module("instance_classifier", nn::Linear(in_dim, 1));
  query_ = register_module("query", nn::Linear(in_dim, query_dim));
  value_ = register_module("value", nn::Linear(in_dim, in_dim));
  bag_ = register_module("bag_classifier", nn::Linear(in_dim, 1));
}

MilOutput DsMilImpl::forward(const torch::Tensor& x) {
  check_bag(x, instance_->weight.size(1), "DSMIL");
  const auto c = instance_(x).squeeze(1);                  // [K] instance logits
  const auto critical = c.argmax().item<int64_t>();
  const auto q = torch::tanh(query_(x));                   // [K, Q]
  const auto sim = torch::mv(q, q[critical]) / std::sqrt(static_cast<double>(query_dim_));
  const auto a = torch::softmax(sim, 0);                   // the one softmax
  const auto b = (a.unsqueeze(1) * value_(x)).sum(0);      // [D]
  return {bag_(b).squeeze(0), c, a};
}

torch::Tensor DsMilImpl::loss(const MilOutput& out, double bag_label) const {
  return 0.5 * bce(out.bag_logit, bag_label) + 0.5 * bce(out.instance_scores.max(), bag_label);
}

InstanceClassifierImpl::InstanceClassifierImpl(int64_t in_dim, int64_t hidden) {
  hidden_ = register_module("hidden", nn::Linear(in_dim, hidden));
  out_ = register_module("out", nn::Linear(hidden, 1));
}

torch::Tensor InstanceClassifierImpl::forward(const torch::Tensor& x) {
  check_bag(x, hidden_->weight.size(1), "instance classifier");
  return out_(torch::relu(hidden_(x))).squeeze(1);
}

torch::Tensor weighted_soft_bce(const torch::Tensor& logits, const torch::Tensor& targets,
                                double positive_weight, double negative_weight) {
  ENDOKED_CHECK(positive_weight > 0 && negative_weight > 0,
                "soft cross-entropy weights must be > 0, got positive ", positive_weight,
                ", negative ", negative_weight);
  ENDOKED_CHECK(logits.sizes() == targets.sizes(), "soft cross-entropy: logits ", logits.sizes(),
                " and targets ", targets.sizes(), " differ");
  // log σ(x) and log(1 − σ(x)) = log σ(−x), computed stably.
  const auto pos = F::logsigmoid(logits), neg = F::logsigmoid(-logits);
  return -(positive_weight * targets * pos + negative_weight * (1 - targets) * neg).mean();
}

torch::Tensor minmax_normalise(const torch::Tensor& scores) {
  if (scores.numel() == 0) return scores.clone();
  const auto lo = scores.min(), hi = scores.max();
  const auto range = hi - lo;
  if (range.item<double>() <= 0) return torch::zeros_like(scores);
  return ((scores - lo) / range).clamp(0, 1);
}

torch::Tensor fuse_teachers(const torch::Tensor& teacher1, const torch::Tensor& teacher2,
                            const torch::Tensor& bag_positive, double weight1, double weight2) {
  ENDOKED_CHECK(weight1 >= 0 && weight2 >= 0 && weight1 + weight2 > 0,
                "teacher weights must be ≥ 0 and not both 0, got ", weight1, " and ", weight2);
  ENDOKED_CHECK(teacher1.sizes() == teacher2.sizes() && teacher1.sizes() == bag_positive.sizes(),
                "fuse_teachers: sizes differ (", teacher1.sizes(), ", ", teacher2.sizes(), ", ",
                bag_positive.sizes(), ")");
  const double s = weight1 + weight2;
  const auto fused = ((weight1 / s) * teacher1 + (weight2 / s) * teacher2).clamp(0, 1);
  return fused * bag_positive.to(fused.scalar_type());
}

}  // namespace endoked::vision
