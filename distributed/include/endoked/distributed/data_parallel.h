#pragma once
// Data-parallel training (the PyTorch DDP Reducer design, Li et al., VLDB 2020).
//
// At construction every rank's parameters are compared (names, shapes, dtypes): a mismatch is an
// Error on every rank naming the first differing parameter; then parameters and buffers are
// broadcast from rank 0. Gradients are reduced in flat buckets filled in reverse registration
// order (the first bucket small so communication starts early, later ones up to a cap); a
// bucket's all_reduce (avg) is launched asynchronously as soon as its last gradient is
// accumulated (autograd post-hooks), in bucket order on every rank, so communication overlaps
// the rest of the backward pass. finish_backward() waits for all buckets. Gradients live in the
// buckets (PyTorch DDP's gradient_as_bucket_view): after the first step every parameter's .grad
// is a view into its bucket, autograd accumulates into it in place, and the averaged values are
// in place when the buckets complete — no copy in or out of the buckets. The buckets come from
// Communicator::reduce_buffer (MPI: memory the ranks of a node share, reduced where it lies).
// Parameters that get no gradient in a step count as zero; frozen parameters (requires_grad false)
// are left out. set_sync(false) keeps gradients local (accumulation).
//
// Gradient compression (ddp.compression fp16|bf16, Horovod's option): a bucket is divided by the
// world size in float32, cast to 16 bits for the all_reduce (a sum; MPI adds 16-bit values in
// float32 and rounds each partial sum), and cast back — half the bytes on the wire, gradients
// within the 16-bit type's rounding of the exact average.
#include <chrono>
#include <cstdint>
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
  std::string compression = "none";
  std::string progress = "auto";
  template <class V>
  void visit(V& v) {
    v("first_bucket_mb", first_bucket_mb, "size of the first gradient bucket (MiB)");
    v("bucket_cap_mb", bucket_cap_mb, "size cap of the other buckets (MiB)");
    v("compression", compression,
      "none | fp16 | bf16: buckets travel as 16-bit floats (half the bytes; averaging in float32)");
    v("progress", progress,
      "auto | blocking | polling: how the communication thread waits for a bucket's all_reduce "
      "(blocking: full MPI speed, spins a core while it waits; polling: sleeps until every rank "
      "has arrived, then the transfer; auto: blocking unless the rank's compute threads "
      "oversubscribe its cores)");
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

  /// What the last synced step sent: when each bucket's all_reduce was launched (in bucket
  /// order) and the bytes each rank put into all_reduces (after compression).
  struct StepRecord {
    std::vector<std::chrono::steady_clock::time_point> launched;
    std::int64_t wire_bytes = 0;
  };
  StepRecord last_step() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace endoked::dist
