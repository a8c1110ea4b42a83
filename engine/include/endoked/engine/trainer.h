#pragma once
// The one training loop every training stage uses.
//
// A stage hands the trainer a model, an optimizer, a batch source (usually the data::Loader over
// a record store and its sidecars) and a loss step; the trainer does the rest, the same way for
// every stage:
//   - data parallel: parameters broadcast from rank 0, gradients averaged in buckets that
//     overlap the backward pass (dist::DataParallel); world size 1 needs no MPI;
//   - the LR schedule (applied before every optimizer step; cosine/linear decay lengths default
//     to the run's total steps), gradient accumulation over `accumulate` batches;
//   - one small collective per optimizer step carries the mean loss and metrics, a non-finite
//     loss flag and the preemption flag, under the stall watchdog (`watchdog_s`): a rank that
//     does not arrive is named and the job aborted instead of hanging;
//   - a NaN/Inf loss on any rank stops the run on every rank with an Error naming the step,
//     epoch and rank, before the bad gradient reaches the weights;
//   - checkpoints (dist::Checkpointer) every `checkpoint_every` steps, at each epoch end, and at
//     preemption (SIGUSR1/SIGTERM on any rank: all ranks stop at the same step, checkpoint, and
//     fit() returns with `preempted` set; the caller exits with dist::kRequeueExitCode = 75;
//     for tests, ENDOKED_TEST_SIGNAL_AT_STEP=N makes rank 0 raise SIGUSR1 as step N begins);
//   - batch-norm running statistics (floating-point buffers) averaged over ranks after every
//     optimizer step (ddp.average_buffers), so every rank evaluates and saves the same model;
//   - resume from `latest` when a checkpoint exists: bitwise-identical on CPU at the same world
//     size; on another world size the global data cursor continues the same sample order (the
//     per-rank batch size then decides the global batch);
//   - metrics.jsonl in the run directory (one line per `log_every` steps, per epoch, per eval),
//     progress with rate and ETA on rank 0;
//   - an evaluation hook after each `eval_every` epochs whose sums are reduced over ranks.
// Threading: fit() is called from one thread per rank; every call here is collective (all ranks,
// same order).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "endoked/core/lr_schedule.h"
#include "endoked/core/run_dir.h"
#include "endoked/data/loader.h"
#include "endoked/distributed/checkpoint.h"
#include "endoked/distributed/communicator.h"
#include "endoked/distributed/data_parallel.h"

namespace torch {
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}
}  // namespace torch

namespace endoked::engine {

struct TrainerOptions {
  std::int64_t epochs = 1;
  std::int64_t max_steps = 0;  // > 0: stop after this many optimizer steps (resume included)
  int accumulate = 1;          // batches per optimizer step
  std::int64_t checkpoint_every = 0;  // optimizer steps; 0: only at epoch ends and preemption
  bool resume = true;                 // continue from checkpoint.dir/latest when it exists
  int eval_every = 1;                 // epochs between evaluations (0: never)
  int log_every = 10;                 // optimizer steps between metrics lines
  double watchdog_s = 600;            // a rank missing the per-step collective this long: abort
  dist::CheckpointOptions checkpoint;
  LrScheduleOptions lr_schedule;
  dist::ReducerOptions ddp;

  template <class V>
  void visit(V& v) {
    v("epochs", epochs, "passes over the data");
    v("max_steps", max_steps, "> 0: stop after this many optimizer steps");
    v("accumulate", accumulate, "batches per optimizer step (gradient accumulation)");
    v("checkpoint_every", checkpoint_every,
      "optimizer steps between checkpoints (0: epoch ends and preemption only)");
    v("resume", resume, "continue from the latest checkpoint when there is one");
    v("eval_every", eval_every, "epochs between evaluations (0: never)");
    v("log_every", log_every, "optimizer steps between metrics.jsonl lines");
    v("watchdog_s", watchdog_s,
      "seconds a rank may miss the per-step collective before the job is aborted (0: off)");
    v("checkpoint", checkpoint);
    v("lr_schedule", lr_schedule);
    v("ddp", ddp);
  }
};

/// What the loss step returns for one batch: the loss to differentiate (a scalar, the mean
/// over the batch) and optional scalar metrics, averaged over ranks in the logs. Every rank
/// must return the same metric names.
struct StepOutput {
  at::Tensor loss;
  std::map<std::string, double> metrics;
};
using StepFn = std::function<StepOutput(const data::Batch& batch)>;

/// A source of batches for one epoch, starting at a global cursor. Same number of steps on
/// every rank.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual std::int64_t steps() const = 0;
  virtual bool next(data::Batch& batch) = 0;
  /// Global cursor after the batches returned so far.
  virtual std::int64_t cursor() const = 0;
};
using BatchSourceFactory =
    std::function<std::unique_ptr<BatchSource>(std::int64_t epoch, std::int64_t cursor)>;

/// Batches from data::Loader over `dataset` for rank `rank` of `world`.
BatchSourceFactory loader_source(std::shared_ptr<const data::Dataset> dataset,
                                 data::LoaderOptions options, int rank, int world);

/// Sums an evaluation collects on one rank: per metric a sum and a weight (e.g. the number of
/// images). The trainer adds them over ranks and reports sum / weight.
class MetricSums {
 public:
  void add(const std::string& name, double sum, double weight = 1.0);
  const std::map<std::string, std::pair<double, double>>& values() const { return values_; }

 private:
  std::map<std::string, std::pair<double, double>> values_;
};
using EvalFn = std::function<MetricSums(std::int64_t epoch)>;

/// Collective: the world's metrics as sum / weight; ranks may report different names.
std::map<std::string, double> reduce_metrics(dist::Communicator& comm, const MetricSums& mine);

struct FitResult {
  std::int64_t steps = 0;   // optimizer steps done (resume included)
  std::int64_t epochs = 0;  // epochs completed
  bool preempted = false;   // stopped by a signal after a checkpoint: exit with 75
  bool resumed = false;
  double last_loss = 0;                       // mean over ranks of the last step
  std::map<std::string, double> last_eval;    // the last evaluation's metrics
  double seconds = 0;
};

class Trainer {
 public:
  /// `run` receives metrics.jsonl lines (rank 0); `config_yaml` is kept in each checkpoint.
  Trainer(TrainerOptions options, dist::Communicator& comm, const RunDir& run,
          std::string config_yaml, std::string name = "train");

  /// Collective. Trains `model` (its registered parameters; all ranks the same architecture)
  /// until `epochs` or `max_steps`; see the file comment for everything it does.
  FitResult fit(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                const BatchSourceFactory& data, const StepFn& step, const EvalFn& eval = {});

 private:
  TrainerOptions options_;
  dist::Communicator& comm_;
  const RunDir& run_;
  std::string config_yaml_;
  std::string name_;
};

}  // namespace endoked::engine
