// The trainer under mpirun (tests/mpi/engine_test.sh runs it at 1, 2 and 3 ranks).
//   engine_main make STORE LABELS
//       writes a small labelled store (one process)
//   engine_main train STORE LABELS CKPT OUT [batch=N] [epochs=N] [max_steps=N] [preempt_at=N]
//                     [nan_at=N] [accumulate=N]
//       trains a small CNN through engine::Trainer over data::Loader (hflip + normalise), writes
//       the final parameters' bytes to OUT and, per global step, the sorted ids of the images
//       every rank read to OUT.ids (appended, so a resumed run continues the file). Exit 75
//       when preempted (preempt_at: rank world-1 raises SIGUSR1 in that step's loss step).
//   engine_main compare A B TOL
//       exit 0 when the two parameter files agree within TOL (max abs), printing the difference
#include <torch/torch.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>

#include "../common/test_util.h"
#include "endoked/core/files.h"
#include "endoked/data/dataset.h"
#include "endoked/distributed/preemption.h"
#include "endoked/distributed/runtime.h"
#include "endoked/engine/trainer.h"

namespace {

struct NetImpl : torch::nn::Module {
  NetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3).stride(2)));
    fc = register_module("fc", torch::nn::Linear(4, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::relu(conv(x));
    return fc(torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1)).squeeze(1);
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Net);

std::vector<float> read_floats(const std::string& path) {
  const std::string bytes = endoked::files::read_all(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

int compare(const std::string& a, const std::string& b, double tol) {
  const auto x = read_floats(a), y = read_floats(b);
  if (x.size() != y.size() || x.empty()) {
    std::printf("sizes differ: %zu vs %zu\n", x.size(), y.size());
    return 1;
  }
  double d = 0;
  for (std::size_t i = 0; i < x.size(); ++i) d = std::max(d, std::abs(double(x[i]) - y[i]));
  std::printf("max |a - b| = %.3g over %zu parameters (tolerance %.3g)\n", d, x.size(), tol);
  return d <= tol ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace endoked;
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "make" && argc == 4) {
    testing::make_labelled_store(argv[2], argv[3], 12, 2, 32, 32, 4);
    return 0;
  }
  if (mode == "compare" && argc == 5) return compare(argv[2], argv[3], std::atof(argv[4]));
  if (mode != "train" || argc < 6) {
    std::fprintf(stderr, "usage: see the file comment\n");
    return 2;
  }
  dist::Runtime rt(&argc, &argv);
  std::map<std::string, std::int64_t> kv = {{"batch", 4},     {"epochs", 3},  {"max_steps", 0},
                                            {"preempt_at", -1}, {"nan_at", -1}, {"accumulate", 1}};
  for (int i = 6; i < argc; ++i) {
    const std::string a = argv[i];
    const auto eq = a.find('=');
    kv.at(a.substr(0, eq)) = std::stoll(a.substr(eq + 1));
  }
  try {
    torch::set_num_threads(1);
    data::DatasetOptions d;
    d.store = argv[2];
    d.sidecars = {argv[3]};
    d.label_columns = {"images/label"};
    data::LoaderOptions lo;
    lo.batch_size = static_cast<int>(kv["batch"]);
    lo.threads = 1;
    lo.seed = 3;
    lo.tail = "drop";
    data::TransformSpec flip, norm;
    flip.name = "hflip";
    norm.name = "normalise";
    lo.transforms = {flip, norm};

    engine::TrainerOptions o;
    o.epochs = kv["epochs"];
    o.max_steps = kv["max_steps"];
    o.accumulate = static_cast<int>(kv["accumulate"]);
    o.log_every = 1;
    o.watchdog_s = 60;
    o.checkpoint.dir = argv[4];
    o.checkpoint.keep_last = 2;
    o.lr_schedule.kind = "cosine";
    o.lr_schedule.lr = 0.1;
    o.lr_schedule.warmup_steps = 2;
    o.lr_schedule.total_steps = 9;  // fixed: a run stopped by max_steps keeps the same schedule
    RunDir run(std::string(argv[4]) + "-run", rt.rank() == 0);
    engine::Trainer trainer(o, rt.world(), run, "test: engine\n", "engine");

    torch::manual_seed(0);
    Net model;
    torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    std::vector<std::vector<std::string>> ids;  // this rank's, per call
    std::int64_t calls = 0;
    const auto step = [&](const data::Batch& b) {
      ids.push_back(b.ids);
      if (calls == kv["preempt_at"] && rt.rank() == rt.size() - 1) std::raise(SIGUSR1);
      auto loss = torch::binary_cross_entropy_with_logits(model->forward(b.images),
                                                          b.labels.at("label"));
      if (calls == kv["nan_at"]) loss = loss * std::numeric_limits<float>::quiet_NaN();
      ++calls;
      const double acc =
          ((model->forward(b.images) > 0).to(torch::kFloat) == b.labels.at("label"))
              .to(torch::kFloat)
              .mean()
              .item<double>();
      return engine::StepOutput{loss, {{"accuracy", acc}}};
    };
    const auto eval = [&](std::int64_t) {
      engine::MetricSums m;
      m.add("eval_calls", 1.0, 1.0);
      return m;
    };
    const auto dataset = data::make_dataset(d);
    const engine::FitResult r =
        trainer.fit(*model, opt, engine::loader_source(dataset, lo, rt.rank(), rt.size()), step,
                    eval);
    // Ids per global step: every rank's list, gathered.
    std::string mine;
    for (const auto& step_ids : ids) {
      for (const auto& id : step_ids) mine += id + " ";
      mine += "\n";
    }
    const auto all = rt.world().all_gather_bytes(mine);
    if (rt.rank() == 0) {
      std::vector<std::vector<std::string>> lines;
      for (const auto& part : all) {
        std::istringstream in(part);
        std::string line;
        for (std::size_t k = 0; std::getline(in, line); ++k) {
          if (lines.size() <= k) lines.resize(k + 1);
          std::istringstream words(line);
          for (std::string w; words >> w;) lines[k].push_back(w);
        }
      }
      std::ofstream f(std::string(argv[5]) + ".ids", std::ios::app);
      for (auto& l : lines) {
        std::sort(l.begin(), l.end());
        for (const auto& w : l) f << w << ' ';
        f << '\n';
      }
      std::ofstream p(argv[5], std::ios::binary);
      for (const auto& t : model->parameters()) {
        const auto c = t.contiguous();
        p.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
      }
      std::printf("engine: %lld steps, loss %.5f, eval_calls %.0f%s\n",
                  static_cast<long long>(r.steps), r.last_loss,
                  r.last_eval.count("eval_calls") ? r.last_eval.at("eval_calls") : -1.0,
                  r.preempted ? ", preempted" : "");
    }
    return r.preempted ? dist::kRequeueExitCode : 0;
  } catch (const std::exception& e) {
    rt.fail(e.what());
  }
}
