// The U-Net: output shapes for sizes that are not multiples of 32, deep-supervision heads, the
// encoder under torchvision's names, and a short training run (structure loss on every output)
// that learns to segment bright discs on noise.
#include "endoked/vision/segnet.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>

#include "endoked/core/error.h"
#include "endoked/vision/export.h"
#include "endoked/vision/seg_loss.h"

namespace endoked::vision {
namespace {

TEST(UNet, ShapesHeadsAndNames) {
  torch::manual_seed(0);
  UNet net("resnet18", 8, 4, true);
  const auto out = net->forward_all(torch::randn({2, 3, 70, 90}));
  ASSERT_EQ(out.size(), 4u);
  for (const auto& o : out) EXPECT_EQ(o.sizes(), (std::vector<int64_t>{2, 1, 70, 90}));
  EXPECT_EQ(net->forward(torch::randn({1, 3, 64, 64})).sizes(),
            (std::vector<int64_t>{1, 1, 64, 64}));
  UNet plain("resnet18", 8, 4, false);
  EXPECT_EQ(plain->forward_all(torch::randn({2, 3, 32, 32})).size(), 1u);
  const auto params = net->named_parameters();
  for (const char* k :
       {"encoder.conv1.weight", "encoder.layer4.1.bn2.bias", "decoder.0.conv1.weight",
        "decoder.3.bn2.weight", "head.weight", "aux1.weight", "aux3.bias"})
    EXPECT_TRUE(params.contains(k)) << k;
  EXPECT_FALSE(params.contains("encoder.fc.weight"));
}

TEST(UNet, TorchScriptExportComputesTheSameForAnyBatchSize) {
  torch::manual_seed(1);
  UNet net("resnet18", 8, 4, true);
  net->eval();
  const std::string path =
      (std::filesystem::temp_directory_path() / "endoked-unet-export-test.ts").string();
  auto probabilities = [&](const torch::Tensor& x) { return torch::sigmoid(net->forward(x)); };
  export_torchscript(*net, probabilities, torch::zeros({1, 3, 64, 64}), path, "Segmenter");
  // The parameters still train after the export.
  for (const auto& p : net->parameters()) EXPECT_TRUE(p.requires_grad());
  torch::jit::Module back = torch::jit::load(path);
  std::filesystem::remove(path);
  torch::NoGradGuard no_grad;
  for (const int64_t n : {1, 3}) {
    const auto x = torch::randn({n, 3, 64, 64});
    const auto got = back.forward({x}).toTensor();
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{n, 1, 64, 64}));
    EXPECT_LT((got - probabilities(x)).abs().max().item<float>(), 1e-5);
  }
  EXPECT_THROW(export_torchscript(*net, probabilities, torch::zeros({1, 3, 64, 64}),
                                  "/nonexistent-dir/x/model.ts", "Segmenter"),
               Error);
}

// Trains `net` 120 steps on bright discs over noise; the Dice of its main output.
double dice_after_training(SegmentationNetImpl& net) {
  torch::manual_seed(1);
  const int n = 8, s = 48;
  at::Tensor images = torch::randn({n, 3, s, s}) * 0.3, masks = torch::zeros({n, 1, s, s});
  const at::Tensor yy = torch::arange(s).view({s, 1}), xx = torch::arange(s).view({1, s});
  for (int i = 0; i < n; ++i) {
    const int cy = 12 + (i * 7) % 24, cx = 12 + (i * 11) % 24, r = 6 + i % 4;
    const at::Tensor disc = ((yy - cy).pow(2) + (xx - cx).pow(2) <= r * r).to(torch::kFloat);
    masks[i][0] = disc;
    images[i] += disc.unsqueeze(0) * 1.5;
  }
  torch::optim::Adam opt(net.parameters(), torch::optim::AdamOptions(5e-3));
  for (int step = 0; step < 120; ++step) {
    opt.zero_grad();
    at::Tensor loss = torch::zeros({});
    for (const auto& o : net.forward_all(images)) loss = loss + structure_loss(o, masks);
    loss.backward();
    opt.step();
  }
  net.eval();
  torch::NoGradGuard ng;
  const at::Tensor pred = (net.forward(images) > 0).to(torch::kFloat);
  const double inter = (pred * masks).sum().item<double>();
  return 2 * inter / (pred.sum().item<double>() + masks.sum().item<double>());
}

TEST(UNet, LearnsDiscsWithTheStructureLoss) {
  torch::manual_seed(1);
  UNet net("resnet18", 8, 4, true);
  const double dice = dice_after_training(*net);
  EXPECT_GT(dice, 0.9) << "Dice " << dice;
}

TEST(PraNet, ShapesNamesAndTheFactory) {
  torch::manual_seed(0);
  PraNet net("resnet18", 8, 4, true);
  const auto out = net->forward_all(torch::randn({2, 3, 70, 90}));
  ASSERT_EQ(out.size(), 4u);  // S_3, S_4, S_5, S_g
  for (const auto& o : out) EXPECT_EQ(o.sizes(), (std::vector<int64_t>{2, 1, 70, 90}));
  const auto params = net->named_parameters();
  for (const char* k : {"encoder.conv1.weight", "reduce.3.conv1.weight", "reduce.5.bn2.bias",
                        "aggregate.out.weight", "reverse.5.conv2.weight", "reverse.3.out.bias"})
    EXPECT_TRUE(params.contains(k)) << k;
  EXPECT_EQ(PraNet("resnet18", 8, 4, false)->forward_all(torch::randn({2, 3, 32, 32})).size(), 1u);
  EXPECT_EQ(make_segmentation_net("pranet", "resnet18", 8, 4)
                ->forward_all(torch::randn({2, 3, 32, 32}))
                .size(),
            4u);
  EXPECT_EQ(make_segmentation_net("unet", "resnet18", 8, 4)
                ->forward_all(torch::randn({2, 3, 32, 32}))
                .size(),
            4u);
  try {
    make_segmentation_net("fcn", "resnet18");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fcn' is not one of unet, pranet"), std::string::npos);
  }
}

TEST(PraNet, LearnsDiscsWithTheStructureLoss) {
  torch::manual_seed(1);
  PraNet net("resnet18", 8, 4, true);
  const double dice = dice_after_training(*net);
  EXPECT_GT(dice, 0.9) << "Dice " << dice;
}

}  // namespace
}  // namespace endoked::vision
