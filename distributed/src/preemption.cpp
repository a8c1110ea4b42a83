#include "endoked/distributed/preemption.h"

#include <csignal>

#include "endoked/core/error.h"
#include "endoked/core/log.h"

namespace endoked::dist {
namespace {
volatile std::sig_atomic_t g_signal = 0;  // the one process-wide flag a handler may touch
int g_depth = 0;  // nested Preemption objects (the command's, a trainer's inside it)
struct sigaction g_old_usr1, g_old_term;

extern "C" void on_signal(int sig) {
  g_signal = sig;
}
}  // namespace

Preemption::Preemption() {
  if (g_depth++ > 0) return;  // the outer one installed the handlers and keeps the flag
  struct sigaction sa {};
  sa.sa_handler = &on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ENDOKED_CHECK(
      sigaction(SIGUSR1, &sa, &g_old_usr1) == 0 && sigaction(SIGTERM, &sa, &g_old_term) == 0,
      "cannot install the preemption signal handlers");
  g_signal = 0;
}

Preemption::~Preemption() {
  if (--g_depth > 0) return;
  sigaction(SIGUSR1, &g_old_usr1, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool Preemption::requested_locally() const {
  return g_signal != 0;
}
int Preemption::signal() const {
  return g_signal;
}

bool Preemption::should_stop(Communicator& comm) {
  std::int64_t flag = g_signal != 0 ? 1 : 0;
  comm.all_reduce(&flag, 1, ReduceOp::kMax);
  if (flag && g_signal != 0)
    log::warn("preemption: signal {} received; stopping at this step", static_cast<int>(g_signal));
  return flag != 0;
}

}  // namespace endoked::dist
