// The config loader: YAML text → the resolved tree → an options section, and `--set`.
// Properties: no crash, no unbounded growth (alias bombs), errors are endoked::Error; options
// that decode write back (to_yaml) to text that decodes to the same options.
#include <cstdint>
#include <string>

#include "endoked/core/config.h"
#include "endoked/core/error.h"
#include "endoked/data/ingest.h"
#include "tests/fuzz/fuzz_util.h"

using namespace endoked;

namespace {
struct Root {
  data::IngestOptions ingest;
  template <class V>
  void visit(V& v) {
    v("ingest", ingest, "ingest options");
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    config::Tree tree;
    // The first line, when it looks like key=value, is also tried as a --set.
    const auto nl = text.find('\n');
    const std::string first = text.substr(0, nl);
    tree.merge_text(text, "fuzz.yaml");
    if (first.find('=') != std::string::npos) tree.set(first);
    Root root;
    config::decode(tree.root(), root, {"pipeline", "synth", "label", "verify", "store"});
    const std::string yaml = config::to_yaml(root);
    config::Tree again;
    again.merge_text(yaml, "round-trip.yaml");
    Root root2;
    config::decode(again.root(), root2);
    FUZZ_ASSERT(config::to_yaml(root2) == yaml);
  } catch (const Error&) {
  }
  return 0;
}
