#pragma once
// The weights users have — torchvision `*.pth` state dicts, training checkpoints with a `model` /
// `state_dict` entry, SAM / MobileSAM checkpoints — read natively, with no Python at run time.
// A torch.save file (PyTorch ≥ 1.6) is a zip archive: LibTorch's PyTorchStreamReader reads it, and
// its data.pkl goes through a small unpickler of our own for what such files hold (pickle protocol
// 2: OrderedDict, dict, list, tuple, str, int, float, bool, None, and tensors rebuilt by
// torch._utils._rebuild_tensor_v2 / _rebuild_parameter over typed storages). LibTorch's own
// pickle_load turns every OrderedDict — so every state_dict — into None.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace torch::nn {
class Module;
}

namespace endoked::vision {

/// A Python value read from a torch.save file.
struct PyValue {
  enum class Kind {
    kNone, kBool, kInt, kFloat, kString, kBytes, kTensor, kList, kTuple, kDict,
    kObject  // an instance of a class this reader does not build (argparse.Namespace, a numpy
             // scalar, …): kept opaque, its class in `text`, so a checkpoint that holds one
             // beside its state dict still loads
  };
  Kind kind = Kind::kNone;
  bool boolean = false;
  std::int64_t integer = 0;
  double number = 0;
  std::string text;  // kString (UTF-8), kBytes; kObject: "module.Class"
  at::Tensor tensor;
  std::vector<PyValue> items;                        // kList, kTuple
  std::vector<std::pair<PyValue, PyValue>> entries;  // kDict, in insertion order

  /// The entry of a dict under a string key, or nullptr.
  const PyValue* get(const std::string& key) const;
  /// "dict", "list", "tensor", …
  const char* type_name() const;
};

/// Reads a torch.save file. Throws endoked::Error naming the file: a legacy (pre-zip) file with
/// how to re-save it, a file that is not a torch.save archive, content outside the subset above.
PyValue load_torch_file(const std::string& path);
/// The same for a torch.save archive held in memory; `where` names it in errors.
PyValue load_torch_bytes(const std::string& bytes, const std::string& where);

/// Names → tensors, in the file's order.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

/// The state dict in a loaded file: the value itself when every entry is a tensor, else its
/// `state_dict`, `model`, `model_state_dict` or `net` entry. The `module.` prefix that
/// DistributedDataParallel puts on every name is removed. Throws Error naming `where` and the
/// top-level keys when there is none.
StateDict state_dict_of(const PyValue& root, const std::string& where);
/// load_torch_file + state_dict_of.
StateDict read_state_dict(const std::string& path);

/// What loading a state dict into a module did.
struct LoadReport {
  std::int64_t loaded = 0;                // tensors copied
  std::int64_t filled = 0;                // batch-norm num_batches_tracked absent from the file: 0
  std::vector<std::string> missing;       // in the module, not in the file
  std::vector<std::string> unexpected;    // in the file, not in the module
  std::vector<std::string> mismatched;    // "name: file [a, b] vs model [c, d]"
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// One line per kind, the first names of each.
  std::string describe() const;
};

/// Copies tensors into the module's parameters and buffers by name (dtype converted). A
/// `num_batches_tracked` the file lacks is set to 0, as PyTorch does for old checkpoints. With
/// `strict`, any missing, unexpected or mismatched name throws Error naming `where` (nothing is
/// copied then); otherwise what matches is copied and the report says what did not.
LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict,
                           const std::string& where);

/// Writes a state dict as a torch.save zip archive of a plain dict {name: tensor} (Python's
/// torch.load and read_state_dict both read it), atomically.
void save_state_dict(const StateDict& state, const std::string& path);

/// The module's parameters and buffers as a state dict (detached CPU tensors, module order).
StateDict state_dict_from(torch::nn::Module& module);

}  // namespace endoked::vision
