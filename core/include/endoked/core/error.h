#pragma once
// The one exception type of endoked and the check macros that raise it.
// A message carries the rank (set once by the runtime), file:line, the failed condition and,
// for comparisons, both values — e.g. "[rank 1] data/src/store.cpp:88: check failed:
// rows == expected (12 vs 13): shard-00003.h5 /images/offset".
#include <sstream>
#include <stdexcept>
#include <string>

namespace endoked {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what), reason_(what) {}
  Error(const std::string& what, std::string reason)
      : std::runtime_error(what), reason_(std::move(reason)) {}
  /// The message without rank and source location (for reject lists and user-facing summaries).
  const std::string& reason() const { return reason_; }

 private:
  std::string reason_;
};

namespace detail {
// The rank printed in messages; -1 until the runtime knows it. Written once at start-up.
int& error_rank();
[[noreturn]] void throw_error(const char* file, int line, const std::string& message);

template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace endoked

/// Throws endoked::Error with rank and file:line when `cond` is false; the rest is the message.
#define ENDOKED_CHECK(cond, ...)                                                  \
  do {                                                                            \
    if (!(cond))                                                                  \
      ::endoked::detail::throw_error(                                             \
          __FILE__, __LINE__,                                                     \
          ::endoked::detail::concat("check failed: " #cond ": ", ##__VA_ARGS__)); \
  } while (0)

#define ENDOKED_CHECK_OP_(op, a, b, ...)                                                         \
  do {                                                                                           \
    const auto& endoked_a_ = (a);                                                                \
    const auto& endoked_b_ = (b);                                                                \
    if (!(endoked_a_ op endoked_b_))                                                             \
      ::endoked::detail::throw_error(                                                            \
          __FILE__, __LINE__,                                                                    \
          ::endoked::detail::concat("check failed: " #a " " #op " " #b " (", endoked_a_, " vs ", \
                                    endoked_b_, "): ", ##__VA_ARGS__));                          \
  } while (0)

#define ENDOKED_CHECK_EQ(a, b, ...) ENDOKED_CHECK_OP_(==, a, b, ##__VA_ARGS__)
#define ENDOKED_CHECK_NE(a, b, ...) ENDOKED_CHECK_OP_(!=, a, b, ##__VA_ARGS__)
#define ENDOKED_CHECK_LT(a, b, ...) ENDOKED_CHECK_OP_(<, a, b, ##__VA_ARGS__)
#define ENDOKED_CHECK_LE(a, b, ...) ENDOKED_CHECK_OP_(<=, a, b, ##__VA_ARGS__)
#define ENDOKED_CHECK_GT(a, b, ...) ENDOKED_CHECK_OP_(>, a, b, ##__VA_ARGS__)
#define ENDOKED_CHECK_GE(a, b, ...) ENDOKED_CHECK_OP_(>=, a, b, ##__VA_ARGS__)

/// Unconditional failure with a message.
#define ENDOKED_FAIL(...) \
  ::endoked::detail::throw_error(__FILE__, __LINE__, ::endoked::detail::concat(__VA_ARGS__))
