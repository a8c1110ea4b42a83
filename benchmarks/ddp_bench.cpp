// ResNet-18 training throughput, batch 16 per rank at 128×128, SGD (lr 0.01, momentum 0.9):
//   endoked_bench_ddp plain THREADS STEPS     a plain LibTorch loop (no communicator)
//   endoked_bench_ddp ddp THREADS STEPS       endoked DataParallel (mpirun for several ranks)
// Prints one JSON object on rank 0: global images/s over STEPS steps after 3 warm-up steps.
#include <malloc.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "endoked/vision/resnet.h"
#include "endoked/distributed/data_parallel.h"
#include "endoked/distributed/runtime.h"

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  endoked::dist::Runtime rt(&argc, &argv);
  const std::string mode = argc > 1 ? argv[1] : "plain";
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 10;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  auto model = endoked::vision::resnet18(1000);
  model->train();
  std::unique_ptr<endoked::dist::DataParallel> ddp;
  if (mode == "ddp") ddp = std::make_unique<endoked::dist::DataParallel>(*model, rt.world());
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  torch::manual_seed(1 + rt.rank());
  const auto x = torch::randn({16, 3, 128, 128});
  const auto y = torch::randint(0, 1000, {16}, torch::kLong);
  auto step = [&] {
    opt.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x), y).backward();
    if (ddp) ddp->finish_backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();
  rt.world().barrier();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  rt.world().all_reduce(&s, 1, endoked::dist::ReduceOp::kMax);
  if (rt.rank() == 0)
    std::printf("%s\n", nlohmann::json{{"mode", mode == "ddp" ? "endoked_ddp" : "plain_libtorch"},
                                       {"ranks", rt.size()},
                                       {"threads_per_rank", threads},
                                       {"steps", steps},
                                       {"seconds", s},
                                       {"images_per_s", 16.0 * rt.size() * steps / s}}
                            .dump()
                            .c_str());
  return 0;
}
