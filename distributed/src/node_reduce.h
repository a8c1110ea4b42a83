#pragma once
// Internal: the all_reduce of floating-point sums and averages through memory the ranks of a node
// share (the intra-node half of NCCL's and Horovod's hierarchical all-reduce), used by the MPI
// backend for tensors of kMinBytes and more.
//
// Each rank owns a segment of an MPI shared-memory window: two staging buffers of kStageBytes
// (alternating from one piece to the next) and a flag. A tensor goes through in pieces of
// kStageBytes, each in three phases separated by flag barriers: (1) every rank copies its piece
// into its staging buffer; (2) rank r sums slice r of the piece over the node's buffers, in rank
// order, divides (avg) and writes the result over its own slice; (3) every rank copies every
// rank's reduced slice back into its tensor. With several nodes, phase 2's slice is summed across
// nodes by MPI_Allreduce among the ranks of the same node-local rank before phase 3. A piece stays
// in the last-level cache from phase 1 to phase 3, so a rank reads and writes its tensor once and
// does 1/p of the additions, with the division fused in. Tensors made by buffer() (the
// data-parallel buckets) already lie in shared memory: no phase 1, and phase 3 leaves a rank's
// own slice where it was summed. Every rank reads the same sums, so results are identical across
// ranks; 16-bit tensors are summed in float32 and rounded once.
//
// Environment (the same on every rank): ENDOKED_NODE_REDUCE=0 leaves every all-reduce to MPI;
// ENDOKED_NODE_RANKS=n takes n consecutive ranks as one node (to exercise the multi-node path on
// one machine). buffer() falls back to ordinary memory (staged reductions) when /dev/shm has not
// room for twice the node's share.
#include <mpi.h>

#include <ATen/ATen.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace endoked::dist {

class NodeReducer {
 public:
  static constexpr std::int64_t kStageBytes = std::int64_t(1) << 20;
  static constexpr std::int64_t kMinBytes = std::int64_t(32) << 10;

  /// Collective over `world`. Usable only when every node holds the same number (> 1) of ranks
  /// and the shared window could be made; `node_ranks` > 0 groups consecutive world ranks into
  /// "nodes" of that size instead of asking MPI which share memory (tests of the multi-node path).
  NodeReducer(MPI_Comm world, int node_ranks);
  ~NodeReducer();
  NodeReducer(const NodeReducer&) = delete;
  NodeReducer& operator=(const NodeReducer&) = delete;

  /// Whether this reducer takes the sum or average of `t` (contiguous; float, double, float16 or
  /// bfloat16; at least kMinBytes).
  bool takes(const at::Tensor& t) const;
  /// Collective over the world: t = sum (or sum / world size) over ranks, in place. A rank that
  /// waits for another spins (`patient`: as MPI's blocking calls do, yielding only after
  /// ~10 ms) or, not patient, yields its core after ~50 µs (the polling progress policy).
  void all_reduce(at::Tensor& t, bool average, bool patient = true);
  /// Collective over the world: a zeroed 1-d tensor in memory the node's ranks share. An
  /// all_reduce of one such tensor (the same buffer, asked for in the same order on every rank)
  /// reads the other ranks' values where they lie: no staging copy in, none of one's own slice
  /// out. Undefined when this reducer does not take the type or size. The memory returns to a
  /// pool, for a later buffer, once every rank has dropped every tensor on it.
  at::Tensor buffer(std::int64_t numel, at::ScalarType type);

 private:
  struct Pool {
    MPI_Win win = MPI_WIN_NULL;
    std::vector<char*> bases;  // every local rank's part
    std::int64_t bytes = 0;
    std::shared_ptr<std::atomic<int>> users;  // live tensors on my part
  };
  bool takes_type(at::ScalarType type) const;
  // Collective: a shared window of `bytes` per local rank, every local rank's part in `bases`;
  // false (on every rank) when some rank could not make it.
  bool allocate_shared(std::int64_t bytes, MPI_Info info, MPI_Win& win, std::vector<char*>& bases);
  void barrier();
  // One piece: `piece[q]` is local rank q's copy, `m` elements of `type`.
  void reduce_piece(const std::vector<char*>& piece, std::int64_t m, at::ScalarType type,
                    bool average, bool in_place, char* out);

  bool usable_ = false;
  MPI_Comm world_ = MPI_COMM_NULL, node_ = MPI_COMM_NULL, cross_ = MPI_COMM_NULL;
  MPI_Win win_ = MPI_WIN_NULL;
  int local_rank_ = 0, local_size_ = 1, nodes_ = 1, world_size_ = 1;
  std::vector<char*> segments_;  // every local rank's segment: flag line, then two buffers
  std::vector<Pool> pools_;      // shared memory handed out by buffer()
  std::uint64_t generation_ = 0;
  int parity_ = 0;
  std::chrono::microseconds spin_limit_{10000};  // spinning before a waiting rank yields
};

}  // namespace endoked::dist
