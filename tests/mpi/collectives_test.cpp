// Tensor collectives of the MPI backend against a reference computed locally, at 2 and 3 ranks:
// every dtype × op × shape, broadcast from every root, variable-size all_gather, and mismatched
// arguments turned into errors on every rank.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "endoked/core/error.h"
#include "world.h"

namespace endoked {
namespace {

using testing::world;

const std::vector<at::ScalarType> kTypes = {at::kFloat, at::kDouble, at::kBFloat16,
                                            at::kHalf,  at::kInt,    at::kLong};
const std::vector<std::vector<std::int64_t>> kShapes = {{17}, {17, 17}, {17, 17, 17}, {0}};

// Small integers and halves: exact in every dtype (bf16 has 8 significant bits), so sums of a
// few ranks compare exactly.
at::Tensor values(int rank, at::IntArrayRef shape, at::ScalarType type) {
  at::Tensor i = at::arange(at::IntArrayRef(shape).size() ? c10::multiply_integers(shape) : 0,
                            at::TensorOptions().dtype(at::kDouble))
                     .reshape(shape);
  at::Tensor v = (i.remainder(13) - 6 + 3 * rank);
  if (at::isFloatingType(type)) v = v * 0.5;
  return v.to(type);
}

TEST(Collectives, AllReduceEveryDtypeOpAndShape) {
  auto& c = world();
  for (auto type : kTypes)
    for (const auto& shape : kShapes)
      for (auto op : {dist::ReduceOp::kSum, dist::ReduceOp::kAvg, dist::ReduceOp::kMax,
                      dist::ReduceOp::kMin}) {
        if (op == dist::ReduceOp::kAvg && !at::isFloatingType(type)) continue;
        at::Tensor mine = values(c.rank(), shape, type);
        at::Tensor ref = values(0, shape, type).to(at::kDouble);
        for (int r = 1; r < c.size(); ++r) {
          const at::Tensor other = values(r, shape, type).to(at::kDouble);
          if (op == dist::ReduceOp::kSum || op == dist::ReduceOp::kAvg) ref = ref + other;
          if (op == dist::ReduceOp::kMax) ref = at::maximum(ref, other);
          if (op == dist::ReduceOp::kMin) ref = at::minimum(ref, other);
        }
        if (op == dist::ReduceOp::kAvg) ref = ref / c.size();
        dist::CollectiveOptions o;
        o.op = op;
        c.all_reduce(mine, o);
        ASSERT_EQ(mine.scalar_type(), type);
        ASSERT_EQ(mine.sizes(), at::IntArrayRef(shape));
        // avg in 16-bit floats rounds (e.g. 0.5 * 7 / 3); everything else is exact
        const double tol =
            op == dist::ReduceOp::kAvg && (type == at::kBFloat16 || type == at::kHalf) ? 0.05 : 0.0;
        EXPECT_TRUE(at::allclose(mine.to(at::kDouble), ref, 0.0, tol))
            << at::toString(type) << " " << dist::op_name(op) << " shape rank " << shape.size();
      }
}

// Large floating-point sums and averages (the shared-memory path of the MPI backend, or MPI's
// own with ENDOKED_NODE_REDUCE=0; several nodes with ENDOKED_NODE_RANKS): random values over
// several staging pieces with a ragged end, against the rank-order sum computed locally, and
// bit-for-bit the same tensor on every rank.
TEST(Collectives, LargeFloatReductionsMatchTheLocalSumOnEveryRank) {
  auto& c = world();
  for (auto type : {at::kFloat, at::kDouble, at::kBFloat16, at::kHalf})
    for (std::int64_t n : {std::int64_t(9001), std::int64_t(700001)})
      for (auto op : {dist::ReduceOp::kSum, dist::ReduceOp::kAvg}) {
        SCOPED_TRACE(std::string(at::toString(type)) + " " + dist::op_name(op) + " " +
                     std::to_string(n));
        const auto of_rank = [&](int r) {
          at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1000 + r);
          return at::randn({n}, g, at::TensorOptions().dtype(at::kDouble)).to(type);
        };
        at::Tensor mine = of_rank(c.rank());
        at::Tensor ref = at::zeros({n}, at::kDouble);
        for (int r = 0; r < c.size(); ++r) ref += of_rank(r).to(at::kDouble);
        if (op == dist::ReduceOp::kAvg) ref /= c.size();
        dist::CollectiveOptions o;
        o.op = op;
        c.all_reduce(mine, o);
        // float32: a few roundings of values of order 1; 16 bits: the sum rounded once or, with
        // MPI's own path, once per partial sum (bf16 keeps 8 significant bits).
        const double tol = type == at::kDouble  ? 1e-12
                           : type == at::kFloat ? 1e-5
                           : type == at::kHalf  ? 1e-2
                                                : 8e-2;
        const double err = (mine.to(at::kDouble) - ref).abs().max().item<double>();
        EXPECT_LT(err, tol);
        EXPECT_GT(mine.to(at::kDouble).abs().sum().item<double>(), 0.1 * n);  // not zeroed
        // Every rank holds rank 0's tensor, bit for bit.
        at::Tensor first = mine.clone();
        dist::CollectiveOptions b;
        c.broadcast(first, 0, b);
        EXPECT_TRUE(at::equal(first, mine)) << "rank " << c.rank() << " differs from rank 0";
      }
}

// reduce_buffer(): zeroed memory that all-reduces like any tensor (blocking and async, in place
// where the ranks of a node share it); its memory goes back to the pool only once every rank has
// dropped it — a rank that keeps its tensor keeps its values.
TEST(Collectives, ReduceBuffersReduceAndReturnToThePool) {
  auto& c = world();
  const std::int64_t n = 300001;
  const auto of_rank = [&](int r, int salt) {
    at::Generator g = at::make_generator<at::CPUGeneratorImpl>(77 + r + 10 * salt);
    return at::randn({n}, g, at::TensorOptions().dtype(at::kDouble));
  };
  const auto average = [&](int salt) {
    at::Tensor ref = at::zeros({n}, at::kDouble);
    for (int r = 0; r < c.size(); ++r) ref += of_rank(r, salt);
    return ref / c.size();
  };
  at::Tensor a = c.reduce_buffer(n, at::kFloat);
  ASSERT_EQ(a.numel(), n);
  ASSERT_EQ(a.scalar_type(), at::kFloat);
  EXPECT_EQ(a.abs().max().item<float>(), 0.0f);
  const void* first = a.data_ptr();
  for (int salt = 0; salt < 3; ++salt) {
    a.copy_(of_rank(c.rank(), salt));
    dist::CollectiveOptions o;
    o.op = dist::ReduceOp::kAvg;
    if (salt == 1) {
      c.all_reduce_async(a, o)->wait();
    } else {
      c.all_reduce(a, o);
    }
    EXPECT_LT((a.to(at::kDouble) - average(salt)).abs().max().item<double>(), 1e-5) << salt;
  }
  // Rank 0 keeps its tensor: the next buffer is elsewhere, and rank 0's values stay.
  const at::Tensor kept = a.clone();
  if (c.rank() != 0) a = at::Tensor();
  at::Tensor b = c.reduce_buffer(n, at::kFloat);
  b.copy_(of_rank(c.rank(), 5));
  dist::CollectiveOptions o;
  o.op = dist::ReduceOp::kAvg;
  c.all_reduce(b, o);
  EXPECT_LT((b.to(at::kDouble) - average(5)).abs().max().item<double>(), 1e-5);
  if (c.rank() == 0) {
    EXPECT_TRUE(at::equal(a, kept)) << "a buffer still held was handed out again";
  }
  // Dropped everywhere: a buffer of the same size or smaller reuses the memory (zeroed).
  a = at::Tensor();
  b = at::Tensor();
  // (Heap memory just freed would go to `taken`, so a reduce buffer at `first` is pool memory.)
  const at::Tensor taken = at::ones({n}, at::kFloat);
  at::Tensor again = c.reduce_buffer(n - 7, at::kFloat);
  EXPECT_EQ(again.abs().max().item<float>(), 0.0f);
  const char* plain = std::getenv("ENDOKED_NODE_REDUCE");
  if (c.size() > 1 && !(plain && std::string(plain) == "0")) {
    EXPECT_EQ(again.data_ptr(), first) << "dropped shared memory not reused";
  }
}

TEST(Collectives, AvgOfIntegersIsRefused) {
  at::Tensor t = at::ones({4}, at::kInt);
  dist::CollectiveOptions o;
  o.op = dist::ReduceOp::kAvg;
  EXPECT_THROW(world().all_reduce(t, o), Error);
}

TEST(Collectives, BroadcastFromEveryRoot) {
  auto& c = world();
  for (auto type : kTypes)
    for (int root = 0; root < c.size(); ++root) {
      at::Tensor t = values(c.rank(), {17, 17}, type);
      c.broadcast(t, root);
      EXPECT_TRUE(at::equal(t, values(root, {17, 17}, type)))
          << at::toString(type) << " root " << root;
    }
  at::Tensor strided = values(c.rank(), {6, 8}, at::kFloat).t();  // not contiguous
  c.broadcast(strided, 0);
  EXPECT_TRUE(at::equal(strided, values(0, {6, 8}, at::kFloat).t()));
}

TEST(Collectives, AllGatherWithVariableFirstDimension) {
  auto& c = world();
  for (auto type : kTypes) {
    const at::Tensor mine = values(c.rank(), {c.rank() + 1, 17}, type);
    const auto all = c.all_gather(mine);
    ASSERT_EQ(static_cast<int>(all.size()), c.size());
    for (int r = 0; r < c.size(); ++r)
      EXPECT_TRUE(at::equal(all[static_cast<std::size_t>(r)], values(r, {r + 1, 17}, type))) << r;
  }
  // a rank with nothing to contribute
  const auto some = c.all_gather(values(c.rank(), {c.rank() == 0 ? 0 : 2, 3}, at::kLong));
  EXPECT_EQ(some[0].size(0), 0);
  EXPECT_EQ(some.back().size(0), 2);
}

TEST(Collectives, MismatchedArgumentsAreErrorsNotHangs) {
  auto& c = world();
  at::Tensor t = at::zeros({17 + (c.rank() == 1 ? 1 : 0)}, at::kFloat);
  try {
    c.all_reduce(t);
    FAIL() << "mismatched shapes were reduced";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("rank 1 has float[18]"), std::string::npos) << m;
  }
  at::Tensor d = c.rank() == 0 ? at::zeros({4}, at::kDouble) : at::zeros({4}, at::kFloat);
  EXPECT_THROW(c.broadcast(d, 0), Error);
  at::Tensor g = at::zeros({2, 3 + (c.rank() == c.size() - 1 ? 1 : 0)}, at::kLong);
  EXPECT_THROW(c.all_gather(g), Error);
  // the world is still usable afterwards
  at::Tensor ok = at::ones({3}, at::kLong);
  c.all_reduce(ok);
  EXPECT_EQ(ok[0].item<std::int64_t>(), c.size());
}

