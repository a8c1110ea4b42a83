#pragma once
// What every command shares: the `run:` config section, loading base + overlays + --set into a
// typed root struct, and the run directory (resolved config, run.json, metrics.jsonl).
#include <set>
#include <string>
#include <vector>

#include "endoked/core/config.h"
#include "endoked/core/log.h"
#include "endoked/core/run_dir.h"

namespace endoked::recipes {

struct RunOptions {
  std::string dir;  // default: runs/<command>
  std::string log_level = "info";
  bool log_all_ranks = false;

  template <class V>
  void visit(V& v) {
    v("dir", dir, "run directory (config.yaml, run.json, metrics.jsonl); default runs/<command>");
    v("log_level", log_level, "debug | info | warn | error");
    v("log_all_ranks", log_all_ranks, "print info lines from every rank, not only rank 0");
  }
};

/// Top-level sections of the pipeline recipe; a command skips the sections of other stages.
const std::set<std::string>& stage_sections();

/// Base file(s) then --set assignments, in order. Throws Error naming file:line:col on a bad key.
config::Tree load_tree(const std::vector<std::string>& config_files,
                       const std::vector<std::string>& assignments);

/// Decodes `root` (which must have a `run` member) and everything its visit lists; sections of
/// other stages are ignored.
template <typename Root>
Root decode_root(const config::Tree& tree) {
  Root root;
  // Sections the root declares are decoded even though they are in the ignore list.
  config::decode(tree.root(), root, stage_sections());
  return root;
}

/// Applies run.log_level, creates the run directory on rank 0 and writes config.yaml + run.json.
RunDir open_run(const RunOptions& run, const std::string& command, const std::string& resolved_yaml,
                const std::string& command_line, int rank, int world);

}  // namespace endoked::recipes
