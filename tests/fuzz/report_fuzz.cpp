// The report labeller (rules, embedded English and Chinese lexicons) over fuzzed report text,
// and the lexicon loader over fuzzed lexicon YAML (the first byte chooses).
// Properties: no crash or sanitizer report; labels and their evidence serialise to valid JSON
// (evidence spans never cut a UTF-8 sequence) and read back to the same labels.
#include <cstdint>
#include <string>

#include "endoked/core/error.h"
#include "endoked/core/text.h"
#include "endoked/report/labels.h"
#include "endoked/report/lexicons.h"
#include "endoked/report/rules.h"
#include "tests/fuzz/fuzz_util.h"

using namespace endoked;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const report::RulesLabeller labeller(report::load_lexicons());
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if (data[0] == 'L') {  // a lexicon file
      const auto lexicon = report::load_lexicon(text, "fuzz-lexicon.yaml");
      const report::RulesLabeller custom({lexicon});
      custom.label("A 5 mm polyp in the sigmoid colon was removed.");
      return 0;
    }
    // Reports reach the labeller as UTF-8 (ingest decodes or rejects everything else).
    const std::string report = text::is_valid_utf8(text) ? text : text::escape_invalid_utf8(text);
    const report::ExamLabels labels = labeller.label(report);
    const nlohmann::json j = report::labels_to_json(labels, report);
    const std::string dumped = j.dump();
    // Read back: code-point offsets → byte offsets → the same JSON.
    report::ExamLabels back = report::labels_from_json(nlohmann::json::parse(dumped));
    report::code_points_to_bytes(back, report);
    FUZZ_ASSERT(report::labels_to_json(back, report).dump() == dumped);
  } catch (const Error&) {
  }
  return 0;
}
