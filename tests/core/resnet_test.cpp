#include "endoked/core/models/resnet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

namespace endoked::models {
namespace {

TEST(Models, ResNet18HasTorchvisionShapeAndNames) {
  auto net = resnet18(1000);
  std::int64_t count = 0;
  std::set<std::string> names;
  for (const auto& p : net->named_parameters()) {
    count += p.value().numel();
    names.insert(p.key());
  }
  EXPECT_EQ(count, 11689512);  // torchvision.models.resnet18().parameters()
  for (const char* n : {"conv1.weight", "bn1.bias", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                        "layer2.0.downsample.1.weight", "layer4.1.bn2.weight", "fc.weight", "fc.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_EQ(net->named_buffers().size(), 60u);  // running mean/var/count of 20 batch norms
  net->eval();
  torch::NoGradGuard no_grad;
  const auto y = net->forward(torch::randn({2, 3, 64, 64}));
  EXPECT_EQ(y.sizes(), (std::vector<std::int64_t>{2, 1000}));
}

}  // namespace
}  // namespace endoked::models
