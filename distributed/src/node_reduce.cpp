#include "node_reduce.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "half_kernels.h"

namespace endoked::dist {
namespace {

constexpr std::int64_t kHeader = 64;  // the flag, alone on its cache line
constexpr std::int64_t kBlock = 512;  // elements summed at a time (L1-resident)
constexpr std::int64_t kAlign = 64;   // slice boundaries, in bytes

std::uint64_t* flag_of(char* segment) {
  return reinterpret_cast<std::uint64_t*>(segment);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// dst = (src[0] + src[1] + … ) / div, element by element, in rank order; dst may be one of src.
template <typename T>
void sum_into(const std::vector<const T*>& src, T* dst, std::int64_t n, T div) {
  T acc[kBlock];
  for (std::int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const std::int64_t nb = std::min(kBlock, n - j0);
    const T* first = src[0] + j0;
    for (std::int64_t k = 0; k < nb; ++k) acc[k] = first[k];
    for (std::size_t q = 1; q < src.size(); ++q) {
      const T* s = src[q] + j0;
      for (std::int64_t k = 0; k < nb; ++k) acc[k] += s[k];
    }
    if (div != T(1))
      for (std::int64_t k = 0; k < nb; ++k) acc[k] /= div;
    std::copy(acc, acc + nb, dst + j0);
  }
}

// The same for 16-bit floats: summed in float32, rounded once (scale = 1 / div).
void sum_into_16(const std::vector<const std::uint16_t*>& src, std::uint16_t* dst, std::int64_t n,
                 float scale, at::ScalarType type) {
  float acc[kBlock], part[kBlock];
  for (std::int64_t j0 = 0; j0 < n; j0 += kBlock) {
    const std::int64_t nb = std::min(kBlock, n - j0);
    from_16bit(src[0] + j0, acc, nb, type);
    for (std::size_t q = 1; q < src.size(); ++q) {
      from_16bit(src[q] + j0, part, nb, type);
      for (std::int64_t k = 0; k < nb; ++k) acc[k] += part[k];
    }
    to_16bit(acc, dst + j0, nb, scale, type);
  }
}

MPI_Datatype mpi_float_type(at::ScalarType type) {
  return type == at::kDouble ? MPI_DOUBLE : MPI_FLOAT;
}

}  // namespace

NodeReducer::NodeReducer(MPI_Comm world, int node_ranks) : world_(world) {
  int rank = 0;
  MPI_Comm_rank(world, &rank);
  MPI_Comm_size(world, &world_size_);
  if (node_ranks > 0) {
    MPI_Comm_split(world, rank / node_ranks, rank, &node_);
  } else {
    MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node_);
  }
  MPI_Comm_set_errhandler(node_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(node_, &local_rank_);
  MPI_Comm_size(node_, &local_size_);
  int extremes[2] = {-local_size_, local_size_};  // every rank learns the smallest and largest node
  MPI_Allreduce(MPI_IN_PLACE, extremes, 2, MPI_INT, MPI_MAX, world);
  // Nodes with unequal rank counts, or one rank each: MPI alone.
  if (-extremes[0] != extremes[1] || local_size_ == 1) return;
  nodes_ = world_size_ / local_size_;
  MPI_Comm_split(world, local_rank_, rank, &cross_);
  MPI_Comm_set_errhandler(cross_, MPI_ERRORS_RETURN);
  MPI_Info info;
  MPI_Info_create(&info);
  MPI_Info_set(info, "alloc_shared_noncontig", "true");
  const bool made = allocate_shared(kHeader + 2 * kStageBytes, info, win_, segments_);
  MPI_Info_free(&info);
  if (!made) {
    if (rank == 0)
      log::warn(
          "all-reduce: no shared-memory window (is /dev/shm full or too small?); "
          "every all-reduce goes through MPI");
    return;
  }
  __atomic_store_n(flag_of(segments_[static_cast<std::size_t>(local_rank_)]), 0, __ATOMIC_RELEASE);
  MPI_Barrier(node_);
  usable_ = true;
}

NodeReducer::~NodeReducer() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (finalised) return;
  for (Pool& pool : pools_) MPI_Win_free(&pool.win);
  if (win_ != MPI_WIN_NULL) MPI_Win_free(&win_);
  if (cross_ != MPI_COMM_NULL) MPI_Comm_free(&cross_);
  if (node_ != MPI_COMM_NULL) MPI_Comm_free(&node_);
}

bool NodeReducer::allocate_shared(std::int64_t bytes, MPI_Info info, MPI_Win& win,
                                  std::vector<char*>& bases) {
  char* mine = nullptr;
  const int rc = MPI_Win_allocate_shared(static_cast<MPI_Aint>(bytes), 1, info, node_, &mine, &win);
  int ok = rc == MPI_SUCCESS ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, world_);
  if (!ok) {
    if (rc == MPI_SUCCESS) MPI_Win_free(&win);
    win = MPI_WIN_NULL;
    return false;
  }
  bases.clear();
  for (int q = 0; q < local_size_; ++q) {
    MPI_Aint size = 0;
    int unit = 0;
    void* base = nullptr;
    MPI_Win_shared_query(win, q, &size, &unit, &base);
    bases.push_back(static_cast<char*>(base));
  }
  return true;
}

