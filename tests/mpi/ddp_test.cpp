// DataParallel at 2 and 3 ranks against one process training on the full batch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "endoked/core/error.h"
#include "endoked/distributed/data_parallel.h"
#include "world.h"

namespace endoked {
namespace {

using testing::world;

struct NetImpl : torch::nn::Module {
  explicit NetImpl(int hidden = 16) {
    fc1 = register_module("fc1", torch::nn::Linear(10, hidden));
    fc2 = register_module("fc2", torch::nn::Linear(hidden, 4));
    unused = register_module("unused", torch::nn::Linear(4, 4));  // never in forward
    frozen = register_parameter("frozen", torch::ones({3}), /*requires_grad=*/false);
    running = register_buffer("running", torch::zeros({2}));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::relu(fc1(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, unused{nullptr};
  torch::Tensor frozen, running;
};
TORCH_MODULE(Net);

constexpr int kRows = 12;

std::pair<torch::Tensor, torch::Tensor> data() {
  torch::manual_seed(100);
  return {torch::randn({kRows, 10}), torch::randn({kRows, 4})};
}

// Max |a - b| over every parameter.
double max_diff(Net& a, Net& b) {
  double d = 0;
  auto pa = a->parameters(), pb = b->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    d = std::max(d, (pa[i] - pb[i]).abs().max().item<double>());
  return d;
}

TEST(DataParallel, EqualsFullBatchTrainingAfterEveryStep) {
  auto& c = world();
  torch::manual_seed(0);
  Net reference;
  torch::manual_seed(c.rank() == 0 ? 0 : 100 + c.rank());  // rank 0 as the reference; others differ
  Net model;
  model->running.fill_(static_cast<float>(c.rank()));
  dist::ReducerOptions o;
  o.first_bucket_mb = 100.0 / (1024 * 1024);  // tiny buckets: several of them
  o.bucket_cap_mb = 400.0 / (1024 * 1024);
  dist::DataParallel ddp(*model, c, o);
  EXPECT_EQ(max_diff(model, reference), 0.0);  // rank 0's initial values everywhere
  EXPECT_EQ(model->running.sum().item<float>(), 0.0f);
  const auto buckets = ddp.buckets();
  EXPECT_GE(buckets.size(), 3u);
  EXPECT_EQ(buckets.front().front(), "unused.bias");  // reverse registration order
  for (const auto& b : buckets)
    for (const auto& name : b) EXPECT_NE(name, "frozen");

  auto [x, y] = data();
  const int per = kRows / c.size();
  const auto xs = x.narrow(0, c.rank() * per, per), ys = y.narrow(0, c.rank() * per, per);
  torch::optim::SGD opt_ref(reference->parameters(), 0.1), opt(model->parameters(), 0.1);
  for (int step = 0; step < 5; ++step) {
    opt_ref.zero_grad();
    torch::mse_loss(reference->forward(x), y).backward();
    opt_ref.step();
    opt.zero_grad();
    torch::mse_loss(model->forward(xs), ys).backward();
    ddp.finish_backward();
    opt.step();
    // float32 sums in a different order: equal to 1e-5
    EXPECT_LT(max_diff(model, reference), 1e-5) << "step " << step;
  }
}

TEST(DataParallel, GradientAccumulationWithoutSync) {
  auto& c = world();
  torch::manual_seed(0);
  Net reference;
  torch::manual_seed(0);
  Net model;
  dist::DataParallel ddp(*model, c);
  auto [x, y] = data();
  const int per = kRows / c.size();
  const auto xs = x.narrow(0, c.rank() * per, per), ys = y.narrow(0, c.rank() * per, per);
  torch::optim::SGD opt_ref(reference->parameters(), 0.1), opt(model->parameters(), 0.1);
  for (int step = 0; step < 3; ++step) {
    opt_ref.zero_grad();
    torch::mse_loss(reference->forward(x), y).backward();
    opt_ref.step();
    opt.zero_grad();
    // two micro-batches; the first only accumulates locally
    const int half = per / 2;
    ddp.set_sync(false);
    (torch::mse_loss(model->forward(xs.narrow(0, 0, half)), ys.narrow(0, 0, half)) * 0.5)
        .backward();
    ddp.set_sync(true);
    (torch::mse_loss(model->forward(xs.narrow(0, half, per - half)),
                     ys.narrow(0, half, per - half)) *
     0.5)
        .backward();
    ddp.finish_backward();
    opt.step();
    EXPECT_LT(max_diff(model, reference), 1e-5) << "step " << step;
  }
}

TEST(DataParallel, MismatchedModelsNameTheFirstDifferingParameter) {
  auto& c = world();
  Net model(c.rank() == 1 ? 17 : 16);
  try {
    dist::DataParallel ddp(*model, c);
    FAIL() << "different models were accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("fc1.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("rank 1"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace endoked
