#pragma once
// The process runtime: created once in main and passed down. It decides the backend, knows
// rank/size/local rank (from MPI, or Open MPI / Slurm variables), configures the logger's rank,
// and finalises MPI on destruction.
#include <memory>
#include <string>

#include "endoked/distributed/communicator.h"

namespace endoked::dist {

struct RuntimeOptions {
  /// "auto": mpi when launched by mpirun/srun with more than one task, else local.
  std::string backend = "auto";
};

class Runtime {
 public:
  Runtime(int* argc, char*** argv, const RuntimeOptions& options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  int rank() const { return world_->rank(); }
  int size() const { return world_->size(); }
  /// Rank among the processes of this node (GPU selection, thread pinning).
  int local_rank() const { return local_rank_; }
  Communicator& world() { return *world_; }
  /// Logs `message` with the rank and ends the whole world (MPI_Abort when size > 1).
  [[noreturn]] void fail(const std::string& message, int code = 1);

 private:
  std::unique_ptr<Communicator> world_;
  int local_rank_ = 0;
};

/// The backend "auto" resolves to in this environment.
std::string detect_backend();

}  // namespace endoked::dist
