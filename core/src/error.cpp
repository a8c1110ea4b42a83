#include "endoked/core/error.h"

namespace endoked::detail {

int& error_rank() {
  static int rank = -1;
  return rank;
}

void throw_error(const char* file, int line, const std::string& message) {
  // `file` is relative to the source tree (-fmacro-prefix-map in CMakeLists.txt).
  std::ostringstream os;
  if (error_rank() >= 0) os << "[rank " << error_rank() << "] ";
  os << file << ":" << line << ": " << message;
  throw Error(os.str(), message);
}

}  // namespace endoked::detail
