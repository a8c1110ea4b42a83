#pragma once
// Checkpoints for exact resume. A checkpoint is a directory <dir>/step-000000000042/ holding the model
// (model.pt), the optimizer with its state (optimizer.pt), the LR scheduler (scheduler.json,
// when one is passed), every rank's LibTorch CPU RNG state
// (rng-rank<r>.pt), the training position (state.json: step, epoch, data cursor) and the
// resolved config. Rank 0 builds it under a temporary name, fsyncs, renames it into place, and
// only then points <dir>/latest at it (atomically); the last `keep_last` by step number are
// kept. Saving a step that already has a checkpoint exchanges the two directories in one rename
// (renameat2), so the one `latest` names is complete at every moment.
// Resume restores all of it, so N steps straight and N/2 + restart + N/2 give bitwise-identical
// parameters on CPU. On another world size, ranks without a saved RNG state keep their own; the
// data cursor is global, so the sample order continues (data/sampler.h).
#include <cstdint>
#include <string>

#include "endoked/distributed/communicator.h"

namespace torch {
namespace nn {
class Module;
}
namespace optim {
class Optimizer;
}
}  // namespace torch

namespace endoked {
class LrScheduler;
}

namespace endoked::dist {

struct TrainingState {
  std::int64_t step = 0;    // optimizer steps done
  std::int64_t epoch = 0;   // current epoch
  std::int64_t cursor = 0;  // global data cursor inside the epoch
  std::string config_yaml;  // the resolved config, kept beside the weights
};

struct CheckpointOptions {
  std::string dir = "checkpoints";
  int keep_last = 3;
  template <class V>
  void visit(V& v) {
    v("dir", dir, "checkpoint directory (step-NNNNNN/ and the latest pointer)");
    v("keep_last", keep_last, "checkpoints kept");
  }
};

class Checkpointer {
 public:
  Checkpointer(CheckpointOptions options, Communicator& comm);
  /// Collective (all ranks, same step). Returns the checkpoint's directory.
  std::string save(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                   const TrainingState& state, const LrScheduler* scheduler = nullptr);
  /// Collective. Restores the checkpoint `latest` points at; false when there is none.
  /// A scheduler passed here must have been saved with the checkpoint (an error otherwise).
  bool load_latest(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                   TrainingState& state, LrScheduler* scheduler = nullptr);

 private:
  CheckpointOptions options_;
  Communicator& comm_;
};

}  // namespace endoked::dist
