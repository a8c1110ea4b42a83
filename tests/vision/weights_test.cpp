// torch.save files as users have them, read without Python: torchvision state dicts (an
// OrderedDict in a zip archive), checkpoints with a `model` entry saved from DDP, files without
// num_batches_tracked, legacy files; our forward after import equals torchvision's.
#include "endoked/vision/weights.h"

#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "../common/test_util.h"
#include "endoked/core/error.h"
#include "endoked/vision/resnet.h"
#include "weights_commands.h"

namespace endoked::vision {
namespace {

// Python (python3-torchvision) writes the files; returns its output.
void python(const testing::TempDir& t, const std::string& code) {
  testing::write_file(t / "make.py", code);
  std::string out;
  const int rc = testing::run_shell("cd " + t.path() + " && /usr/bin/python3 make.py", &out);
  ASSERT_EQ(rc, 0) << "python3-torchvision could not make the files: " << out;
}

const char* kMake = R"PY(
import torch, torchvision
torch.manual_seed(0)
def randomised(m):
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.2, 0.2)
                mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5)
                mod.num_batches_tracked.fill_(7)
    return m.eval()
x = torch.randn(2, 3, 96, 80)
r18 = randomised(torchvision.models.resnet18(num_classes=10))
r50 = randomised(torchvision.models.resnet50(num_classes=10))
torch.save(r18.state_dict(), "r18.pth")          # an OrderedDict, as torchvision ships them
torch.save(r50.state_dict(), "r50.pth")
with torch.no_grad():
    torch.save({"x": x, "y18": r18(x), "y50": r50(x), "f18": torch.flatten(torch.nn.Sequential(*list(r18.children())[:-1])(x), 1)}, "io.pt")
sd = r18.state_dict()
torch.save({"epoch": 3, "model": {"module." + k: v for k, v in sd.items()}, "optimizer": {"lr": 0.1}}, "ddp_ckpt.pth")
torch.save({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}, "old_bn.pth")
torch.save(sd, "legacy.pth", _use_new_zipfile_serialization=False)
torch.save({"epoch": 3, "note": "no weights here"}, "not_weights.pth")
# torchvision's reference training scripts save this: the model beside argparse args and more
import argparse, numpy
torch.save({"model": sd, "args": argparse.Namespace(lr=0.1, arch="resnet18"), "epoch": 3,
            "best": numpy.float64(0.75), "big": {str(i): i for i in range(200000)}}, "reference_ckpt.pth")
)PY";

at::Tensor tensor(const StateDict& d, const std::string& name) {
  for (const auto& [k, v] : d)
    if (k == name) return v;
  ADD_FAILURE() << "no " << name;
  return {};
}

TEST(Weights, TorchvisionFilesImportAndMatchItsForward) {
  testing::TempDir t;
  python(t, kMake);
  const StateDict io = read_state_dict(t / "io.pt");
  torch::NoGradGuard no_grad;
  for (const auto& [arch, file, out] : {std::tuple<const char*, const char*, const char*>{"resnet18", "r18.pth", "y18"},
                                        {"resnet50", "r50.pth", "y50"}}) {
    const StateDict sd = read_state_dict(t / file);
    auto net = make_resnet(arch, 10);
    const LoadReport r = load_state_dict(*net, sd, true, file);
    EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.loaded, static_cast<std::int64_t>(sd.size()));
    net->eval();
    const at::Tensor y = net->forward(tensor(io, "x"));
    const at::Tensor want = tensor(io, out);
    ASSERT_EQ(y.sizes(), want.sizes());
    const double diff = (y - want).abs().max().item<double>();
    EXPECT_LT(diff, 1e-5) << arch << ": max |ours - torchvision| = " << diff;
    EXPECT_GT(want.abs().max().item<double>(), 0.1) << arch;
    if (std::string(arch) == "resnet18") {  // the pooled features are torchvision's too
      const double fdiff = (net->pooled(tensor(io, "x")) - tensor(io, "f18")).abs().max().item<double>();
      EXPECT_LT(fdiff, 1e-5);
      EXPECT_EQ(net->features(tensor(io, "x")).sizes(), (std::vector<std::int64_t>{2, 512, 3, 3}));
    }
  }
  EXPECT_EQ(resnet50(0)->feature_dim(), 2048);
  EXPECT_EQ(resnet34(0)->feature_dim(), 512);

  // A checkpoint with a `model` entry saved from DistributedDataParallel ("module." names).
  const StateDict ckpt = read_state_dict(t / "ddp_ckpt.pth");
  EXPECT_EQ(ckpt.size(), read_state_dict(t / "r18.pth").size());
  EXPECT_EQ(ckpt.front().first, "conv1.weight");
  EXPECT_TRUE(load_state_dict(*resnet18(10), ckpt, true, "ckpt").ok());
  const PyValue root = load_torch_file(t / "ddp_ckpt.pth");
  ASSERT_NE(root.get("epoch"), nullptr);
  EXPECT_EQ(root.get("epoch")->integer, 3);
  EXPECT_DOUBLE_EQ(root.get("optimizer")->get("lr")->number, 0.1);

  // A checkpoint of torchvision's reference scripts: argparse args, a numpy scalar and a large
  // dict beside the model; the objects stay opaque, the state dict loads.
  const PyValue ref = load_torch_file(t / "reference_ckpt.pth");
  ASSERT_NE(ref.get("args"), nullptr);
  EXPECT_EQ(ref.get("args")->kind, PyValue::Kind::kObject);
  EXPECT_EQ(ref.get("args")->text, "argparse.Namespace");
  EXPECT_EQ(ref.get("big")->entries.size(), 200000u);
  EXPECT_TRUE(load_state_dict(*resnet18(10), state_dict_of(ref, "ref"), true, "ref").ok());

  // num_batches_tracked absent (old checkpoints): filled with 0, as PyTorch does.
  auto net = resnet18(10);
  const LoadReport old = load_state_dict(*net, read_state_dict(t / "old_bn.pth"), true, "old");
  EXPECT_EQ(old.filled, 20);
  EXPECT_EQ(tensor(state_dict_from(*net), "bn1.num_batches_tracked").item<std::int64_t>(), 0);

  // Another architecture: strict names what does not fit; non-strict loads what does.
  EXPECT_THROW_MSG(load_state_dict(*resnet34(10), read_state_dict(t / "r18.pth"), true, "r18.pth"),
                   "r18.pth: the weights do not fit the model");
  const LoadReport loose = load_state_dict(*resnet50(10), read_state_dict(t / "r18.pth"), false, "r18");
  EXPECT_FALSE(loose.ok());
  EXPECT_FALSE(loose.mismatched.empty());
  EXPECT_NE(loose.describe().find("shape differs: "), std::string::npos);

  // Legacy and non-weight files: errors that say what to do.
  EXPECT_THROW_MSG(read_state_dict(t / "legacy.pth"), "legacy (pre-zip) torch.save file");
  EXPECT_THROW_MSG(read_state_dict(t / "not_weights.pth"), "no state dict");
  EXPECT_THROW_MSG(read_state_dict(t / "make.py"), "not a torch.save archive");
}

