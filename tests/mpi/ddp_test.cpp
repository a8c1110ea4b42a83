// DataParallel at 2 and 3 ranks against one process training on the full batch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>

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

// Compressed buckets (fp16, bf16) at 2 and 3 ranks against one process on the full batch: the
// parameters stay within the 16-bit type's rounding of the exact run (fp16 keeps 11 significant
// bits, bf16 8: after 5 SGD steps at lr 0.1 on gradients of order 1, 2e-3 and 2e-2), they do
// differ from it (the casts happened), and half the bytes go on the wire.
TEST(DataParallel, CompressedBucketsStayWithinTheirRounding) {
  auto& c = world();
  auto [x, y] = data();
  const int per = kRows / c.size();
  const auto xs = x.narrow(0, c.rank() * per, per), ys = y.narrow(0, c.rank() * per, per);
  std::int64_t plain_bytes = 0;
  for (const auto& [compression, tolerance] :
       {std::pair<std::string, double>{"none", 1e-5}, {"fp16", 2e-3}, {"bf16", 2e-2}}) {
    SCOPED_TRACE(compression);
    torch::manual_seed(0);
    Net reference;
    torch::manual_seed(0);
    Net model;
    dist::ReducerOptions o;
    o.compression = compression;
    o.first_bucket_mb = 100.0 / (1024 * 1024);
    o.bucket_cap_mb = 400.0 / (1024 * 1024);
    dist::DataParallel ddp(*model, c, o);
    torch::optim::SGD opt_ref(reference->parameters(), 0.1), opt(model->parameters(), 0.1);
    double diff = 0;
    for (int step = 0; step < 5; ++step) {
      opt_ref.zero_grad();
      torch::mse_loss(reference->forward(x), y).backward();
      opt_ref.step();
      opt.zero_grad();
      torch::mse_loss(model->forward(xs), ys).backward();
      ddp.finish_backward();
      opt.step();
      diff = max_diff(model, reference);
      EXPECT_LT(diff, tolerance) << "step " << step;
    }
    const std::int64_t bytes = ddp.last_step().wire_bytes;
    if (compression == "none") {
      plain_bytes = bytes;
      EXPECT_GT(bytes, 0);
    } else {
      EXPECT_GT(diff, 1e-7) << "no rounding: the buckets were not cast";
      EXPECT_EQ(bytes * 2, plain_bytes);
    }
  }
  dist::ReducerOptions bad;
  bad.compression = "int8";
  Net model;
  EXPECT_THROW(dist::DataParallel(*model, c, bad), Error);
}

// Buckets are launched while the backward pass still runs: on a deep net every bucket's
// all_reduce starts after backward() began and before it returned, in bucket order, the first
// one well before the end (its gradients are the last layer's, computed first).
TEST(DataParallel, BucketsAreLaunchedDuringTheBackwardPass) {
  auto& c = world();
  torch::manual_seed(0);
  torch::nn::Sequential net;
  for (int i = 0; i < 6; ++i) {
    net->push_back(torch::nn::Linear(384, 384));
    net->push_back(torch::nn::Functional(torch::relu));
  }
  dist::ReducerOptions o;
  o.first_bucket_mb = 0.6;
  o.bucket_cap_mb = 0.6;  // about one layer (576 KiB of weights) per bucket
  dist::DataParallel ddp(*net, c, o);
  EXPECT_EQ(ddp.buckets().size(), 6u);
  const auto x = torch::randn({256, 384});
  for (int step = 0; step < 3; ++step) {
    const auto loss = net->forward(x).pow(2).mean();
    const auto start = std::chrono::steady_clock::now();
    loss.backward();
    const auto end = std::chrono::steady_clock::now();
    ddp.finish_backward();
    const auto launched = ddp.last_step().launched;
    ASSERT_EQ(launched.size(), 6u);
    for (std::size_t b = 0; b < launched.size(); ++b) {
      EXPECT_GE(launched[b], start) << "bucket " << b;
      EXPECT_LE(launched[b], end) << "bucket " << b << " launched after the backward pass";
      if (b > 0) {
        EXPECT_GE(launched[b], launched[b - 1]);
      }
    }
    const double first = std::chrono::duration<double>(launched[0] - start).count();
    const double total = std::chrono::duration<double>(end - start).count();
    EXPECT_LT(first, 0.8 * total) << "first bucket at " << first << " s of " << total << " s";
  }
}

}  // namespace
}  // namespace endoked
