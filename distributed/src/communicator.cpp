// Free functions of communicator.h shared by every backend.
#include "endoked/distributed/communicator.h"

#include "endoked/core/error.h"

namespace endoked::dist {

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

std::string run_on_root(Communicator& comm, const std::function<std::string()>& fn) {
  std::string payload;
  std::string status(1, '\1');
  if (comm.is_root()) {
    try {
      payload = fn();
    } catch (const std::exception& e) {
      payload = e.what();
      status[0] = '\0';
    }
  }
  comm.broadcast_bytes(status, 0);
  comm.broadcast_bytes(payload, 0);
  if (status[0] == '\0') ENDOKED_FAIL(payload);
  return payload;
}

}  // namespace endoked::dist
