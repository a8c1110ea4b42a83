#include "store_commands.h"

#include <fmt/format.h>

#include <cstdio>

#include "endoked/core/progress.h"
#include "endoked/data/store.h"

namespace endoked::recipes {

int store_info(const std::string& dir, bool json_output) {
  const data::Manifest m = data::Manifest::load(dir);
  if (json_output) {
    std::printf("%s\n", m.to_json().dump(2).c_str());
    return 0;
  }
  std::int64_t bytes = 0;
  for (const auto& s : m.shards) bytes += s.bytes;
  fmt::print("store          {}\n", dir);
  fmt::print("kind           {} (schema {})\n", m.kind, m.schema_version);
  fmt::print("exams          {}\n", m.exam_count());
  fmt::print("images         {}\n", m.image_count());
  fmt::print("shards         {} ({} MiB)\n", m.shards.size(), bytes / (1024 * 1024));
  fmt::print("content sha256 {}\n", m.content_sha256());
  if (!m.provenance.empty()) fmt::print("provenance     {}\n", m.provenance.dump());
  if (!m.summary.empty()) fmt::print("summary        {}\n", m.summary.dump());
  for (const auto& s : m.shards)
    fmt::print("  {}  {:>7} exams {:>8} images {:>12} bytes  {}\n", s.file, s.exams, s.images,
               s.bytes, s.sha256.substr(0, 16));
  return 0;
}

int store_verify(const std::string& dir, bool deep) {
  const std::string recovered = data::recover_store(dir);
  if (!recovered.empty()) fmt::print("RECOVERED {}\n", recovered);
  const data::VerifyResult r = data::verify_store(dir, data::VerifyOptions{deep});
  if (r.ok()) {
    fmt::print("OK {}: {} exams, {} images{}\n", dir, r.exams, r.images,
               deep ? fmt::format(", {} decoded", r.decoded) : "");
    return 0;
  }
  fmt::print("FAILED {}: {} problem(s)\n", dir, r.problems.size());
  for (const auto& p : r.problems) fmt::print("  {}\n", p);
  return 1;
}

}  // namespace endoked::recipes
