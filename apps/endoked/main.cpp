// endoked — one executable, one subcommand per stage.
//   endoked <command> --config base.yaml [--config overlay.yaml …] [--set a.b=c …]
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "endoked/distributed/runtime.h"
#include "pipeline.h"
#include "recipes/label/label_stage.h"
#include "recipes/store/store_commands.h"

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

template <typename Root, typename Fn>
int run_command(dist::Runtime& rt, const std::string& name, const ConfigArgs& args,
                const std::string& cmdline, Fn&& fn) {
  const config::Tree tree = recipes::load_tree(args.files, args.sets);
  const Root root = recipes::decode_root<Root>(tree);
  const RunDir run =
      recipes::open_run(root.run, name, config::to_yaml(root), cmdline, rt.rank(), rt.size());
  return fn(root, run);
}

}  // namespace

int main(int argc, char** argv) {
  // glibc returns large buffers to the OS on every free by default, which makes LibTorch training
  // 2–3× slower (every step maps and unmaps its tensors); keep them. Raising only the trim
  // threshold is not enough: the mmap threshold decides whether big blocks come from the heap.
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);

  CLI::App app{"endoked: colonoscopy records -> labelled image datasets -> trained models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("endoked ") + git_revision());

  ConfigArgs synth_args, ingest_args, run_args, label_args, eval_args;
  auto* synth = app.add_subcommand("synth", "write a synthetic corpus with ground truth");
  add_config_args(synth, synth_args, config::help_text(recipes::SynthConfig{}));
  auto* ingest = app.add_subcommand("ingest", "raw exam records -> record store");
  add_config_args(ingest, ingest_args, config::help_text(recipes::IngestConfig{}));
  bool ingest_strict = false;
  ingest->add_flag("--strict", ingest_strict,
                   "exit non-zero (3) when any input was rejected (= ingest.strict)");
  auto* pipeline =
      app.add_subcommand("run", "run the pipeline recipe (demo: synth -> ingest -> verify)");
  add_config_args(pipeline, run_args, config::help_text(app::PipelineConfig{}));

  auto* label = app.add_subcommand(
      "label", "report text -> exam labels with evidence (rules | llm | ensemble), on N ranks");
  add_config_args(label, label_args, config::help_text(recipes::LabelConfig{}));
  label->require_subcommand(0, 1);
  auto* label_eval =
      label->add_subcommand("eval", "score a labels store against a truth store or a CSV");
  add_config_args(label_eval, eval_args, config::help_text(recipes::LabelEvalConfig{}));
  std::string eval_labels, eval_truth;
  label_eval->add_option("--labels", eval_labels, "labels store (= label_eval.labels)");
  label_eval->add_option("--truth", eval_truth, "truth store or CSV (= label_eval.truth)");
  auto* label_export = label->add_subcommand("export", "labels store -> CSV and/or JSONL");
  std::string export_dir, export_csv, export_jsonl;
  label_export->add_option("labels", export_dir, "labels store")->required();
  label_export->add_option("--csv", export_csv, "CSV file to write");
  label_export->add_option("--jsonl", export_jsonl, "JSONL file to write");

  auto* store = app.add_subcommand("store", "inspect and check record stores");
  store->require_subcommand(1);
  std::string store_dir;
  bool info_json = false, deep = false;
  auto* info = store->add_subcommand("info", "counts, shards, provenance");
  info->add_option("dir", store_dir, "store directory")->required();
  info->add_flag("--json", info_json, "print the manifest as JSON");
  auto* verify =
      store->add_subcommand("verify", "checksums and counts; --deep decodes every image");
  verify->add_option("dir", store_dir, "store directory")->required();
  verify->add_flag("--deep", deep, "decode every image");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  const std::string cmdline = command_line(argc, argv);
  int code = 0;
  if (*info || *verify || *label_export) {  // single-process commands: no MPI needed
    try {
      if (*label_export)
        recipes::export_labels(export_dir, export_csv, export_jsonl);
      else
        code = *info ? recipes::store_info(store_dir, info_json)
                     : recipes::store_verify(store_dir, deep);
    } catch (const Error& e) {
      log::error("{}", e.what());
      code = 2;
    }
    return code;
  }

  std::unique_ptr<dist::Runtime> rt;
  try {
    rt = std::make_unique<dist::Runtime>(&argc, &argv);
    if (*synth) {
      code = run_command<recipes::SynthConfig>(*rt, "synth", synth_args, cmdline,
                                               [&](const auto& c, const RunDir& run) {
                                                 recipes::run_synth(rt->world(), c.synth, run);
                                                 return 0;
                                               });
    } else if (*ingest) {
      if (ingest_strict) ingest_args.sets.push_back("ingest.strict=true");
      code = run_command<recipes::IngestConfig>(
          *rt, "ingest", ingest_args, cmdline, [&](const auto& c, const RunDir& run) {
            const auto s = recipes::run_ingest(rt->world(), c.ingest, run);
            if (s.exams == 0) {
              log::error("ingest: no valid exam found");
              return 1;
            }
            if (c.ingest.strict && s.rejects > 0) {
              log::error(
                  "ingest: {} input(s) rejected and ingest.strict is set (see {}/rejects.jsonl)",
                  s.rejects, c.ingest.output);
              return 3;
            }
            return 0;
          });
    } else if (*label_eval) {
      if (!eval_labels.empty()) eval_args.sets.push_back("label_eval.labels=" + eval_labels);
      if (!eval_truth.empty()) eval_args.sets.push_back("label_eval.truth=" + eval_truth);
      code = run_command<recipes::LabelEvalConfig>(*rt, "label_eval", eval_args, cmdline,
                                                   [&](const auto& c, const RunDir& run) {
                                                     if (rt->rank() == 0)
                                                       recipes::run_label_eval(c.label_eval, run);
                                                     return 0;
                                                   });
    } else if (*label) {
      code = run_command<recipes::LabelConfig>(*rt, "label", label_args, cmdline,
                                               [&](const auto& c, const RunDir& run) {
                                                 recipes::run_label(rt->world(), c.label, run);
                                                 return 0;
                                               });
    } else if (*pipeline) {
      code = run_command<app::PipelineConfig>(
          *rt, "run", run_args, cmdline,
          [&](const auto& c, const RunDir& run) { return app::run_pipeline(rt->world(), c, run); });
    }
  } catch (const std::exception& e) {
    if (rt) rt->fail(e.what());
    log::error("{}", e.what());
    return 2;
  }
  return code;
}
