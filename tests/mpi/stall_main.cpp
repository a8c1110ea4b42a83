// A world with one stalled rank: rank 1 sleeps past the collective's timeout. Expected: the
// job exits non-zero, rank 0 names rank 1, within twice the timeout (tests/mpi/stall_test.sh).
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "endoked/distributed/runtime.h"

int main(int argc, char** argv) {
  endoked::dist::Runtime rt(&argc, &argv);
  const double timeout = argc > 1 ? std::atof(argv[1]) : 1.0;
  const int stalled = argc > 2 ? std::atoi(argv[2]) : 1;
  const auto start = std::chrono::steady_clock::now();
  try {
    if (rt.rank() == stalled)
      std::this_thread::sleep_for(std::chrono::duration<double>(6 * timeout));
    at::Tensor t = at::ones({8});
    endoked::dist::CollectiveOptions o;
    o.timeout_s = timeout;
    rt.world().all_reduce(t, o);
    std::printf("rank %d: all_reduce completed\n", rt.rank());
    return 0;
  } catch (const std::exception& e) {
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rt.fail(std::string(e.what()) + " (after " + std::to_string(s) + " s)");
  }
}