TEST(Collectives, TimeoutOnACollectiveEveryRankReaches) {
  // With every rank present the timeout never fires.
  at::Tensor t = at::ones({1000}, at::kFloat);
  dist::CollectiveOptions o;
  o.timeout_s = 30;
  world().all_reduce(t, o);
  EXPECT_EQ(t[0].item<float>(), static_cast<float>(world().size()));
}

// Async all_reduces run in the order they were issued, each on its own tensor: many of
// different sizes (small ones finish fast, large ones slowly) waited for in reverse order each
// hold exactly their own sum; a blocking collective issued after them first completes them all;
// a rank that issues them with a delay changes nothing.
TEST(Collectives, AsyncAllReducesKeepTheirOrderAndTheirTensors) {
  auto& c = world();
  const int n = c.size();
  for (int round = 0; round < 3; ++round) {
    std::vector<at::Tensor> tensors;
    std::vector<std::shared_ptr<dist::Work>> work;
    for (int k = 0; k < 12; ++k) {
      const std::int64_t size = (k % 3 == 0) ? 300000 : 7 + k;
      tensors.push_back(at::full({size}, static_cast<double>(k * 100 + c.rank()), at::kDouble));
      if (c.rank() == 1 && k == 5) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      dist::CollectiveOptions o;
      o.verify = false;
      work.push_back(c.all_reduce_async(tensors.back(), o));
    }
    // Waiting on the last one first must not deadlock nor mix tensors.
    for (int k = 11; k >= 0; --k) work[static_cast<std::size_t>(k)]->wait();
    for (int k = 0; k < 12; ++k) {
      const double expect = k * 100.0 * n + n * (n - 1) / 2.0;
      EXPECT_EQ(tensors[static_cast<std::size_t>(k)].min().item<double>(), expect) << k;
      EXPECT_EQ(tensors[static_cast<std::size_t>(k)].max().item<double>(), expect) << k;
    }
    // Issued then a blocking all_reduce: the blocking one waits for the async ones before it.
    at::Tensor a = at::full({200000}, 1.0, at::kFloat);
    auto w = c.all_reduce_async(a);
    at::Tensor b = at::full({3}, 2.0, at::kFloat);
    c.all_reduce(b);
    EXPECT_EQ(a.min().item<float>(), static_cast<float>(n)) << "blocking ran before the async one";
    EXPECT_EQ(b[0].item<float>(), 2.0f * n);
    w->wait();
  }
}

