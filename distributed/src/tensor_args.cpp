#include "tensor_args.h"

#include "endoked/core/error.h"

namespace endoked::dist {

void check_collective_tensor(const at::Tensor& t, const char* what, ReduceOp op) {
  ENDOKED_CHECK(t.defined() && t.device().is_cpu(), what, ": needs a defined CPU tensor");
  const auto k = t.scalar_type();
  ENDOKED_CHECK(k == at::kFloat || k == at::kDouble || k == at::kBFloat16 || k == at::kHalf ||
                    k == at::kInt || k == at::kLong,
                what, ": dtype ", t.dtype().name(), " is not supported");
  ENDOKED_CHECK(op != ReduceOp::kAvg || at::isFloatingType(k), what,
                ": avg needs a floating dtype, got ", t.dtype().name());
}

std::string describe(const at::Tensor& t, bool skip_first_dim) {
  std::string s = std::string(t.dtype().name()) + "[";
  for (std::int64_t d = skip_first_dim ? 1 : 0; d < t.dim(); ++d)
    s += (d > (skip_first_dim ? 1 : 0) ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

}  // namespace endoked::dist
