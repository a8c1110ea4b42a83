// endoked — one executable; its commands come from the stage registry.
//   endoked <stage> --config base.yaml [--config overlay.yaml …] [--set a.b=c …]
//   endoked run --config recipes/endoked.yaml        (the stages listed in pipeline.stages)
//   endoked <tool> ARGS                               (store info|verify, label export)
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <map>

#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "endoked/distributed/preemption.h"
#include "endoked/distributed/runtime.h"
#include "endoked/engine/sharded_stage.h"
#include "endoked/engine/stage.h"

namespace endoked::recipes {
void register_all(engine::Registry& registry);  // generated from the stage folders
}

namespace {

using namespace endoked;

struct ConfigArgs {
  std::vector<std::string> files;
  std::vector<std::string> sets;
};

void add_config_args(CLI::App* cmd, ConfigArgs& args, const std::string& keys_help) {
  cmd->add_option("-c,--config", args.files,
                  "YAML config; repeat for overlays (later files override earlier ones)");
  cmd->add_option("-s,--set", args.sets, "override one key: a.b=value (YAML value); repeatable");
  cmd->footer("Config keys (defaults):\n" + keys_help);
}

std::string command_line(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

// "label eval" → the subcommand eval of label, creating label as a group when it is not a
// command of its own.
CLI::App* subcommand(CLI::App& app, std::map<std::string, CLI::App*>& made,
                     const std::string& path, const std::string& summary) {
  const auto space = path.rfind(' ');
  CLI::App* parent = &app;
  if (space != std::string::npos) {
    const std::string up = path.substr(0, space);
    auto it = made.find(up);
    if (it == made.end()) {
      parent = subcommand(app, made, up, "");
      parent->require_subcommand(1);
    } else {
      parent = it->second;
      parent->require_subcommand(0, 1);
    }
  }
  auto it = made.find(path);
  if (it != made.end()) {  // a group made earlier for a child: now a command with a summary
    it->second->description(summary);
    it->second->require_subcommand(0, 1);
    return it->second;
  }
  CLI::App* cmd = parent->add_subcommand(path.substr(space == std::string::npos ? 0 : space + 1),
                                         summary.empty() ? path + " commands" : summary);
  made[path] = cmd;
  return cmd;
}

struct StageCommand {
  const engine::StageEntry* entry;
  CLI::App* cmd;
  ConfigArgs args;
  std::map<std::string, std::string> values;  // flag → value given
  std::map<std::string, bool> switches;
};

struct ToolCommand {
  const engine::ToolDef* tool;
  CLI::App* cmd;
  std::map<std::string, std::string> values;
  std::map<std::string, bool> switches;
};

}  // namespace

int main(int argc, char** argv) {
  // glibc returns large buffers to the OS on every free by default, which makes LibTorch training
  // 2–3× slower (every step maps and unmaps its tensors); keep them. Raising only the trim
  // threshold is not enough: the mmap threshold decides whether big blocks come from the heap.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);

  engine::Registry registry;
  try {
    recipes::register_all(registry);
  } catch (const Error& e) {
    log::error("{}", e.what());
    return 2;
  }

  CLI::App app{"endoked: colonoscopy records -> labelled image datasets -> trained models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("endoked ") + git_revision());

  std::map<std::string, CLI::App*> made;
  std::vector<std::unique_ptr<StageCommand>> stages;
  for (const auto& e : registry.stages()) {
    auto s = std::make_unique<StageCommand>();
    s->entry = &e;
    s->cmd = subcommand(app, made, e.name, e.summary);
    add_config_args(s->cmd, s->args, e.keys_help());
    for (const auto& f : e.flags) {
      if (f.is_switch)
        s->cmd->add_flag(f.flag, s->switches[f.flag], f.help + " (= " + f.key + ")");
      else
        s->cmd->add_option(f.flag, s->values[f.flag], f.help + " (= " + f.key + ")");
    }
    stages.push_back(std::move(s));
  }
  std::vector<std::unique_ptr<ToolCommand>> tools;
  for (const auto& t : registry.tools()) {
    auto c = std::make_unique<ToolCommand>();
    c->tool = &t;
    c->cmd = subcommand(app, made, t.name, t.summary);
    for (const auto& a : t.args) {
      if (a.is_switch) {
        c->cmd->add_flag(a.name, c->switches[a.name], a.help);
      } else {
        auto* opt = c->cmd->add_option(a.name, c->values[a.name], a.help);
        if (a.required) opt->required();
      }
    }
    tools.push_back(std::move(c));
  }
  ConfigArgs run_args;
  auto* pipeline = app.add_subcommand("run", "run the stages listed in pipeline.stages, in order");
  std::string sections;
  for (const auto& s : registry.sections()) sections += (sections.empty() ? "" : ", ") + s;
  add_config_args(pipeline, run_args,
                  config::help_text(engine::PipelineOptions{}) +
                      "  … and the section of each listed stage (" + sections +
                      "): see endoked <stage> --help\n");

  // CLI11 reports an unknown command only as "a subcommand is required": name it instead.
  bool known_command = argc < 2 || argv[1][0] == '-';
  std::string known;
  for (const auto* c : app.get_subcommands({})) {
    known += (known.empty() ? "" : ", ") + c->get_name();
    known_command = known_command || c->get_name() == argv[1];
  }
  if (!known_command) {
    std::fprintf(stderr, "endoked: unknown command '%s' (commands: %s; see endoked --help)\n",
                 argv[1], known.c_str());
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2 (the documented table).
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  const std::string cmdline = command_line(argc, argv);

  for (const auto& t : tools) {  // single-process commands: no MPI needed
    if (!t->cmd->parsed()) continue;
    std::map<std::string, std::string> a;
    for (const auto& [k, v] : t->values)
      if (!v.empty()) a[k] = v;
    for (const auto& [k, on] : t->switches)
      if (on) a[k] = "1";
    try {
      return t->tool->run(a);
    } catch (const std::exception& e) {
      log::error("{}", e.what());
      return 2;
    }
  }

  std::unique_ptr<dist::Runtime> rt;
  try {
    rt = std::make_unique<dist::Runtime>(&argc, &argv);
    // SIGUSR1/SIGTERM (Slurm's warning, scancel) set a flag instead of killing the process:
    // sharded stages finish their current shard and exit 75, the trainer checkpoints and exits
    // 75; a rerun continues.
    dist::Preemption preemption;
    if (*pipeline) {
      const config::Tree tree = engine::load_tree(run_args.files, run_args.sets);
      return engine::run_pipeline(registry, tree, rt->world(), cmdline);
    }
    // The deepest parsed stage command ("label eval" rather than "label").
    StageCommand* chosen = nullptr;
    for (auto& s : stages)
      if (s->cmd->parsed() &&
          (!chosen || s->entry->name.size() > chosen->entry->name.size()))
        chosen = s.get();
    ENDOKED_CHECK(chosen != nullptr, "no command given");
    for (const auto& f : chosen->entry->flags) {
      if (f.is_switch && chosen->switches[f.flag]) chosen->args.sets.push_back(f.key + "=true");
      if (!f.is_switch && !chosen->values[f.flag].empty())
        chosen->args.sets.push_back(f.key + "=" + chosen->values[f.flag]);
    }
    const config::Tree tree = engine::load_tree(chosen->args.files, chosen->args.sets);
    const engine::PreparedStage p = registry.prepare(chosen->entry->name, tree);
    const RunDir run = engine::open_run(p.run_options, chosen->entry->section, p.resolved_yaml,
                                        cmdline, rt->rank(), rt->size());
    engine::StageContext ctx{rt->world(), run};
    const engine::StageResult r = p.run(ctx);
    run.log_metrics({{"stage", chosen->entry->section}, {"exit_code", r.code}});
    return r.code;
  } catch (const engine::Preempted& e) {  // every rank throws it, agreed by a collective
    log::warn("{}", e.what());
    return dist::kRequeueExitCode;
  } catch (const std::exception& e) {
    if (rt) rt->fail(e.what());
    log::error("{}", e.what());
    return 2;
  }
}
