#pragma once
// Preemption: SIGUSR1 (Slurm's --signal) or SIGTERM on any rank makes every rank stop at the
// same step. The handler only sets a flag; should_stop() all-reduces the flags (max), so all
// ranks agree on the step, checkpoint, and exit with kRequeueExitCode, on which the Slurm
// scripts requeue the job.
#include "endoked/distributed/communicator.h"

namespace endoked::dist {

/// EX_TEMPFAIL: "try again later" — the job was preempted and checkpointed.
inline constexpr int kRequeueExitCode = 75;

class Preemption {
 public:
  /// Installs the SIGUSR1 and SIGTERM handlers. Objects nest (a command's, a trainer's inside
  /// it): the outermost installs and restores the handlers, all share one flag.
  Preemption();
  /// Restores the previous handlers.
  ~Preemption();
  Preemption(const Preemption&) = delete;
  Preemption& operator=(const Preemption&) = delete;

  /// This process received a signal.
  bool requested_locally() const;
  /// Collective (all ranks, same step): true everywhere when any rank received a signal.
  bool should_stop(Communicator& comm);
  /// The signal number received here (0 if none).
  int signal() const;
};

}  // namespace endoked::dist
