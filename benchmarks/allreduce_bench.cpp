// all_reduce bus bandwidth and latency against message size, under mpirun:
//   endoked_bench_allreduce [SECONDS_PER_MEASUREMENT] [ROUNDS]
// → one JSON line per (mode, bytes) on rank 0: the median over ROUNDS interleaved rounds.
// Modes, each on one float tensor of `bytes`:
//   raw_mpi_allreduce         MPI_Allreduce on the calling thread (the reference)
//   endoked_all_reduce        Communicator::all_reduce (blocking, verify off)
//   async_blocking            all_reduce_async + wait, progress policy blocking
//   async_polling             all_reduce_async + wait, progress policy polling
// and the raw and async modes again with `_loaded`: a compute thread beside them on every rank
// (128×128 matrix products, one intra-op thread), as the backward pass runs beside the
// reducer's buckets. Loaded lines also carry `compute_kept`: the compute thread's rate during
// the measurement over its rate alone.
// Bus bandwidth = 2 (p − 1) / p × bytes / time (the NCCL-tests convention).
#include <malloc.h>
#include <mpi.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "endoked/distributed/runtime.h"

using clock_type = std::chrono::steady_clock;
namespace dist = endoked::dist;

namespace {
double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Per-call time: a short calibration decides one iteration count for every rank, then a timed
// loop with no other communication inside (the same method as allreduce_gloo.py).
template <typename F>
double time_per_call(F&& f, dist::Communicator& comm, double budget_s) {
  f();  // warm-up
  comm.barrier();
  auto t0 = clock_type::now();
  for (int i = 0; i < 3; ++i) f();
  double est = seconds_since(t0) / 3;
  comm.all_reduce(&est, 1, dist::ReduceOp::kMax);
  const int iters = std::max(3, std::min(200000, static_cast<int>(budget_s / est)));
  comm.barrier();
  t0 = clock_type::now();
  for (int i = 0; i < iters; ++i) f();
  double elapsed = seconds_since(t0);
  comm.all_reduce(&elapsed, 1, dist::ReduceOp::kMax);
  return elapsed / iters;
}

// A thread of matrix products, counting them while it runs.
class ComputeBeside {
 public:
  ComputeBeside() {
    thread_ = std::thread([this] {
      const at::Tensor a = at::randn({128, 128}), b = at::randn({128, 128});
      at::Tensor c = at::empty({128, 128});
      while (!stop_.load(std::memory_order_relaxed)) {
        at::mm_out(c, a, b);
        done_.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  ~ComputeBeside() {
    stop_ = true;
    thread_.join();
  }
  std::int64_t done() const { return done_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> done_{0};
  std::thread thread_;
};

// Products per second of the compute thread alone on this rank.
double compute_rate_alone(double seconds) {
  ComputeBeside c;
  std::this_thread::sleep_for(std::chrono::duration<double>(0.1));
  const std::int64_t n0 = c.done();
  const auto t0 = clock_type::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return static_cast<double>(c.done() - n0) / seconds_since(t0);
}
}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  dist::Runtime rt(&argc, &argv);
  auto& comm = rt.world();
  const int p = comm.size();
  const double budget = argc > 1 ? std::atof(argv[1]) : 0.2;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
  at::set_num_threads(1);
  double alone = compute_rate_alone(1.0);
  comm.all_reduce(&alone, 1, dist::ReduceOp::kMin);

  for (std::int64_t bytes = 4 << 10; bytes <= (256 << 20); bytes *= 4) {
    const std::int64_t n = bytes / 4;
    at::Tensor t = at::ones({n}, at::kFloat);
    auto raw = [&] {
      MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(n), MPI_FLOAT, MPI_SUM,
                    MPI_COMM_WORLD);
    };
    dist::CollectiveOptions blocking, polling;
    blocking.verify = polling.verify = false;
    blocking.progress = dist::Progress::kBlocking;
    polling.progress = dist::Progress::kPolling;
    auto ours = [&] { comm.all_reduce(t, blocking); };
    auto async_blocking = [&] { comm.all_reduce_async(t, blocking)->wait(); };
    auto async_polling = [&] { comm.all_reduce_async(t, polling)->wait(); };

    // Interleaved rounds, the median of each mode (one machine's timers are noisy).
    std::map<std::string, std::vector<std::pair<double, double>>> runs;  // seconds, kept
    auto loaded = [&](const std::string& mode, const std::function<void()>& f) {
      ComputeBeside c;
      while (c.done() < 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      const std::int64_t n0 = c.done();
      const auto t0 = clock_type::now();
      const double s = time_per_call(f, comm, budget);
      double kept = static_cast<double>(c.done() - n0) / seconds_since(t0) / alone;
      comm.all_reduce(&kept, 1, dist::ReduceOp::kMin);
      runs[mode + "_loaded"].emplace_back(s, kept);
    };
    for (int round = 0; round < rounds; ++round) {
      runs["raw_mpi_allreduce"].emplace_back(time_per_call(raw, comm, budget), -1);
      runs["endoked_all_reduce"].emplace_back(time_per_call(ours, comm, budget), -1);
      runs["async_blocking"].emplace_back(time_per_call(async_blocking, comm, budget), -1);
      runs["async_polling"].emplace_back(time_per_call(async_polling, comm, budget), -1);
      loaded("raw_mpi_allreduce", raw);
      loaded("async_blocking", async_blocking);
      loaded("async_polling", async_polling);
    }
    std::vector<std::tuple<std::string, double, double>> rows;  // mode, seconds, compute kept
    for (auto& [mode, v] : runs) {
      std::sort(v.begin(), v.end());
      rows.emplace_back(mode, v[v.size() / 2].first, v[v.size() / 2].second);
    }
    if (comm.rank() == 0) {
      const double factor = 2.0 * (p - 1) / p * static_cast<double>(bytes) / 1e9;
      for (const auto& [mode, s, kept] : rows) {
        nlohmann::json j{{"mode", mode},
                         {"ranks", p},
                         {"bytes", bytes},
                         {"seconds", s},
                         {"bus_gb_per_s", factor / s}};
        if (kept >= 0) j["compute_kept"] = kept;
        std::printf("%s\n", j.dump().c_str());
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
