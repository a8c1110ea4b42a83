// The world-size-1 backend: collectives are identities, with the same argument rules as MPI.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "endoked/core/error.h"
#include "endoked/distributed/communicator.h"

namespace endoked::dist {
namespace {

TEST(LocalComm, CollectivesAreIdentities) {
  auto c = make_local_communicator();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->size(), 1);
  at::Tensor t = at::arange(6, at::kFloat).reshape({2, 3});
  const at::Tensor before = t.clone();
  for (auto op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
    CollectiveOptions o;
    o.op = op;
    c->all_reduce(t, o);
    EXPECT_TRUE(at::equal(t, before)) << op_name(op);
  }
  c->broadcast(t, 0);
  EXPECT_TRUE(at::equal(t, before));
  const auto all = c->all_gather(t);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(at::equal(all[0], before));
  EXPECT_EQ(c->all_gather_bytes("x"), std::vector<std::string>{"x"});
}

TEST(LocalComm, SameArgumentRulesAsMpi) {
  auto c = make_local_communicator();
  at::Tensor ints = at::ones({3}, at::kInt);
  CollectiveOptions avg;
  avg.op = ReduceOp::kAvg;
  EXPECT_THROW(c->all_reduce(ints, avg), Error);
  at::Tensor bools = at::ones({3}, at::kBool);
  EXPECT_THROW(c->all_reduce(bools), Error);
  at::Tensor f = at::ones({3});
  EXPECT_THROW(c->broadcast(f, 1), Error);
}

}  // namespace
}  // namespace endoked::dist
