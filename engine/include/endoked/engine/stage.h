#pragma once
// The stage registry. A stage is one folder under recipes/ whose register.cpp adds it here:
//
//   void register_stage_label(engine::Registry& r) {
//     r.add_stage<LabelOptions>({"label", "report text -> exam labels …", {},
//                                [](const LabelOptions& o, engine::StageContext& c) { … }});
//   }
//
// and whose CMakeLists.txt declares it with endoked_add_stage(). The CLI (one subcommand per
// stage, `--help` listing every config key with its default), `endoked run` (the pipeline
// recipe names stages in `pipeline.stages`) and the set of config sections a command skips
// are all built from the registry; nothing else lists the stages.
//
// Config: a stage reads the `run:` section and its own section (named like the stage, with '_'
// for ' ': "label eval" reads `label_eval:`); the sections of other registered stages in the
// same file are skipped, so the whole-pipeline recipe can be given to any single stage.
#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "endoked/core/config.h"
#include "endoked/core/run_dir.h"
#include "endoked/distributed/communicator.h"

namespace endoked::engine {

/// The `run:` section every command shares.
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

/// Base file(s) then --set assignments, in order. Throws Error naming file:line:col on a bad key.
config::Tree load_tree(const std::vector<std::string>& config_files,
                       const std::vector<std::string>& assignments);

/// Applies run.log_level, creates the run directory on rank 0 and writes config.yaml + run.json.
RunDir open_run(const RunOptions& run, const std::string& command, const std::string& resolved_yaml,
                const std::string& command_line, int rank, int world);

/// What a running stage gets: the world (collective stages: every rank calls run in the same
/// order) and the run directory (rank 0 writes into it).
struct StageContext {
  dist::Communicator& comm;
  const RunDir& run;
};

/// What a stage returns: the process exit code (0 ok, 75 preempted and checkpointed, other
/// values failures that `endoked run` stops at), its summary (also in metrics.jsonl) and one
/// line for a person (the pipeline's summary; rank 0's is printed).
struct StageResult {
  int code = 0;
  nlohmann::json summary = nlohmann::json::object();
  std::string line;
  /// The stage's key metrics against a truth (name, value), e.g. {"image AUC", 0.90}: the
  /// pipeline's table of key metrics (printed and in the run directory's pipeline.md).
  std::vector<std::pair<std::string, double>> key_metrics;
  /// A training stage's summary with "preempted": the requeue exit code (75) and the line
  /// saying so (from summary["steps"]). Returns whether it was preempted.
  bool preempted();
};

/// A command-line flag that stands for a config assignment: `--strict` → ingest.strict=true,
/// `--labels DIR` → label_eval.labels=DIR.
struct FlagAlias {
  std::string flag;  // "--strict"
  std::string key;   // "ingest.strict"
  std::string help;
  bool is_switch = false;  // true: no value, sets the key to true
};

template <class Options>
struct StageDef {
  std::string name;     // "label", "label eval" (a subcommand of label)
  std::string summary;  // one line for --help
  std::vector<FlagAlias> flags;
  std::function<StageResult(const Options&, StageContext&)> run;
};

/// A stage's config decoded from a tree, ready to run.
struct PreparedStage {
  std::string name;
  RunOptions run_options;
  std::string resolved_yaml;  // `run:` and the stage's section, resolved
  std::function<StageResult(StageContext&)> run;
};

/// A command that reads no config: positional arguments, --options and --switches only
/// (`store verify DIR --deep`, `label export DIR --csv F`).
struct ToolArg {
  std::string name;  // "dir" (positional) or "--csv" / "--deep"
  std::string help;
  bool required = false;
  bool is_switch = false;
};
struct ToolDef {
  std::string name;
  std::string summary;
  std::vector<ToolArg> args;
  /// Values by argument name ("dir", "--csv"); switches are "1" when given. Returns the exit code.
  std::function<int(const std::map<std::string, std::string>& args)> run;
};

struct StageEntry {
  std::string name;
  std::string section;
  std::string summary;
  std::vector<FlagAlias> flags;
  std::function<std::string()> keys_help;
  std::function<PreparedStage(const config::Tree&, const std::set<std::string>& skip)> prepare;
};

class Registry {
 public:
  template <class Options>
  void add_stage(StageDef<Options> def);
  void add_tool(ToolDef def);

