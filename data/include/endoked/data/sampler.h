#pragma once
// Which samples a rank reads, in which order — from plain (rank, world) integers, so this file
// knows nothing of MPI.
//
// An epoch is one global permutation P of [0, n) drawn from (seed, epoch). It is consumed in
// global steps of G = batch_size × world samples: in step s, rank r takes
// P[c + s·G + r·B, c + s·G + (r+1)·B) (c: the cursor the epoch started from) and reads them in
// ascending index order (HDF5 locality; the order inside a batch does not matter to SGD).
//
// The cursor is the number of samples of P consumed by completed global steps. It does not
// depend on the world size, so an epoch interrupted on 4 ranks resumes exactly on 3.
//
// The tail (fewer than G samples left) follows `tail`:
//   drop    — the last partial step is skipped (its samples are not seen this epoch);
//   partial — the remainder is split as evenly as possible (batch sizes differ by ≤ 1; a rank
//             may get an empty batch when fewer samples than ranks remain): the union over ranks
//             is exactly P, with no duplicates;
//   pad     — every rank gets a full batch, the remainder padded with P[0], P[1], … (those
//             samples are seen twice).
#include <cstdint>
#include <string>
#include <vector>

namespace endoked::data {

enum class Tail { kDrop, kPartial, kPad };
Tail parse_tail(const std::string& name);  // "drop" | "partial" | "pad"

class EpochPlan {
 public:
  EpochPlan(std::int64_t n, std::uint64_t seed, std::int64_t epoch, int batch_size, int rank,
            int world, Tail tail, std::int64_t cursor = 0);
  /// The global permutation of this epoch.
  const std::vector<std::int64_t>& permutation() const { return perm_; }
  /// Number of steps every rank takes from the cursor on (the same on all ranks).
  std::int64_t steps() const { return steps_; }
  /// This rank's batch at step `step` (0-based from the cursor), sorted ascending.
  std::vector<std::int64_t> batch(std::int64_t step) const;
  /// Cursor after `steps_done` steps (from the starting cursor).
  std::int64_t cursor_after(std::int64_t steps_done) const;

 private:
  std::int64_t n_;
  int batch_, rank_, world_;
  Tail tail_;
  std::int64_t start_;
  std::int64_t full_steps_;
  std::int64_t steps_;
  std::vector<std::int64_t> perm_;
};

/// Fisher–Yates permutation of [0, n) from (seed, epoch), identical on every rank.
std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed, std::int64_t epoch);

}  // namespace endoked::data