bool NodeReducer::takes(const at::Tensor& t) const {
  return t.is_contiguous() && t.nbytes() >= kMinBytes && takes_type(t.scalar_type());
}

bool NodeReducer::takes_type(at::ScalarType type) const {
  if (!usable_) return false;
  switch (type) {
    case at::kFloat:
    case at::kDouble:
      return true;
    case at::kHalf:
    case at::kBFloat16:
      return nodes_ == 1;  // across nodes the 16-bit sums would need MPI's 16-bit operations
    default:
      return false;
  }
}

// Every rank of the node sets its flag to the next generation and waits for all the others':
// spinning, then yielding the core while a slower rank catches up.
void NodeReducer::barrier() {
  using Clock = std::chrono::steady_clock;
  ++generation_;
  __atomic_store_n(flag_of(segments_[static_cast<std::size_t>(local_rank_)]), generation_,
                   __ATOMIC_RELEASE);
  Clock::time_point since{};
  bool yielding = false;
  for (int q = 0; q < local_size_; ++q) {
    if (q == local_rank_) continue;
    const std::uint64_t* flag = flag_of(segments_[static_cast<std::size_t>(q)]);
    for (unsigned spins = 0; __atomic_load_n(flag, __ATOMIC_ACQUIRE) < generation_; ++spins) {
      if (yielding) {
        std::this_thread::yield();
        continue;
      }
      cpu_relax();
      if ((spins & 255) != 255) continue;
      const auto now = Clock::now();
      if (since == Clock::time_point{}) {
        since = now;
      } else if (now - since > spin_limit_) {
        yielding = true;
      }
    }
  }
}

// 2 and 3 of one piece: my slice summed over the node (and across nodes) over my own copy's
// slice; then every rank's reduced slice into `out` (mine too unless `in_place`, when `out` is my
// own copy).
void NodeReducer::reduce_piece(const std::vector<char*>& piece, std::int64_t m, at::ScalarType type,
                               bool average, bool in_place, char* out) {
  const std::int64_t esize = static_cast<std::int64_t>(c10::elementSize(type));
  const std::int64_t align = kAlign / esize;
  const std::int64_t per = (m + local_size_ - 1) / local_size_;
  const std::int64_t step = (per + align - 1) / align * align;
  const auto lo_of = [&](int q) { return std::min<std::int64_t>(m, q * step); };
  const auto n_of = [&](int q) { return std::min<std::int64_t>(m, lo_of(q) + step) - lo_of(q); };
  const std::int64_t lo = lo_of(local_rank_), n = n_of(local_rank_);
  if (n > 0) {
    const double div = average && nodes_ == 1 ? local_size_ : 1.0;
    char* mine = piece[static_cast<std::size_t>(local_rank_)] + lo * esize;
    if (type == at::kFloat || type == at::kDouble) {
      const auto run = [&](auto zero) {
        using T = decltype(zero);
        std::vector<const T*> src;
        for (char* p : piece) src.push_back(reinterpret_cast<const T*>(p + lo * esize));
        sum_into<T>(src, reinterpret_cast<T*>(mine), n, static_cast<T>(div));
      };
      if (type == at::kFloat) {
        run(0.0f);
      } else {
        run(0.0);
      }
    } else {
      std::vector<const std::uint16_t*> src;
      for (char* p : piece) src.push_back(reinterpret_cast<const std::uint16_t*>(p + lo * esize));
      sum_into_16(src, reinterpret_cast<std::uint16_t*>(mine), n, static_cast<float>(1.0 / div),
                  type);
    }
    if (nodes_ > 1) {
      const int rc = MPI_Allreduce(MPI_IN_PLACE, mine, static_cast<int>(n), mpi_float_type(type),
                                   MPI_SUM, cross_);
      ENDOKED_CHECK(rc == MPI_SUCCESS, "MPI Allreduce across nodes failed (code ", rc, ")");
      if (average) at::from_blob(mine, {n}, at::TensorOptions().dtype(type)).div_(world_size_);
    }
  }
  barrier();
  for (int q = 0; q < local_size_; ++q) {
    if (n_of(q) == 0 || (in_place && q == local_rank_)) continue;
    std::memcpy(out + lo_of(q) * esize, piece[static_cast<std::size_t>(q)] + lo_of(q) * esize,
                static_cast<std::size_t>(n_of(q) * esize));
  }
}

