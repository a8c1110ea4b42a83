#include "endoked/core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "endoked/core/log.h"

namespace endoked {

std::string human_count(double v) {
  if (v >= 1e9) return fmt::format("{:.2f} G", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f} M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f} k", v / 1e3);
  if (v >= 100) return fmt::format("{:.0f}", v);
  return fmt::format("{:.3g}", v);
}

std::string human_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  if (s < 60) return fmt::format("{:.1f}s", s);
  const long t = std::lround(s);
  if (t < 3600) return fmt::format("{}m{:02d}s", t / 60, static_cast<int>(t % 60));
  return fmt::format("{}h{:02d}m", t / 3600, static_cast<int>((t % 3600) / 60));
}

Progress::Progress(std::string label, std::int64_t total, std::string unit, double interval_s)
    : label_(std::move(label)),
      total_(total),
      unit_(std::move(unit)),
      interval_s_(interval_s),
      enabled_(log::rank() == 0),
      tty_(isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

Progress::~Progress() {
  try {
    finish();
  } catch (...) {
  }
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::rate() const {
  const double e = elapsed_s();
  return e > 0 ? static_cast<double>(count_.load()) / e : 0.0;
}

void Progress::add(std::int64_t n) {
  const std::int64_t before = count_.fetch_add(n);
  if (!enabled_) return;
  // Cheap path for hot loops: look at the clock only every 64 items.
  if (n == 1 && (before & 63) != 63) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (since < (tty_ ? 0.25 : interval_s_)) return;
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;
  last_print_ = now;
  print(false);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (enabled_) print(true);
}

void Progress::print(bool final_line) {
  const double e = elapsed_s();
  const double c = static_cast<double>(count_.load());
  const double r = e > 0 ? c / e : 0.0;
  std::string line;
  if (final_line) {
    line = fmt::format("{}: {} {} in {} ({} {}/s)", label_, human_count(c), unit_,
                       human_duration(e), human_count(r), unit_);
  } else if (total_ > 0) {
    const double eta = r > 0 ? (static_cast<double>(total_) - c) / r : NAN;
    line = fmt::format("{}: {}/{} {} ({:.1f}%) {} {}/s, ETA {}", label_, human_count(c),
                       human_count(static_cast<double>(total_)), unit_,
                       100.0 * c / static_cast<double>(total_), human_count(r), unit_,
                       human_duration(eta));
  } else {
    line = fmt::format("{}: {} {} {} {}/s", label_, human_count(c), unit_, human_duration(e),
                       human_count(r));
  }
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
    std::fflush(stderr);
  } else {
    log::info("{}", line);
  }
}

}  // namespace endoked
