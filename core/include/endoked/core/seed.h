#pragma once
// Deterministic randomness. Every random decision derives from (seed, purpose, index), so a
// result never depends on thread timing, worker count or world size: exam 17 of a synthetic
// corpus is the same whether rank 0 or rank 2 draws it.
//
// The generator and its distributions are our own (SplitMix64 seeding, xoshiro256**, Box–Muller)
// so that streams are identical across standard libraries.
#include <cstdint>
#include <string_view>
#include <vector>

namespace endoked {

/// 64-bit FNV-1a of a purpose string.
std::uint64_t hash_purpose(std::string_view purpose);
/// Mixes (seed, purpose, index) into one 64-bit seed (SplitMix64 finaliser).
std::uint64_t derive_seed(std::uint64_t seed, std::string_view purpose, std::uint64_t index);

/// xoshiro256** (Blackman & Vigna 2018). Not thread-safe: one generator per task.
class Rng {
 public:
  explicit Rng(std::uint64_t seed);
  Rng(std::uint64_t seed, std::string_view purpose, std::uint64_t index)
      : Rng(derive_seed(seed, purpose, index)) {}

  std::uint64_t next();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform integer in [lo, hi] (inclusive), unbiased.
  std::int64_t randint(std::int64_t lo, std::int64_t hi);
  double normal(double mean = 0.0, double stddev = 1.0);
  bool bernoulli(double p) { return uniform() < p; }
  /// Index drawn with probability proportional to weights (weights need not sum to 1).
  std::size_t categorical(const std::vector<double>& weights);
  /// A fork: an independent stream for a sub-task, derived from this one's next value.
  Rng fork(std::string_view purpose, std::uint64_t index) {
    return Rng(derive_seed(next(), purpose, index));
  }

 private:
  std::uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace endoked
