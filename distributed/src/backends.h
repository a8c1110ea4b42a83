#pragma once
// Internal: constructors of the backends, used only by registry.cpp.
#include <memory>

#include "endoked/distributed/communicator.h"

namespace endoked::dist {
#ifdef ENDOKED_HAVE_MPI
/// Initialises MPI (thread level MULTIPLE requested) if needed; finalises in the destructor.
std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv);
int mpi_local_rank();
#endif
}  // namespace endoked::dist
