#pragma once
// Rank-aware logger. Lines look like "12:00:01.123 r0 I message". Thread-safe (one mutex).
// By default only rank 0 prints info/debug; warnings and errors print on every rank.
#include <fmt/format.h>

#include <string>

namespace endoked::log {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

struct Options {
  Level level = Level::kInfo;
  bool all_ranks = false;  // info/debug on every rank, not only rank 0
};

/// Called once by the runtime at start-up (before any other thread logs).
void configure(int rank, int world, const Options& options);
int rank();
int world();
void write(Level level, const std::string& message);
Level parse_level(const std::string& name);  // "debug" | "info" | "warn" | "error"

template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kDebug, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kInfo, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kWarn, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
  write(Level::kError, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace endoked::log
