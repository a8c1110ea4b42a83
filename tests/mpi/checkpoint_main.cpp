// Exact resume: train TOTAL steps with DataParallel, dropout and SGD momentum over a sharded,
// shuffled dataset; with STOP > 0 save a checkpoint after STOP steps and exit. A later run with
// the same checkpoint directory resumes from it. Rank 0 writes the final parameters' bytes.
// The learning rate follows a warm-up + cosine schedule whose peak is PEAK_LR (default 0.05); a
// resumed run given another PEAK_LR must still follow the checkpoint's schedule.
//   endoked_checkpoint_test TOTAL STOP CHECKPOINT_DIR OUT_FILE [PEAK_LR]
#include <torch/torch.h>

#include <cstdio>
#include <fstream>

#include "endoked/core/lr_schedule.h"
#include "endoked/data/sampler.h"
#include "endoked/distributed/checkpoint.h"
#include "endoked/distributed/data_parallel.h"
#include "endoked/distributed/runtime.h"

struct NetImpl : torch::nn::Module {
  NetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(8, 16));
    drop = register_module("drop", torch::nn::Dropout(0.3));
    fc2 = register_module("fc2", torch::nn::Linear(16, 2));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(drop(torch::relu(fc1(x)))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Dropout drop{nullptr};
};
TORCH_MODULE(Net);

int main(int argc, char** argv) {
  endoked::dist::Runtime rt(&argc, &argv);
  if (argc < 5) return 2;
  const int total = std::atoi(argv[1]), stop = std::atoi(argv[2]);
  const std::string dir = argv[3], out = argv[4];
  const double peak_lr = argc > 5 ? std::atof(argv[5]) : 0.05;
  try {
    auto gen = at::detail::createCPUGenerator(7);
    const auto x = torch::randn({32, 8}, gen), y = torch::randn({32, 2}, gen);
    torch::manual_seed(0);
    Net model;
    model->train();
    endoked::dist::DataParallel ddp(*model, rt.world());
    torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    torch::manual_seed(1234 + rt.rank());  // dropout masks differ per rank
    endoked::LrScheduleOptions so;
    so.kind = "cosine";
    so.lr = peak_lr;
    so.warmup_steps = 3;
    so.total_steps = 10;
    endoked::LrScheduler sched(so, opt);
    endoked::dist::Checkpointer ck({dir, 2}, rt.world());
    endoked::dist::TrainingState st;
    ck.load_latest(*model, opt, st, &sched);
    while (st.step < total) {
      endoked::data::EpochPlan plan(32, 3, st.epoch, 4, rt.rank(), rt.size(),
                                    endoked::data::Tail::kDrop, st.cursor);
      for (std::int64_t s = 0; s < plan.steps() && st.step < total; ++s) {
        const auto idx = torch::tensor(plan.batch(s), torch::kLong);
        sched.apply(st.step);
        opt.zero_grad();
        torch::mse_loss(model->forward(x.index_select(0, idx)), y.index_select(0, idx)).backward();
        ddp.finish_backward();
        opt.step();
        ++st.step;
        st.cursor = plan.cursor_after(s + 1);
        if (stop > 0 && st.step == stop) {
          st.config_yaml = "test: checkpoint\n";
          ck.save(*model, opt, st, &sched);
          return 0;
        }
      }
      if (st.step < total) {
        ++st.epoch;
        st.cursor = 0;
      }
    }
    if (rt.rank() == 0) {
      std::ofstream f(out, std::ios::binary);
      for (const auto& p : model->parameters()) {
        const auto c = p.contiguous();
        f.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
      }
    }
    return 0;
  } catch (const std::exception& e) {
    rt.fail(e.what());
  }
}
