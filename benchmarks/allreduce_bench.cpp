// all_reduce bus bandwidth against message size, under mpirun:
//   endoked_bench_allreduce   → one JSON line per (mode, bytes) on rank 0
// modes: raw MPI_Allreduce on floats; endoked Communicator::all_reduce (verify off);
// endoked fused buckets (the same bytes as 8 tensors through DataParallel-style async buckets).
// Bus bandwidth = 2 (p − 1) / p × bytes / time (the NCCL-tests convention).
#include <malloc.h>
#include <mpi.h>

#include <ATen/ATen.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "endoked/distributed/runtime.h"

using clock_type = std::chrono::steady_clock;

namespace {
// Per-call time: a short calibration decides one iteration count for every rank, then a timed
// loop with no other communication inside (the same method as allreduce_gloo.py).
template <typename F>
double time_per_call(F&& f, endoked::dist::Communicator& comm, double budget_s) {
  f();  // warm-up
  comm.barrier();
  auto t0 = clock_type::now();
  for (int i = 0; i < 3; ++i) f();
  double est = std::chrono::duration<double>(clock_type::now() - t0).count() / 3;
  comm.all_reduce(&est, 1, endoked::dist::ReduceOp::kMax);
  const int iters = std::max(3, std::min(1000, static_cast<int>(budget_s / est)));
  comm.barrier();
  t0 = clock_type::now();
  for (int i = 0; i < iters; ++i) f();
  double elapsed = std::chrono::duration<double>(clock_type::now() - t0).count();
  comm.all_reduce(&elapsed, 1, endoked::dist::ReduceOp::kMax);
  return elapsed / iters;
}
}  // namespace

int main(int argc, char** argv) {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  endoked::dist::Runtime rt(&argc, &argv);
  auto& comm = rt.world();
  const int p = comm.size();
  const double budget = argc > 1 ? std::atof(argv[1]) : 0.5;
  for (std::int64_t bytes = 4 << 10; bytes <= (256 << 20); bytes *= 4) {
    const std::int64_t n = bytes / 4;
    at::Tensor t = at::ones({n}, at::kFloat);
    endoked::dist::CollectiveOptions o;
    o.verify = false;
    const double raw = time_per_call(
        [&] {
          MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(n), MPI_FLOAT, MPI_SUM,
                        MPI_COMM_WORLD);
        },
        comm, budget);
    const double ours = time_per_call([&] { comm.all_reduce(t, o); }, comm, budget);
    std::vector<at::Tensor> parts = at::ones({n}, at::kFloat).chunk(8);
    const double fused = time_per_call(
        [&] {
          std::vector<std::shared_ptr<endoked::dist::Work>> works;
          for (auto& part : parts) works.push_back(comm.all_reduce_async(part, o));
          for (auto& w : works) w->wait();
        },
        comm, budget);
    if (comm.rank() == 0) {
      const double factor = 2.0 * (p - 1) / p * static_cast<double>(bytes) / 1e9;
      for (auto [mode, s] : {std::pair<const char*, double>{"raw_mpi_allreduce", raw},
                             {"endoked_all_reduce", ours},
                             {"endoked_async_buckets_x8", fused}}) {
        std::printf("%s\n", nlohmann::json{{"mode", mode},
                                           {"ranks", p},
                                           {"bytes", bytes},
                                           {"seconds", s},
                                           {"bus_gb_per_s", factor / s}}
                                .dump()
                                .c_str());
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
