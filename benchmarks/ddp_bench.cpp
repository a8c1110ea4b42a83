// Data-parallel training throughput (SGD, lr 0.01, momentum 0.9):
//   endoked_bench_ddp MODE THREADS STEPS [MODEL] [KEY=VALUE ...]
// MODE:  plain   a plain LibTorch loop (no communicator)
//        ddp     endoked DataParallel (mpirun for several ranks)
//        nosync  the same DataParallel with gradient sync off (set_sync(false)): the step
//                without gradient exchange, for the exposed-communication figure
// MODEL: resnet18_128 (default; batch 16 at 128×128), resnet18_32 (batch 4 at 32×32),
//        mlp (4 linear layers 2048×2048 with ReLU, batch 8, MSE to a random target)
// KEY=VALUE: ReducerOptions (compression=fp16, progress=blocking, first_bucket_mb=…, …)
// Prints one JSON object on rank 0: global samples/s over STEPS steps after 3 warm-up steps,
// the median step time, and the bytes each rank all-reduced per step.
#include <malloc.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "endoked/distributed/data_parallel.h"
#include "endoked/distributed/runtime.h"
#include "endoked/vision/resnet.h"

namespace {
struct Setup {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor()> loss;
  int batch = 0;
};

Setup make_model(const std::string& name, int rank) {
  Setup s;
  torch::manual_seed(0);
  if (name == "mlp") {
    auto net = torch::nn::Sequential();
    for (int i = 0; i < 4; ++i) {
      net->push_back(torch::nn::Linear(2048, 2048));
      if (i < 3) net->push_back(torch::nn::Functional(torch::relu));
    }
    s.module = net.ptr();
    s.batch = 8;
    torch::manual_seed(1 + rank);
    const auto x = torch::randn({s.batch, 2048}), y = torch::randn({s.batch, 2048});
    s.loss = [net, x, y]() mutable { return torch::mse_loss(net->forward(x), y); };
    return s;
  }
  const int side = name == "resnet18_32" ? 32 : name == "resnet18_128" ? 128 : 0;
  if (side == 0) throw std::runtime_error("unknown model " + name);
  auto net = endoked::vision::resnet18(1000);
  net->train();
  s.module = net.ptr();
  s.batch = side == 32 ? 4 : 16;
  torch::manual_seed(1 + rank);
  const auto x = torch::randn({s.batch, 3, side, side});
  const auto y = torch::randint(0, 1000, {s.batch}, torch::kLong);
  s.loss = [net, x, y]() mutable {
    return torch::nn::functional::cross_entropy(net->forward(x), y);
  };
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  endoked::dist::Runtime rt(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "plain";
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 10;
  const std::string model_name = argc > 4 ? argv[4] : "resnet18_128";
  endoked::dist::ReducerOptions ro;
  for (int i = 5; i < argc; ++i) {
    const std::string kv = argv[i];
    const auto eq = kv.find('=');
    const std::string k = kv.substr(0, eq), v = eq == std::string::npos ? "" : kv.substr(eq + 1);
    if (k == "compression") {
      ro.compression = v;
    } else if (k == "progress") {
      ro.progress = v;
    } else if (k == "first_bucket_mb") {
      ro.first_bucket_mb = std::stod(v);
    } else if (k == "bucket_cap_mb") {
      ro.bucket_cap_mb = std::stod(v);
    } else {
      throw std::runtime_error("unknown option " + kv);
    }
  }
  torch::set_num_threads(threads);
  Setup s = make_model(model_name, rt.rank());
  std::unique_ptr<endoked::dist::DataParallel> ddp;
  if (mode != "plain")
    ddp = std::make_unique<endoked::dist::DataParallel>(*s.module, rt.world(), ro);
  if (mode == "nosync") ddp->set_sync(false);
  torch::optim::SGD opt(s.module->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  auto step = [&] {
    opt.zero_grad();
    s.loss().backward();
    if (ddp && ddp->sync()) ddp->finish_backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();
  rt.world().barrier();
  std::vector<double> times;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) {
    const auto a = std::chrono::steady_clock::now();
    step();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rt.world().all_reduce(&total, 1, endoked::dist::ReduceOp::kMax);
  std::nth_element(times.begin(), times.begin() + steps / 2, times.end());
  double median = times[static_cast<std::size_t>(steps / 2)];
  rt.world().all_reduce(&median, 1, endoked::dist::ReduceOp::kMax);
  const std::int64_t wire = ddp && ddp->sync() ? ddp->last_step().wire_bytes : 0;
  if (rt.rank() == 0)
    std::printf("%s\n",
                nlohmann::json{{"mode", mode == "plain" ? "plain_libtorch" : "endoked_" + mode},
                               {"model", model_name},
                               {"compression", ro.compression},
                               {"ranks", rt.size()},
                               {"threads_per_rank", threads},
                               {"steps", steps},
                               {"seconds", total},
                               {"median_step_s", median},
                               {"wire_bytes_per_step", wire},
                               {"images_per_s", s.batch * rt.size() * steps / total}}
                    .dump()
                    .c_str());
  return 0;
}
