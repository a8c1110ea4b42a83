#pragma once
// Internal: constructors of the backends, used only by registry.cpp.
#include <memory>

#include "endoked/distributed/communicator.h"

namespace endoked::dist {
#ifdef ENDOKED_HAVE_MPI
/// Initialises MPI (thread level MULTIPLE requested) if needed; finalises in the destructor.
std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv);
int mpi_local_rank();
/// Throws Error naming both levels when MPI granted less than MPI_THREAD_MULTIPLE: the gradient
/// reducer's communication thread and the training thread both call MPI.
void check_mpi_thread_level(int provided);
#endif
}  // namespace endoked::dist
