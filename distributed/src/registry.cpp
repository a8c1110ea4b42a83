// The one file that knows which communicator backends were compiled in.
#include <algorithm>
#include <cstdlib>
#include <string>

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
}  // namespace

std::string detect_backend() {
  // Launched by mpirun (Open MPI), a PMI/PMIx launcher, or srun with several tasks.
  const int world = std::max({env_int("OMPI_COMM_WORLD_SIZE", 1), env_int("PMI_SIZE", 1),
                              env_int("PMIX_SIZE", 1), env_int("SLURM_NTASKS", 1)});
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
    world_ = make_mpi_communicator(argc, argv);
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
