// gtest main for tests run under mpirun: every rank runs every test; rank 0 prints the usual
// report, other ranks print only their failures; the exit code is the same on all ranks.
#include <gtest/gtest.h>

#include <cstdio>

#include "endoked/distributed/runtime.h"
#include "world.h"

namespace endoked::testing {
dist::Runtime* g_runtime = nullptr;
dist::Communicator& world() {
  return g_runtime->world();
}
}  // namespace endoked::testing

namespace {
class RankFailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed())
      std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_, r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
  }

 private:
  int rank_;
};
}  // namespace

int main(int argc, char** argv) {
  endoked::dist::Runtime runtime(&argc, &argv);
  endoked::testing::g_runtime = &runtime;
  ::testing::InitGoogleTest(&argc, argv);
  if (runtime.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new RankFailurePrinter(runtime.rank()));
  }
  std::int64_t failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  runtime.world().all_reduce(&failed, 1, endoked::dist::ReduceOp::kMax);
  if (runtime.rank() == 0)
    std::printf("MPI tests on %d ranks: %s\n", runtime.size(), failed ? "FAILED" : "passed");
  return failed ? 1 : 0;
}
