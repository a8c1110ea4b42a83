#pragma once
// Progress of a long step, shown on rank 0 only: count/total, rate and ETA.
// On a terminal the line redraws in place; otherwise (batch logs) one line every `interval_s`.
// `add` is thread-safe and cheap (an atomic add; single-item adds read the clock every 64th).
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace endoked {

class Progress {
 public:
  /// `total` may be 0 when unknown (no ETA then). `unit` names what is counted ("images").
  Progress(std::string label, std::int64_t total, std::string unit, double interval_s = 5.0);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void add(std::int64_t n = 1);
  /// Prints the final line (count, elapsed, mean rate). Called by the destructor if not before.
  void finish();
  std::int64_t count() const { return count_.load(); }
  double elapsed_s() const;
  /// Mean rate so far, per second.
  double rate() const;

 private:
  void print(bool final_line);

  std::string label_;
  std::int64_t total_;
  std::string unit_;
  double interval_s_;
  bool enabled_;
  bool tty_;
  bool finished_ = false;
  std::atomic<std::int64_t> count_{0};
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_print_;
  std::mutex mutex_;
};

/// "1.2 k", "3.4 M" — for rates and counts in human-facing lines.
std::string human_count(double value);
/// "1h02m", "3m05s", "12.3s".
std::string human_duration(double seconds);

}  // namespace endoked