// `endoked weights import`: the file into a backbone, written as a torch.save file that Python
// and we read back with the same values.
TEST(Weights, ImportWritesWhatPythonAndWeReadBack) {
  testing::TempDir t;
  python(t, kMake);
  ASSERT_EQ(recipes::weights_import(t / "r50.pth", "resnet50", t / "backbone.pt", 0), 0);
  const StateDict back = read_state_dict(t / "backbone.pt");
  const StateDict src = read_state_dict(t / "r50.pth");
  EXPECT_EQ(back.size(), src.size() - 2);  // no fc.weight / fc.bias
  for (const auto& [k, v] : back) EXPECT_TRUE(tensor(src, k).equal(v)) << k;
  testing::write_file(t / "check.py", R"PY(
import torch
a = torch.load("backbone.pt"); b = torch.load("r50.pth")
assert len(a) == len(b) - 2, (len(a), len(b))
assert all(torch.equal(a[k], b[k]) for k in a)
print("ok")
)PY");
  std::string out;
  EXPECT_EQ(testing::run_shell("cd " + t.path() + " && /usr/bin/python3 check.py", &out), 0) << out;
  EXPECT_THROW_MSG(recipes::weights_import(t / "r18.pth", "resnet50", t / "x.pt", 10),
                   "the weights do not fit the model");
}

// A torch.save archive around the given data.pkl bytes.
std::string archive(const std::string& pkl) {
  std::string out;
  caffe2::serialize::PyTorchStreamWriter w([&](const void* b, std::size_t n) {
    out.append(static_cast<const char*>(b), n);
    return n;
  });
  w.writeRecord("data.pkl", pkl.data(), pkl.size());
  w.writeEndOfFile();
  return out;
}

// Hostile pickles (found in review): a few hundred bytes that share one object 2^60 times, a
// 200 000 nested tuples, a list that contains itself — errors, not a hang, a stack overflow or
// a leak.
TEST(Weights, HostilePicklesAreErrors) {
  using namespace std::string_literals;  // (the pickles hold NUL bytes)
  std::string bomb = "]q\x00"s;  // x0 = []; xk = (x(k-1), x(k-1))
  for (int k = 1; k <= 60; ++k)
    bomb += std::string("h") + char(k - 1) + "h" + char(k - 1) + "\x86q" + char(k);
  bomb += ".";
  EXPECT_THROW_MSG(load_torch_bytes(archive(bomb), "bomb.pt"), "bomb.pt: data.pkl");
  std::string deep = ")" + std::string(200000, '\x85') + ".";
  EXPECT_THROW_MSG(load_torch_bytes(archive(deep), "deep.pt"), "nesting deeper than 64 levels");
  EXPECT_THROW_MSG(load_torch_bytes(archive(")" + std::string(200000, '\x85')), "cut.pt"), "truncated");
  EXPECT_THROW_MSG(load_torch_bytes(archive("]q\x00" "h\x00" "a."s), "cycle.pt"), "nesting deeper than 64");
  // And a well-formed one still loads.
  const PyValue ok = load_torch_bytes(archive("}q\x00" "X\x01\x00\x00\x00" "a" "K\x07" "s."s), "ok.pt");
  ASSERT_NE(ok.get("a"), nullptr);
  EXPECT_EQ(ok.get("a")->integer, 7);
}

}  // namespace
}  // namespace endoked::vision