// Under load (a compute thread beside on every rank), with either progress policy: async
// all_reduces of mixed sizes complete in the order they were issued — polled without blocking,
// no later one is ever seen complete before an earlier one — and each holds its own sum.
TEST(Collectives, AsyncResultsArriveInIssueOrderUnderLoad) {
  auto& c = world();
  const int n = c.size();
  std::atomic<bool> stop{false};
  std::thread compute([&] {
    const at::Tensor a = at::randn({96, 96});
    at::Tensor out = at::empty({96, 96});
    while (!stop) at::mm_out(out, a, a);
  });
  for (dist::Progress policy : {dist::Progress::kBlocking, dist::Progress::kPolling}) {
    SCOPED_TRACE(dist::progress_name(policy));
    constexpr int kCount = 24;
    std::vector<at::Tensor> tensors;
    std::vector<std::shared_ptr<dist::Work>> work;
    for (int k = 0; k < kCount; ++k) {
      const std::int64_t size = (k % 4 == 0) ? 500000 : 3 + k;
      tensors.push_back(at::full({size}, static_cast<float>(k + c.rank()), at::kFloat));
      dist::CollectiveOptions o;
      o.verify = false;
      o.progress = policy;
      work.push_back(c.all_reduce_async(tensors.back(), o));
    }
    int completed = 0;  // work[0, completed) seen complete, in order
    while (completed < kCount) {
      // One pass reads every flag from the newest to the oldest: a newer one complete while an
      // older one is not would be an out-of-order completion.
      std::vector<bool> seen(kCount);
      for (int k = kCount - 1; k >= completed; --k)
        seen[static_cast<std::size_t>(k)] = work[static_cast<std::size_t>(k)]->is_completed();
      for (int k = completed + 1; k < kCount; ++k)
        if (seen[static_cast<std::size_t>(k)]) {
          ASSERT_TRUE(seen[static_cast<std::size_t>(k - 1)])
              << "all_reduce #" << k << " completed before #" << k - 1;
        }
      while (completed < kCount && seen[static_cast<std::size_t>(completed)]) ++completed;
      std::this_thread::yield();
    }
    for (int k = 0; k < kCount; ++k) {
      work[static_cast<std::size_t>(k)]->wait();
      const float expect = static_cast<float>(k * n + n * (n - 1) / 2);
      EXPECT_EQ(tensors[static_cast<std::size_t>(k)].min().item<float>(), expect) << k;
      EXPECT_EQ(tensors[static_cast<std::size_t>(k)].max().item<float>(), expect) << k;
    }
  }
  stop = true;
  compute.join();
}

TEST(Collectives, ProgressPolicyNamesAndAuto) {
  EXPECT_EQ(dist::parse_progress("blocking"), dist::Progress::kBlocking);
  EXPECT_EQ(dist::parse_progress("polling"), dist::Progress::kPolling);
  EXPECT_EQ(dist::resolve_progress(dist::Progress::kPolling, 1), dist::Progress::kPolling);
  try {
    dist::parse_progress("spin", "mil.train.ddp.progress");
    FAIL() << "an unknown policy was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mil.train.ddp.progress"), std::string::npos) << e.what();
  }
  // More ranks on the node than cores: no core left for a communication thread.
  EXPECT_EQ(dist::resolve_progress(dist::Progress::kAuto, 1 << 20), dist::Progress::kPolling);
}

}  // namespace
}  // namespace endoked
