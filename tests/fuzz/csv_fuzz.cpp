// The CSV reader and the folder-layout planner over a fuzzed report table.
// Properties: no crash or sanitizer report; errors are endoked::Error; a parsed table written
// back with csv_field parses to the same table; the plan (which ranks receive as JSON) is valid
// UTF-8 JSON whatever bytes the table held, and survives the round trip.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/data/csv.h"
#include "endoked/data/ingest.h"
#include "tests/fuzz/fuzz_util.h"

using namespace endoked;

namespace {

void round_trip(const data::CsvTable& t, char delim) {
  if (!t.header.empty() && t.header[0].rfind("\xEF\xBB\xBF", 0) == 0) return;  // a second BOM
  auto line = [&](const std::vector<std::string>& fields) {
    std::string out;
    for (std::size_t i = 0; i < fields.size(); ++i)
      out += (i ? std::string(1, delim) : std::string()) + data::csv_field(fields[i], delim);
    return out + "\n";
  };
  std::string text = line(t.header);
  for (const auto& r : t.rows) text += line(r.fields);
  const data::CsvTable again = data::parse_csv(text, delim, "round-trip.csv");
  FUZZ_ASSERT(again.header == t.header);
  FUZZ_ASSERT(again.rows.size() == t.rows.size());
  for (std::size_t i = 0; i < t.rows.size(); ++i) FUZZ_ASSERT(again.rows[i].fields == t.rows[i].fields);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (const char delim : {',', '\t'}) {
    try {
      const data::CsvTable t = data::parse_csv(text, delim, "fuzz.csv");
      if (t.unterminated_line == 0) round_trip(t, delim);
    } catch (const Error&) {
    }
  }
  // The planner: exam folders A, B and one whose name is not UTF-8; the table is the input.
  static const std::string dir = [] {
    const std::string d = fuzz::scratch_dir("csv");
    fuzz::write_file(d + "/images/A/0.jpg", "x");
    fuzz::write_file(d + "/images/B/0.jpg", "x");
    fuzz::write_file(d + "/images/C\xFF/0.jpg", "x");
    return d;
  }();
  files::write_file(dir + "/reports.csv", text);
  data::IngestOptions o;
  o.images_dir = dir + "/images";
  o.reports = dir + "/reports.csv";
  o.output = dir + "/store";
  o.centre_column = size % 2 ? "centre" : "";
  try {
    const data::IngestPlan plan = data::plan_ingest(o);
    const std::string json = plan.to_json().dump();
    FUZZ_ASSERT(data::IngestPlan::from_json(nlohmann::json::parse(json)).to_json().dump() == json);
    data::summarise_rejects(plan.rejects).dump();
  } catch (const Error&) {
  }
  return 0;
}
