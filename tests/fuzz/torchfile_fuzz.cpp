// The torch.save reader (vision/weights.h) over fuzzed pickles: the input becomes data.pkl of a
// well-formed archive that also holds storage records data/0 (16 floats) and data/1 (4 longs).
// The zip container itself is LibTorch's to parse; the unpickler, the tensor views it builds and
// the state-dict search are ours. Properties: no crash or sanitizer report; every failure is an
// endoked::Error naming the file.
#include <caffe2/serialize/inline_container.h>

#include <cstdint>
#include <string>

#include "endoked/core/error.h"
#include "endoked/vision/weights.h"
#include "tests/fuzz/fuzz_util.h"

using namespace endoked;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string archive;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&](const void* buf, std::size_t n) {
      archive.append(static_cast<const char*>(buf), n);
      return n;
    });
    writer.writeRecord("data.pkl", data, size);
    const std::string floats(16 * 4, '\x3f'), longs(4 * 8, '\x01');
    writer.writeRecord("data/0", floats.data(), floats.size());
    writer.writeRecord("data/1", longs.data(), longs.size());
    writer.writeEndOfFile();
  }
  try {
    const vision::PyValue v = vision::load_torch_bytes(archive, "fuzz.pt");
    try {
      vision::state_dict_of(v, "fuzz.pt");
    } catch (const Error&) {
    }
  } catch (const Error&) {
  }
  return 0;
}
