#include <cstdlib>

#include "backends.h"

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
  [[noreturn]] void abort(int code) override { std::exit(code); }
};
}  // namespace

std::unique_ptr<Communicator> make_local_communicator() {
  return std::make_unique<LocalCommunicator>();
}
}  // namespace endoked::dist
