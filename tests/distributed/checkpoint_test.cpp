// Checkpoint directory rules on one rank: step order past a million steps, and replacing the
// checkpoint `latest` points at without a moment where it is missing.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/distributed/checkpoint.h"
#include "../common/test_util.h"

namespace endoked::dist {
namespace {

namespace fs = std::filesystem;

std::string latest_dir(const std::string& dir) {
  std::string name = files::read_all(dir + "/latest");
  while (!name.empty() && name.back() == '\n') name.pop_back();
  return dir + "/" + name;
}

TEST(Checkpoint, KeepsTheNewestPastAMillionSteps) {
  testing::TempDir tmp;
  auto comm = make_local_communicator();
  torch::nn::Linear model(3, 2);
  torch::optim::SGD opt(model->parameters(), 0.1);
  Checkpointer ck({tmp.path() + "/ck", 2}, *comm);
  TrainingState st;
  for (std::int64_t step : {999998, 999999, 1000000, 1000001}) {
    st.step = step;
    ck.save(*model, opt, st);
  }
  std::vector<std::string> kept;
  for (const auto& e : fs::directory_iterator(tmp.path() + "/ck"))
    if (e.is_directory()) kept.push_back(e.path().filename().string());
  std::sort(kept.begin(), kept.end());
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0], "step-000001000000");
  EXPECT_EQ(kept[1], "step-000001000001");
  TrainingState back;
  ASSERT_TRUE(ck.load_latest(*model, opt, back));
  EXPECT_EQ(back.step, 1000001);
}

TEST(Checkpoint, ResavingTheLatestStepNeverLeavesItMissing) {
  testing::TempDir tmp;
  auto comm = make_local_communicator();
  torch::nn::Linear model(64, 64);
  torch::optim::SGD opt(model->parameters(), 0.1);
  const std::string dir = tmp.path() + "/ck";
  Checkpointer ck({dir, 1}, *comm);
  TrainingState st;
  st.step = 5;
  ck.save(*model, opt, st);
  std::atomic<bool> stop{false};
  std::atomic<int> missing{0}, looks{0};
  std::thread watcher([&] {
    while (!stop) {
      if (!fs::exists(latest_dir(dir) + "/model.pt")) ++missing;
      ++looks;
    }
  });
  for (int i = 0; i < 40; ++i) {
    torch::NoGradGuard g;
    model->weight.fill_(static_cast<float>(i));
    ck.save(*model, opt, st);
  }
  stop = true;
  watcher.join();
  EXPECT_GT(looks.load(), 40);
  EXPECT_EQ(missing.load(), 0) << "latest pointed at a missing checkpoint";
  torch::nn::Linear back(64, 64);
  TrainingState bs;
  ASSERT_TRUE(ck.load_latest(*back, opt, bs));
  EXPECT_EQ(back->weight[0][0].item<float>(), 39.0f);  // the last save won
  EXPECT_FALSE(fs::exists(dir + "/step-000000000005.old"));
}

TEST(Checkpoint, KeepLastErrorNamesTheValue) {
  auto comm = make_local_communicator();
  try {
    Checkpointer ck({"unused", 0}, *comm);
    FAIL() << "keep_last 0 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checkpoint.keep_last must be ≥ 1, got 0"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace endoked::dist
