#include "endoked/engine/stage.h"

#include <cstdlib>
#include <tuple>

#include <yaml-cpp/yaml.h>

#include <fmt/format.h>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/distributed/preemption.h"

namespace endoked::engine {

bool StageResult::preempted() {
  if (!summary.value("preempted", false)) return false;
  code = dist::kRequeueExitCode;
  line = fmt::format("preempted at step {} (checkpointed; rerun to continue)",
                     summary.value("steps", std::int64_t{0}));
  return true;
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

std::string section_name(const std::string& stage_name) {
  std::string s = stage_name;
  for (char& c : s)
    if (c == ' ') c = '_';
  return s;
}

void Registry::add_entry(StageEntry entry) {
  ENDOKED_CHECK(find_stage(entry.name) == nullptr, "stage '", entry.name, "' is registered twice");
  stages_.push_back(std::move(entry));
}

void Registry::add_tool(ToolDef def) {
  for (const auto& t : tools_)
    ENDOKED_CHECK(t.name != def.name, "tool '", def.name, "' is registered twice");
  tools_.push_back(std::move(def));
}

const StageEntry* Registry::find_stage(const std::string& name) const {
  for (const auto& s : stages_)
    if (s.name == name || s.section == name) return &s;
  return nullptr;
}

std::set<std::string> Registry::sections() const {
  std::set<std::string> s = {"pipeline"};
  for (const auto& e : stages_) s.insert(e.section);
  return s;
}

namespace detail {
config::Tree with_allocation_threads(const config::Tree& tree, const std::string& section,
                                     bool stage_has_threads) {
  const char* cpus = std::getenv("SLURM_CPUS_PER_TASK");
  if (!stage_has_threads || !cpus || std::atoi(cpus) < 1) return tree;
  const config::Node* node = tree.root().find(section);
  if (node && node->find("threads")) return tree;  // the user said
  config::Tree t = tree;
  t.set(section + ".threads=" + std::to_string(std::atoi(cpus)));
  return t;
}
}  // namespace detail

PreparedStage Registry::prepare(const std::string& name, const config::Tree& tree) const {
  const StageEntry* e = find_stage(name);
  if (!e) {
    std::string known;
    for (const auto& s : stages_) known += (known.empty() ? "" : ", ") + s.section;
    ENDOKED_FAIL("unknown stage '", name, "' (registered: ", known, ")");
  }
  return e->prepare(tree, sections());
}

namespace {

struct PipelineRoot {
  RunOptions run;
  PipelineOptions pipeline;
  template <class V>
  void visit(V& v) {
    v("run", run);
    v("pipeline", pipeline);
  }
};

// One YAML document: the keys of every part, in order (later parts win on equal keys, which
// only `run` shares and which is the same in every part).
std::string merge_yaml(const std::vector<std::string>& parts) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::set<std::string> done;
  for (const auto& text : parts) {
    const YAML::Node node = YAML::Load(text);
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      if (!done.insert(key).second) continue;
      out << YAML::Key << key << YAML::Value << kv.second;
    }
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace

int run_pipeline(const Registry& registry, const config::Tree& tree, dist::Communicator& comm,
                 const std::string& command_line) {
  PipelineRoot root;
  std::set<std::string> skip = registry.sections();
  skip.erase("pipeline");
  config::decode(tree.root(), root, skip);
  ENDOKED_CHECK(!root.pipeline.stages.empty(),
                "pipeline.stages is empty: list the stages to run, e.g. [synth, ingest, label]");
  // Every stage's config is decoded before any runs: a typo in the last stage's section is an
  // error now, not after an hour of work.
  std::vector<PreparedStage> prepared;
  std::vector<std::string> yaml = {config::to_yaml(root)};
  for (const auto& name : root.pipeline.stages) {
    prepared.push_back(registry.prepare(name, tree));
    yaml.push_back(prepared.back().resolved_yaml);
  }
  const RunDir run =
      open_run(root.run, "run", merge_yaml(yaml), command_line, comm.rank(), comm.size());
  StageContext ctx{comm, run};
  std::string names;
  for (const auto& n : root.pipeline.stages) names += (names.empty() ? "" : " -> ") + n;
  log::info("pipeline: {} on {} rank(s)", names, comm.size());
  std::vector<std::pair<std::string, std::string>> lines;
  std::vector<std::tuple<std::string, std::string, double>> metrics;
  int code = 0;
  for (auto& p : prepared) {
    log::info("pipeline: stage {}", p.name);
    const StageResult r = p.run(ctx);
    lines.emplace_back(p.name, r.line);
    for (const auto& [k, v] : r.key_metrics) metrics.emplace_back(p.name, k, v);
    if (r.code != 0) {
      log::error("pipeline: stage {} ended with exit code {}; the later stages do not run", p.name,
                 r.code);
      code = r.code;
      break;
    }
  }
  if (comm.is_root()) {
    std::string text = "\nendoked pipeline summary\n";
    for (const auto& [name, line] : lines) text += fmt::format("  {:<11} {}\n", name, line);
    for (std::size_t i = lines.size(); i < prepared.size(); ++i)
      text += fmt::format("  {:<11} not run\n", prepared[i].name);
    text += fmt::format("  {:<11} {}\n", "run dir", run.path());
    if (!metrics.empty()) {
      std::string table = "| stage | key metric | value |\n|---|---|---|\n";
      text += "\nkey metrics\n";
      for (const auto& [stage, name, value] : metrics) {
        text += fmt::format("  {:<11} {:<44} {:.3f}\n", stage, name, value);
        table += fmt::format("| {} | {} | {:.3f} |\n", stage, name, value);
      }
      files::atomic_write(run.path() + "/pipeline.md", "# pipeline: key metrics\n\n" + table);
    }
    fmt::print("{}", text);
    std::fflush(stdout);
  }
  return code;
}

}  // namespace endoked::engine
