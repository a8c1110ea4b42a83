// The JSON-lines manifest reader (ingest layout jsonl) over a fuzzed manifest.
// Properties: no crash or sanitizer report; errors are endoked::Error; every line becomes an
// exam or a counted reject; the plan is valid JSON and survives the round trip ranks rely on.
#include <cstdint>
#include <string>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/data/ingest.h"
#include "tests/fuzz/fuzz_util.h"

using namespace endoked;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string dir = [] {
    const std::string d = fuzz::scratch_dir("jsonl");
    fuzz::write_file(d + "/a/0.jpg", "x");
    fuzz::write_file(d + "/a/1.jpg", "");
    return d;
  }();
  files::write_file(dir + "/manifest.jsonl",
                    std::string_view(reinterpret_cast<const char*>(data), size));
  data::IngestOptions o;
  o.layout = "jsonl";
  o.manifest = dir + "/manifest.jsonl";
  o.output = dir + "/store";
  try {
    const data::IngestPlan plan = data::plan_ingest(o);
    const std::string json = plan.to_json().dump();
    FUZZ_ASSERT(data::IngestPlan::from_json(nlohmann::json::parse(json)).to_json().dump() == json);
    for (const auto& e : plan.exams) FUZZ_ASSERT(!e.images.empty());
  } catch (const Error&) {
  }
  return 0;
}