  const std::vector<StageEntry>& stages() const { return stages_; }
  const std::vector<ToolDef>& tools() const { return tools_; }
  const StageEntry* find_stage(const std::string& name) const;
  /// Every registered stage's config section, plus `pipeline`.
  std::set<std::string> sections() const;
  /// Decodes stage `name` from `tree` (skipping the other stages' sections). Throws Error for an
  /// unknown stage (listing the registered ones) or a bad config.
  PreparedStage prepare(const std::string& name, const config::Tree& tree) const;

 private:
  void add_entry(StageEntry entry);
  std::vector<StageEntry> stages_;
  std::vector<ToolDef> tools_;
};

/// "label eval" → "label_eval".
std::string section_name(const std::string& stage_name);

namespace detail {
// True when an options struct has a top-level key `name` (a visitor over its keys).
struct KeyFinder {
  const char* name;
  bool found = false;
  template <class T>
  void operator()(const char* key, T&, const char* = nullptr) {
    found = found || std::string(key) == name;
  }
};
template <class Options>
bool has_key(const char* name) {
  Options o;
  KeyFinder f{name};
  o.visit(f);
  return f.found;
}

/// Under Slurm (SLURM_CPUS_PER_TASK set by --cpus-per-task), a stage's `threads` key that
/// neither a config file nor --set gives takes the allocation's CPUs per task: the tree with
/// that assignment added, else `tree` itself.
config::Tree with_allocation_threads(const config::Tree& tree, const std::string& section,
                                     bool stage_has_threads);

template <class Options>
struct SectionRoot {
  RunOptions run;
  Options options;
  const char* section = "";
  template <class V>
  void visit(V& v) {
    v("run", run);
    v(section, options);
  }
};
}  // namespace detail

template <class Options>
void Registry::add_stage(StageDef<Options> def) {
  StageEntry e;
  e.name = def.name;
  e.section = section_name(def.name);
  e.summary = def.summary;
  e.flags = def.flags;
  auto section = std::make_shared<std::string>(e.section);
  e.keys_help = [section] {
    detail::SectionRoot<Options> root;
    root.section = section->c_str();
    return config::help_text(root);
  };
  auto run = std::make_shared<std::function<StageResult(const Options&, StageContext&)>>(
      std::move(def.run));
  const std::string name = def.name;
  e.prepare = [section, run, name](const config::Tree& tree, const std::set<std::string>& skip) {
    auto root = std::make_shared<detail::SectionRoot<Options>>();
    root->section = section->c_str();
    std::set<std::string> ignored = skip;
    ignored.erase(*section);
    const config::Tree effective =
        detail::with_allocation_threads(tree, *section, detail::has_key<Options>("threads"));
    config::decode(effective.root(), *root, ignored);
    PreparedStage p;
    p.name = name;
    p.run_options = root->run;
    p.resolved_yaml = config::to_yaml(*root);
    p.run = [root, run](StageContext& ctx) { return (*run)(root->options, ctx); };
    return p;
  };
  add_entry(std::move(e));
}

/// The `pipeline:` section of `endoked run`: the stages to run, in order.
struct PipelineOptions {
  std::vector<std::string> stages;
  template <class V>
  void visit(V& v) {
    v("stages", stages, "stage names, run in this order; a stage that fails stops the run");
  }
};

/// Collective. Runs the stages `pipeline.stages` of `tree` in order, each reading its own
/// section; stops at the first stage whose code is not 0 and returns that code. Rank 0 prints
/// one summary line per stage at the end, then the table of the stages' key metrics (also
/// written to the run directory as pipeline.md).
int run_pipeline(const Registry& registry, const config::Tree& tree, dist::Communicator& comm,
                 const std::string& command_line);

}  // namespace endoked::engine
