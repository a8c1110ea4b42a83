#include "stage.h"

namespace endoked::recipes {

const std::set<std::string>& stage_sections() {
  static const std::set<std::string> s = {"synth",    "ingest",   "verify",   "label", "label_eval",
                                          "mil",      "localise", "refine",   "distill",
                                          "pretrain", "biopsy",   "evaluate", "export"};
  return s;
}

config::Tree load_tree(const std::vector<std::string>& config_files,
                       const std::vector<std::string>& assignments) {
  config::Tree tree;
  for (const auto& f : config_files) tree.merge_file(f);
  for (const auto& a : assignments) tree.set(a);
  return tree;
}

RunDir open_run(const RunOptions& run, const std::string& command, const std::string& resolved_yaml,
                const std::string& command_line, int rank, int world) {
  log::configure(rank, world, log::Options{log::parse_level(run.log_level), run.log_all_ranks});
  RunDir dir(run.dir.empty() ? "runs/" + command : run.dir, rank == 0);
  dir.write_config(resolved_yaml);
  dir.write_run_info(command_line, world);
  return dir;
}

}  // namespace endoked::recipes
