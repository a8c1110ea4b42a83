// The C++ ResNet against torchvision: names and sizes, and the same forward output for the same
// weights (python3-torchvision makes the reference inside the test).
#include "endoked/vision/resnet.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <set>

#include "../common/test_util.h"
#include "endoked/core/files.h"

namespace endoked::vision {
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
  for (const char* n :
       {"conv1.weight", "bn1.bias", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
        "layer2.0.downsample.1.weight", "layer4.1.bn2.weight", "fc.weight", "fc.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_EQ(net->named_buffers().size(), 60u);  // running mean/var/count of 20 batch norms
  net->eval();
  torch::NoGradGuard no_grad;
  const auto y = net->forward(torch::randn({2, 3, 64, 64}));
  EXPECT_EQ(y.sizes(), (std::vector<std::int64_t>{2, 1000}));
}

// torchvision's resnet18 with random weights and batch-norm statistics, saved by Python as a
// plain dict (with the input and its output); the same weights loaded by name into our ResNet
// give the same logits.
TEST(Models, ResNet18MatchesTorchvisionForward) {
  testing::TempDir t;
  const std::string path = t / "ref.pt";
  const std::string script = t / "ref.py";
  testing::write_file(script, R"PY(
import sys, torch, torchvision
torch.manual_seed(0)
m = torchvision.models.resnet18(num_classes=10).eval()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.2, 0.2)
            mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 96, 80)
    y = m(x)
d = {k: v.clone() for k, v in m.state_dict().items()}
d["__input"] = x
d["__output"] = y
torch.save(d, sys.argv[1])
)PY");
  std::string out;
  const int rc = testing::run_shell("/usr/bin/python3 " + script + " " + path, &out);
  ASSERT_EQ(rc, 0) << "python3-torchvision could not make the reference: " << out;
  const std::string bytes = files::read_all(path);
  const c10::IValue v = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  ASSERT_TRUE(v.isGenericDict());
  std::map<std::string, at::Tensor> ref;
  for (const auto& kv : v.toGenericDict()) ref[kv.key().toStringRef()] = kv.value().toTensor();

  auto net = resnet18(10);
  net->eval();
  torch::NoGradGuard no_grad;
  std::size_t loaded = 0;
  for (auto& p : net->named_parameters()) {
    ASSERT_TRUE(ref.count(p.key())) << p.key();
    ASSERT_EQ(p.value().sizes(), ref[p.key()].sizes()) << p.key();
    p.value().copy_(ref[p.key()]);
    ++loaded;
  }
  for (auto& b : net->named_buffers()) {
    ASSERT_TRUE(ref.count(b.key())) << b.key();
    b.value().copy_(ref[b.key()]);
    ++loaded;
  }
  EXPECT_EQ(loaded + 2, ref.size());  // every torchvision entry has its counterpart
  const at::Tensor y = net->forward(ref["__input"]);
  const at::Tensor want = ref["__output"];
  ASSERT_EQ(y.sizes(), want.sizes());
  const double diff = (y - want).abs().max().item<double>();
  EXPECT_LT(diff, 1e-4) << "max |ours - torchvision| = " << diff;
  EXPECT_GT(want.abs().max().item<double>(), 0.1);  // not a trivially zero output
}

}  // namespace
}  // namespace endoked::vision
