#pragma once
// parallel_for over [0, n) with a fixed number of threads. Work items are claimed dynamically;
// the first exception thrown by any item is rethrown on the caller's thread after all threads
// stop (the remaining items are skipped).
#include <cstdint>
#include <functional>

namespace endoked {

void parallel_for(std::int64_t n, int threads, const std::function<void(std::int64_t)>& body);

}  // namespace endoked
