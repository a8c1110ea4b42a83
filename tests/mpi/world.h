#pragma once
#include "endoked/distributed/communicator.h"

namespace endoked::testing {
/// The world communicator of the MPI test process.
dist::Communicator& world();
}  // namespace endoked::testing
