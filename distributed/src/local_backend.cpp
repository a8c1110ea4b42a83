#include <cstdlib>

#include "backends.h"
#include "endoked/core/error.h"
#include "tensor_args.h"

namespace endoked::dist {
namespace {
class LocalCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "local"; }
  void barrier() override {}
  void broadcast_bytes(std::string&, int) override {}
  std::vector<std::string> all_gather_bytes(const std::string& mine) override { return {mine}; }
  void all_reduce(std::int64_t*, std::size_t, ReduceOp) override {}
  void all_reduce(double*, std::size_t, ReduceOp) override {}
  void all_reduce(at::Tensor& t, const CollectiveOptions& o) override {
    check_collective_tensor(t, "all_reduce", o.op);  // avg over one rank: the tensor itself
  }
  std::shared_ptr<Work> all_reduce_async(at::Tensor t, const CollectiveOptions& o) override {
    check_collective_tensor(t, "all_reduce", o.op);
    struct Done final : Work {
      void wait() override {}
      bool is_completed() override { return true; }
    };
    return std::make_shared<Done>();
  }
  void broadcast(at::Tensor& t, int root, const CollectiveOptions&) override {
    ENDOKED_CHECK_EQ(root, 0, "broadcast root outside a world of 1");
    check_collective_tensor(t, "broadcast");
  }
  std::vector<at::Tensor> all_gather(const at::Tensor& t, const CollectiveOptions&) override {
    check_collective_tensor(t, "all_gather");
    return {t.clone()};
  }
  [[noreturn]] void abort(int code) override { std::exit(code); }
};
}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}
}  // namespace endoked::dist
