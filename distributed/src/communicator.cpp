// Free functions of communicator.h shared by every backend.
#include "endoked/distributed/communicator.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>

#include "endoked/core/error.h"

namespace endoked::dist {

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

at::Tensor Communicator::reduce_buffer(std::int64_t numel, at::ScalarType type) {
  return at::zeros({numel}, at::TensorOptions().dtype(type));
}

const char* progress_name(Progress p) {
  switch (p) {
    case Progress::kAuto:
      return "auto";
    case Progress::kBlocking:
      return "blocking";
    case Progress::kPolling:
      return "polling";
  }
  return "?";
}

Progress parse_progress(const std::string& name, const std::string& key) {
  for (Progress p : {Progress::kAuto, Progress::kBlocking, Progress::kPolling})
    if (name == progress_name(p)) return p;
  ENDOKED_FAIL(key, ": '", name, "' is not a progress policy (auto, blocking, polling)");
}

Progress resolve_progress(Progress p, int ranks_on_node) {
  if (p != Progress::kAuto) return p;
  cpu_set_t set;
  CPU_ZERO(&set);
  const long online = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  long mine = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : online;
  // Unbound ranks (mpirun --bind-to none) share the node's cores; bound ones own their set.
  if (mine >= online) mine = online / std::max(1, ranks_on_node);
  return mine >= at::get_num_threads() ? Progress::kBlocking : Progress::kPolling;
}

std::string run_on_root(Communicator& comm, const std::function<std::string()>& fn) {
  std::string payload;
  std::string status(1, '\1');
  if (comm.is_root()) {
    try {
      payload = fn();
    } catch (const std::exception& e) {
      payload = e.what();
      status[0] = '\0';
    }
  }
  comm.broadcast_bytes(status, 0);
  comm.broadcast_bytes(payload, 0);
  if (status[0] == '\0') ENDOKED_FAIL(payload);
  return payload;
}

}  // namespace endoked::dist
