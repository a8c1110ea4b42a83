// The one file that knows which communicator backends were compiled in.
#include <algorithm>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "backends.h"
#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "endoked/distributed/runtime.h"

namespace endoked::dist {

std::vector<std::string> available_backends() {
  std::vector<std::string> names = {"local"};
#ifdef ENDOKED_HAVE_MPI
  names.push_back("mpi");
#endif
  return names;
}

namespace {
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// A task of an srun step (srun sets SLURM_STEP_NUM_TASKS for its tasks, not for the batch
// shell). Debian's Open MPI reaches Slurm only through PMIx: without `--mpi=pmix` MPI_Init fails
// with Open MPI's own text about PMI support, or each task forms a world of one.
#ifdef ENDOKED_HAVE_MPI
std::string srun_without_pmix(int tasks, bool pmi2) {
  return fmt::format(
      "launched by srun as {} tasks{}, but this Open MPI forms a world only through PMIx: run "
      "`srun --mpi=pmix …` (or export SLURM_MPI_TYPE=pmix, or set MpiDefault=pmix in slurm.conf); "
      "mpirun inside the allocation works too",
      tasks, pmi2 ? " with PMI-2" : "");
}
#endif

int srun_tasks() { return std::getenv("SLURM_PROCID") ? env_int("SLURM_STEP_NUM_TASKS", 0) : 0; }
}  // namespace

std::string detect_backend() {
  // Launched by mpirun (Open MPI), a PMI/PMIx launcher, or srun with several tasks.
  const int world = std::max({env_int("OMPI_COMM_WORLD_SIZE", 1), env_int("PMI_SIZE", 1),
                              env_int("PMIX_SIZE", 1), srun_tasks()});
  const bool launched =
      std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
#ifdef ENDOKED_HAVE_MPI
  if (launched || world > 1) return "mpi";
#else
  ENDOKED_CHECK(!(launched && world > 1), "launched as ", world,
                " ranks, but this build of endoked has no MPI backend");
#endif
  return "local";
}

Runtime::Runtime(int* argc, char*** argv, const RuntimeOptions& options) {
  const std::string backend = options.backend == "auto" ? detect_backend() : options.backend;
  if (backend == "local") {
    world_ = make_local_communicator();
    local_rank_ = 0;
#ifdef ENDOKED_HAVE_MPI
  } else if (backend == "mpi") {
    // Refuse before MPI_Init, whose own failure under srun is an abort with Open MPI's text.
    const int tasks = srun_tasks();
    const bool mpirun = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
    if (tasks > 1 && !mpirun && !std::getenv("PMIX_RANK"))
      ENDOKED_FAIL(srun_without_pmix(tasks, std::getenv("PMI_RANK") != nullptr));
    world_ = make_mpi_communicator(argc, argv);
    if (tasks > 1 && !mpirun && world_->size() != tasks)
      ENDOKED_FAIL(srun_without_pmix(tasks, false), " (this task's world has ", world_->size(),
                   " rank(s))");
    local_rank_ = env_int("OMPI_COMM_WORLD_LOCAL_RANK", env_int("SLURM_LOCALID", -1));
    if (local_rank_ < 0) local_rank_ = mpi_local_rank();
#endif
  } else {
    std::string known;
    for (const auto& b : available_backends()) known += " " + b;
    ENDOKED_FAIL("unknown or not compiled-in communicator backend '", backend,
                 "' (available:", known, ")");
  }
  log::configure(world_->rank(), world_->size(), log::Options{});
}

Runtime::~Runtime() = default;

void Runtime::fail(const std::string& message, int code) {
  log::error("{}", message);
  if (world_ && world_->size() > 1) {
    log::error("rank {} aborts the world of {} ranks", world_->rank(), world_->size());
    world_->abort(code);
  }
  std::exit(code);
}

}  // namespace endoked::dist
