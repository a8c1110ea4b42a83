#pragma once
// `endoked store info DIR` and `endoked store verify DIR [--deep]`. Single-process commands.
#include <string>

namespace endoked::recipes {

/// Prints kind, counts, shards, provenance and summary. Returns the process exit code.
int store_info(const std::string& dir, bool json_output);
/// Checks checksums and counts (deep: decodes every image). Prints the problems; returns 0 when
/// sound, 1 otherwise.
int store_verify(const std::string& dir, bool deep);

}  // namespace endoked::recipes
