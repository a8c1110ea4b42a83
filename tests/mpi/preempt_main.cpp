// Preemption under mpirun: rank `who` raises `signal` at step `at`; every rank must stop at the
// same step and exit with kRequeueExitCode (tests/mpi/preempt_test.sh checks it).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "endoked/distributed/preemption.h"
#include "endoked/distributed/runtime.h"

int main(int argc, char** argv) {
  endoked::dist::Runtime rt(&argc, &argv);
  const int who = argc > 1 ? std::atoi(argv[1]) : 1;
  const int at = argc > 2 ? std::atoi(argv[2]) : 3;
  const int sig = argc > 3 && std::strcmp(argv[3], "TERM") == 0 ? SIGTERM : SIGUSR1;
  endoked::dist::Preemption preemption;
  for (int step = 0; step < 1000; ++step) {
    if (rt.rank() == who && step == at) std::raise(sig);
    if (preemption.should_stop(rt.world())) {
      std::printf("rank %d stops at step %d\n", rt.rank(), step);
      std::fflush(stdout);
      return endoked::dist::kRequeueExitCode;
    }
  }
  std::printf("rank %d was never stopped\n", rt.rank());
  return 0;
}
