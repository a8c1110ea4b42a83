#pragma once
// The communicator: the collectives endoked's stages use, behind one interface.
//
// Contract of every collective: all ranks of the communicator call it, in the same order, with
// compatible arguments (same `root`; for tensors the same dtype and shape, except the first
// dimension of all_gather). Tensor collectives verify this first by default
// (CollectiveOptions::verify): a mismatch is an Error on every rank naming both sides, not a
// hang. Tensors are CPU tensors of float32, float64, bfloat16, float16, int32 or int64.
//
// Backends (the registry in registry.cpp is the only place that knows which exist):
//   local — world size 1; every collective is the identity (always built).
//   mpi   — Open MPI over MPI_COMM_WORLD.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace endoked::dist {

enum class ReduceOp { kSum, kAvg, kMax, kMin };
const char* op_name(ReduceOp op);

/// How the communication thread waits for an async collective (ddp.progress):
///   blocking — the backend's blocking call (MPI_Allreduce), as Horovod's background thread does:
///              its tuned algorithms at full speed; it busy-polls a core while it waits;
///   polling  — first waits without spinning (an Ibarrier tested with growing sleeps) until every
///              rank has reached the collective, then the blocking call for the transfer alone:
///              a slower rank costs no core, at the price of latency on small collectives;
///   auto     — blocking when the process has at least one core per compute thread, polling when
///              its compute threads already oversubscribe its cores (more ranks than cores).
/// Measured on 2 cores × 2 ranks (benchmarks/results/allreduce.md): blocking matches the raw
/// MPI_Allreduce and keeps as much compute beside it as polling does, so auto picks it there.
enum class Progress { kAuto, kBlocking, kPolling };
const char* progress_name(Progress p);
/// "auto", "blocking" or "polling"; anything else is an Error naming the key.
Progress parse_progress(const std::string& name, const std::string& key = "ddp.progress");
/// kAuto resolved for this process: blocking when it has at least as many cores as torch's
/// intra-op threads, else polling. Its cores: its CPU affinity when bound; the node's cores
/// divided by `ranks_on_node` (rounded down) when unbound.
Progress resolve_progress(Progress p, int ranks_on_node);

/// Options of a tensor collective (c10d style).
struct CollectiveOptions {
  ReduceOp op =
      ReduceOp::kSum;    // all_reduce; kAvg divides the sum by the world size (floating dtypes)
  double timeout_s = 0;  // > 0: an Error when the collective has not completed in time
                         // (MPI cannot cancel it: the caller should abort the world)
  bool verify = true;    // agree on dtype and shape first (one small collective)
  Progress progress = Progress::kAuto;  // async collectives: how the communication thread waits
};

/// A collective in flight. wait() blocks until it completed and rethrows its error on the
/// caller's thread.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  /// True once the collective has completed; never blocks.
  virtual bool is_completed() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;

  virtual void barrier() = 0;
  /// `data` on `root` is sent; on the other ranks it is replaced by root's bytes.
  virtual void broadcast_bytes(std::string& data, int root) = 0;
  /// Every rank's bytes (sizes may differ), indexed by rank.
  virtual std::vector<std::string> all_gather_bytes(const std::string& mine) = 0;
  /// Element-wise reduction in place over `n` values.
  virtual void all_reduce(std::int64_t* values, std::size_t n, ReduceOp op) = 0;
  virtual void all_reduce(double* values, std::size_t n, ReduceOp op) = 0;
  /// In place over every rank's tensor.
  virtual void all_reduce(at::Tensor& tensor, const CollectiveOptions& options = {}) = 0;
  /// Starts an all_reduce and returns at once. Async collectives run in the order they were
  /// issued, on the backend's communication thread (all ranks, same order); the tensor belongs
  /// to the collective until wait() returns. A blocking collective first waits for them all.
  virtual std::shared_ptr<Work> all_reduce_async(at::Tensor tensor,
                                                 const CollectiveOptions& options = {}) = 0;
  /// Collective: a zeroed 1-d tensor of `numel` elements in the memory this backend all-reduces
  /// fastest (MPI: memory the ranks of a node share, reduced where it lies, without staging
  /// copies); every rank asks for the same sizes in the same order. Any tensor may be
  /// all-reduced; this one saves copies (the data-parallel buckets). Default: at::zeros.
  virtual at::Tensor reduce_buffer(std::int64_t numel, at::ScalarType type);
  /// `tensor` on `root` is copied into every other rank's tensor (same dtype and shape).
  virtual void broadcast(at::Tensor& tensor, int root, const CollectiveOptions& options = {}) = 0;
  /// Every rank's tensor, indexed by rank; first dimensions may differ, the rest must agree.
  virtual std::vector<at::Tensor> all_gather(const at::Tensor& tensor,
                                             const CollectiveOptions& options = {}) = 0;
  /// Ends every process of the world with `code`; used when one rank fails so none hangs.
  [[noreturn]] virtual void abort(int code) = 0;

  bool is_root() const { return rank() == 0; }
  std::int64_t sum(std::int64_t v) {
    all_reduce(&v, 1, ReduceOp::kSum);
    return v;
  }
};

/// Collective: runs `fn` on rank 0 only and gives its result to every rank; when it throws,
/// every rank throws an Error with its message (so no rank waits for a failed root).
std::string run_on_root(Communicator& comm, const std::function<std::string()>& fn);

/// The world-size-1 backend (always built): also what a rank uses to run a stage on its own.
std::unique_ptr<Communicator> make_local_communicator();

/// Names of the compiled-in backends, e.g. {"local", "mpi"}.
std::vector<std::string> available_backends();

}  // namespace endoked::dist
