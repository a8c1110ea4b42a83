#pragma once
// Data-parallel training (the PyTorch DDP Reducer design, Li et al., VLDB 2020).
//
// At construction every rank's parameters are compared (names, shapes, dtypes): a mismatch is an
// Error on every rank naming the first differing parameter; then parameters and buffers are
// broadcast from rank 0. Gradients are reduced in flat buckets filled in reverse registration
// order (the first bucket small so communication starts early, later ones up to a cap); a
// bucket's all_reduce (avg) is launched asynchronously as soon as its last gradient is
// accumulated (autograd post-hooks), in bucket order on every rank, so communication overlaps
// the rest of the backward pass. finish_backward() waits for all buckets and writes the averaged
// gradients back. Parameters that get no gradient in a step count as zero; frozen parameters
// (requires_grad false) are left out. set_sync(false) keeps gradients local (accumulation).
#include <memory>
#include <string>
#include <vector>

#include "endoked/distributed/communicator.h"

namespace torch::nn {
class Module;
}

namespace endoked::dist {

struct ReducerOptions {
  double first_bucket_mb = 1.0;
  double bucket_cap_mb = 25.0;
  bool average_buffers = true;
  template <class V>
  void visit(V& v) {
    v("first_bucket_mb", first_bucket_mb, "size of the first gradient bucket (MiB)");
    v("bucket_cap_mb", bucket_cap_mb, "size cap of the other buckets (MiB)");
    v("average_buffers", average_buffers,
      "average floating-point buffers (batch-norm running statistics) over ranks after every "
      "optimizer step, so every rank evaluates and checkpoints the same model");
  }
};

class DataParallel {
 public:
  /// Collective: all ranks construct it with the same model.
  DataParallel(torch::nn::Module& module, Communicator& comm, const ReducerOptions& options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  /// While false, backward passes only accumulate local gradients (no communication).
  void set_sync(bool sync);
  bool sync() const;
  /// Collective, after loss.backward() on every synced step: waits for the buckets and leaves
  /// the world-average gradient in every parameter's .grad.
  void finish_backward();
  /// Collective: every floating-point buffer (batch-norm running mean and variance) becomes the
  /// world average, so ranks that normalised different batches evaluate the same model.
  void average_buffers();
  /// Parameter names per bucket, in launch order (for tests and logs).
  std::vector<std::vector<std::string>> buckets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace endoked::dist
