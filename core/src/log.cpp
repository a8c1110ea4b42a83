#include "endoked/core/log.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "endoked/core/error.h"

namespace endoked::log {
namespace {
struct State {
  int rank = 0;
  int world = 1;
  Options options;
  std::mutex mutex;
};
State& state() {
  static State s;
  return s;
}
}  // namespace

void configure(int rank, int world, const Options& options) {
  State& s = state();
  s.rank = rank;
  s.world = world;
  s.options = options;
  detail::error_rank() = world > 1 ? rank : -1;
}

int rank() {
  return state().rank;
}
int world() {
  return state().world;
}

Level parse_level(const std::string& name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  ENDOKED_FAIL("unknown log level '", name, "' (debug, info, warn, error)");
}

void write(Level level, const std::string& message) {
  State& s = state();
  if (level < s.options.level) return;
  if (level < Level::kWarn && s.rank != 0 && !s.options.all_ranks) return;
  using clock = std::chrono::system_clock;
  const auto now = clock::now();
  const std::time_t t = clock::to_time_t(now);
  const int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  static const char kTag[] = {'D', 'I', 'W', 'E'};
  std::lock_guard<std::mutex> lock(s.mutex);
  std::fprintf(stderr, "%02d:%02d:%02d.%03d r%d %c %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec, ms,
               s.rank, kTag[static_cast<int>(level)], message.c_str());
  std::fflush(stderr);
}

}  // namespace endoked::log
