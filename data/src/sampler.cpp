#include "endoked/data/sampler.h"

#include <algorithm>
#include <numeric>

#include "endoked/core/error.h"
#include "endoked/core/seed.h"

namespace endoked::data {

Tail parse_tail(const std::string& name) {
  if (name == "drop") return Tail::kDrop;
  if (name == "partial") return Tail::kPartial;
  if (name == "pad") return Tail::kPad;
  ENDOKED_FAIL("unknown tail rule '", name, "' (drop, partial, pad)");
}

std::vector<std::int64_t> epoch_permutation(std::int64_t n, std::uint64_t seed,
                                            std::int64_t epoch) {
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), 0);
  Rng r(seed, "sampler.epoch", static_cast<std::uint64_t>(epoch));
  for (std::int64_t i = n - 1; i > 0; --i)
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(r.randint(0, i))]);
  return p;
}

EpochPlan::EpochPlan(std::int64_t n, std::uint64_t seed, std::int64_t epoch, int batch_size,
                     int rank, int world, Tail tail, std::int64_t cursor)
    : n_(n), batch_(batch_size), rank_(rank), world_(world), tail_(tail), start_(cursor) {
  ENDOKED_CHECK(batch_size > 0 && world > 0 && rank >= 0 && rank < world,
                "bad sampler shape: batch ", batch_size, ", rank ", rank, " of ", world);
  ENDOKED_CHECK(cursor >= 0 && cursor <= n, "cursor ", cursor, " outside [0, ", n, "]");
  perm_ = epoch_permutation(n, seed, epoch);
  const std::int64_t g = static_cast<std::int64_t>(batch_) * world_;
  const std::int64_t left = n - cursor;
  full_steps_ = left / g;
  steps_ = full_steps_ + ((left % g) != 0 && tail_ != Tail::kDrop ? 1 : 0);
}

std::vector<std::int64_t> EpochPlan::batch(std::int64_t step) const {
  ENDOKED_CHECK(step >= 0 && step < steps_, "step ", step, " outside [0, ", steps_, ")");
  const std::int64_t g = static_cast<std::int64_t>(batch_) * world_;
  const std::int64_t base = start_ + step * g;
  std::vector<std::int64_t> out;
  if (step < full_steps_) {
    const auto first = perm_.begin() + base + static_cast<std::int64_t>(rank_) * batch_;
    out.assign(first, first + batch_);
  } else {
    const std::int64_t left = n_ - base;  // 0 < left < g
    if (tail_ == Tail::kPartial) {
      const std::int64_t each = left / world_, extra = left % world_;
      const std::int64_t begin = rank_ * each + std::min<std::int64_t>(rank_, extra);
      const std::int64_t count = each + (rank_ < extra ? 1 : 0);
      out.assign(perm_.begin() + base + begin, perm_.begin() + base + begin + count);
    } else {  // pad: the remainder, then wrap around to the start of the permutation
      for (std::int64_t k = 0; k < batch_; ++k) {
        const std::int64_t pos = static_cast<std::int64_t>(rank_) * batch_ + k;
        out.push_back(pos < left ? perm_[static_cast<std::size_t>(base + pos)]
                                 : perm_[static_cast<std::size_t>((pos - left) % n_)]);
      }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::int64_t EpochPlan::cursor_after(std::int64_t steps_done) const {
  const std::int64_t g = static_cast<std::int64_t>(batch_) * world_;
  return std::min(n_, start_ + steps_done * g);
}

}  // namespace endoked::data