void NodeReducer::all_reduce(at::Tensor& t, bool average, bool patient) {
  spin_limit_ = patient ? std::chrono::microseconds(10000) : std::chrono::microseconds(50);
  const at::ScalarType type = t.scalar_type();
  const std::int64_t esize = static_cast<std::int64_t>(t.element_size());
  const std::int64_t piece = kStageBytes / esize;
  char* data = static_cast<char*>(t.data_ptr());
  const std::int64_t total = t.numel();
  std::vector<char*> at_rank(static_cast<std::size_t>(local_size_));
  // A buffer() tensor: every rank's copy read where it lies.
  for (const Pool& pool : pools_) {
    char* mine = pool.bases[static_cast<std::size_t>(local_rank_)];
    if (data < mine || data + t.nbytes() > mine + pool.bytes) continue;
    const std::ptrdiff_t offset = data - mine;
    barrier();  // every rank's values are in place
    for (std::int64_t at = 0; at < total; at += piece) {
      for (int q = 0; q < local_size_; ++q)
        at_rank[static_cast<std::size_t>(q)] =
            pool.bases[static_cast<std::size_t>(q)] + offset + at * esize;
      reduce_piece(at_rank, std::min(piece, total - at), type, average, true, data + at * esize);
    }
    barrier();  // nobody reads my copy any more
    return;
  }
  // Any other tensor: through the staging buffers, alternating.
  for (std::int64_t at = 0; at < total; at += piece) {
    const std::int64_t m = std::min(piece, total - at);
    for (int q = 0; q < local_size_; ++q)
      at_rank[static_cast<std::size_t>(q)] =
          segments_[static_cast<std::size_t>(q)] + kHeader + parity_ * kStageBytes;
    parity_ ^= 1;
    std::memcpy(at_rank[static_cast<std::size_t>(local_rank_)], data + at * esize,
                static_cast<std::size_t>(m * esize));
    barrier();
    reduce_piece(at_rank, m, type, average, false, data + at * esize);
  }
}

at::Tensor NodeReducer::buffer(std::int64_t numel, at::ScalarType type) {
  const std::int64_t need = numel * static_cast<std::int64_t>(c10::elementSize(type));
  if (!takes_type(type) || need < kMinBytes) return {};
  const std::int64_t bytes = (need + kAlign - 1) / kAlign * kAlign;
  // A pool no rank uses any more and large enough, else a new one.
  std::uint64_t free_everywhere = 0;
  for (std::size_t i = 0; i < pools_.size() && i < 64; ++i)
    if (pools_[i].bytes >= bytes && pools_[i].users->load() == 0) free_everywhere |= 1ull << i;
  MPI_Allreduce(MPI_IN_PLACE, &free_everywhere, 1, MPI_UINT64_T, MPI_BAND, world_);
  std::size_t chosen = pools_.size();
  for (std::size_t i = 0; i < pools_.size() && i < 64; ++i)
    if (free_everywhere >> i & 1) {
      chosen = i;
      break;
    }
  if (chosen == pools_.size()) {
    // Shared memory lives in a tmpfs (/dev/shm) that may be small (containers: 64 MiB): a
    // window larger than its free space would allocate, then fail with SIGBUS when touched.
    int room = 1;
    struct statvfs fs;
    if (statvfs("/dev/shm", &fs) == 0 &&
        static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize) <
            2.0 * static_cast<double>(bytes) * local_size_ + (64 << 20))
      room = 0;
    MPI_Allreduce(MPI_IN_PLACE, &room, 1, MPI_INT, MPI_MIN, world_);
    if (!room) return {};
    Pool pool;
    if (!allocate_shared(bytes, MPI_INFO_NULL, pool.win, pool.bases)) return {};
    pool.bytes = bytes;
    pool.users = std::make_shared<std::atomic<int>>(0);
    pools_.push_back(std::move(pool));
  }
  Pool& pool = pools_[chosen];
  char* mine = pool.bases[static_cast<std::size_t>(local_rank_)];
  std::memset(mine, 0, static_cast<std::size_t>(bytes));
  pool.users->fetch_add(1);
  auto users = pool.users;
  return at::from_blob(
      mine, {numel}, [users](void*) { users->fetch_sub(1); }, at::TensorOptions().dtype(type));
}

}  // namespace endoked::dist
