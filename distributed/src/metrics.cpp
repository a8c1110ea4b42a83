#include "endoked/distributed/metrics.h"

#include <ATen/ATen.h>

#include "endoked/core/error.h"

namespace endoked::dist {

double reduce_sum(Communicator& comm, double value) {
  comm.all_reduce(&value, 1, ReduceOp::kSum);
  return value;
}

std::int64_t reduce_count(Communicator& comm, std::int64_t count) {
  comm.all_reduce(&count, 1, ReduceOp::kSum);
  return count;
}

at::Tensor reduce_confusion(Communicator& comm, const at::Tensor& confusion) {
  ENDOKED_CHECK(confusion.dim() == 2 && confusion.size(0) == confusion.size(1),
                "reduce_confusion expects a square [K, K] matrix");
  at::Tensor out = confusion.to(at::kLong).contiguous().clone();
  comm.all_reduce(out);
  return out;
}

at::Tensor gather_scores(Communicator& comm, const at::Tensor& scores) {
  ENDOKED_CHECK(scores.dim() == 1, "gather_scores expects a 1-D tensor");
  return at::cat(comm.all_gather(scores.contiguous()));
}

}  // namespace endoked::dist
