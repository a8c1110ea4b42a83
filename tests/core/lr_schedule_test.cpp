// LR schedules and the scheduler applied to a LibTorch optimizer.
#include "endoked/core/lr_schedule.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "endoked/core/error.h"

namespace endoked {
namespace {

TEST(LrSchedule, KindsFollowTheirFormulas) {
  LrScheduleOptions o;
  o.lr = 0.1;
  EXPECT_DOUBLE_EQ(lr_at(o, 0), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(o, 12345), 0.1);
  o.kind = "step";
  o.step_size = 10;
  o.gamma = 0.5;
  EXPECT_DOUBLE_EQ(lr_at(o, 9), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(o, 10), 0.05);
  EXPECT_DOUBLE_EQ(lr_at(o, 25), 0.025);
  o.kind = "cosine";
  o.warmup_steps = 4;
  o.total_steps = 14;
  o.min_lr = 0.01;
  EXPECT_DOUBLE_EQ(lr_at(o, 0), 0.025);  // warm-up: lr·1/4
  EXPECT_DOUBLE_EQ(lr_at(o, 3), 0.1);
  EXPECT_DOUBLE_EQ(lr_at(o, 4), 0.1);                  // cosine starts at the peak
  EXPECT_NEAR(lr_at(o, 9), 0.01 + 0.09 * 0.5, 1e-12);  // halfway
  EXPECT_NEAR(lr_at(o, 14), 0.01, 1e-12);              // end
  EXPECT_NEAR(lr_at(o, 100), 0.01, 1e-12);             // stays
  o.kind = "linear";
  EXPECT_NEAR(lr_at(o, 9), 0.055, 1e-12);
  o.kind = "poly";
  EXPECT_THROW(validate(o), Error);
  o.kind = "cosine";
  o.total_steps = 4;
  EXPECT_THROW(validate(o), Error);
}

TEST(LrSchedule, SchedulerSetsGroupsAndRestoresSavedState) {
  torch::nn::Linear lin(2, 2);
  torch::optim::SGD opt(lin->parameters(), torch::optim::SGDOptions(1.0));
  LrScheduleOptions o;
  o.kind = "step";
  o.lr = 0.2;
  o.step_size = 2;
  o.gamma = 0.1;
  LrScheduler a(o, opt);
  a.apply(5);
  EXPECT_NEAR(opt.param_groups()[0].options().get_lr(), 0.2 * 0.01, 1e-15);
  const std::string state = a.state_json();
  o.lr = 0.9;  // the config changed since the checkpoint
  LrScheduler b(o, opt);
  b.load_state_json(state, "scheduler.json");
  EXPECT_EQ(b.last_step(), 5);
  EXPECT_DOUBLE_EQ(b.options().lr, 0.2);
  EXPECT_NEAR(opt.param_groups()[0].options().get_lr(), 0.002, 1e-15);
  EXPECT_THROW(b.load_state_json("{\"kind\": \"step\"}", "scheduler.json"), Error);
}

// A refused value is named in the message with the key, so the user sees what to fix.
TEST(LrSchedule, ErrorsNameTheKeyAndTheValue) {
  const auto message = [](LrScheduleOptions o) {
    try {
      validate(o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  LrScheduleOptions o;
  o.warmup_steps = -3;
  EXPECT_NE(message(o).find("lr_schedule.warmup_steps must be ≥ 0, got -3"), std::string::npos)
      << message(o);
  o = {};
  o.min_lr = 0.5;
  EXPECT_NE(message(o).find("got 0.5"), std::string::npos) << message(o);
  o = {};
  o.kind = "step";
  o.gamma = -2;
  EXPECT_NE(message(o).find("lr_schedule.gamma must be > 0, got -2"), std::string::npos)
      << message(o);
}

}  // namespace
}  // namespace endoked
