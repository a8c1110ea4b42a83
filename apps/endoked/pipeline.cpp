#include "pipeline.h"

#include <fmt/format.h>

#include "endoked/core/log.h"
#include "endoked/data/store.h"

namespace endoked::app {

int run_pipeline(dist::Communicator& comm, const PipelineConfig& cfg, const RunDir& run) {
  log::info("pipeline: synth -> ingest -> verify -> label -> label eval on {} rank(s)", comm.size());
  const nlohmann::json synth = recipes::run_synth(comm, cfg.synth, run);
  const recipes::IngestSummary ingest = recipes::run_ingest(comm, cfg.ingest, run);
  int code = 0;
  std::string verdict = "skipped";
  if (cfg.verify.enabled) {
    data::VerifyResult v;
    if (comm.is_root()) {
      v = data::verify_store(cfg.ingest.output, data::VerifyOptions{cfg.verify.deep});
      for (const auto& p : v.problems) log::error("verify: {}", p);
      verdict = v.ok() ? (cfg.verify.deep ? "OK (every image decoded)" : "OK") : "FAILED";
      run.log_metrics(
          {{"stage", "verify"}, {"ok", v.ok()}, {"decoded", v.decoded}, {"problems", v.problems}});
    }
    std::int64_t failed = comm.is_root() && !v.ok() ? 1 : 0;
    comm.all_reduce(&failed, 1, dist::ReduceOp::kMax);
    code = failed ? 1 : 0;
  }
  const nlohmann::json label = recipes::run_label(comm, cfg.label, run);
  nlohmann::json eval;
  if (comm.is_root() && !cfg.label_eval.truth.empty()) eval = recipes::run_label_eval(cfg.label_eval, run);
  if (comm.is_root()) {
    const auto& counts = label["polyp_present"];
    const std::string label_line = fmt::format(
        "{} reports ({} positive, {} negative, {} uncertain), {:.0f} reports/s, {} -> {}",
        label["exams"].get<std::int64_t>(), counts.value("positive", 0), counts.value("negative", 0),
        counts.value("uncertain", 0), label["reports_per_s"].get<double>(), cfg.label.backend, cfg.label.output);
    const std::string eval_line =
        eval.is_null() ? std::string("skipped (no label_eval.truth)")
                       : fmt::format("polyp_present F1 {:.3f}, accuracy {:.3f}; polyp size {:.3f}, segment {:.3f}",
                                     eval["polyp_present_positive_f1"].get<double>(),
                                     eval["fields"]["polyp_present"]["accuracy"].get<double>(),
                                     eval["fields"].contains("polyp.size") ? eval["fields"]["polyp.size"]["accuracy"].get<double>() : 0.0,
                                     eval["fields"].contains("polyp.segment") ? eval["fields"]["polyp.segment"]["accuracy"].get<double>() : 0.0);
    fmt::print(
        "\nendoked demo summary\n"
        "  synth   {} exams, {} frames ({} with polyps), {:.0f} frames/s -> {}\n"
        "          ground truth -> {}\n"
        "  ingest  {} exams, {} images, {} rejected -> {}\n"
        "          content sha256 {}\n"
        "  verify  {}\n"
        "  label   {}\n"
        "  eval    {}\n"
        "  run dir {}\n",
        synth["exams"].get<std::int64_t>(), synth["images"].get<std::int64_t>(),
        synth["positive_images"].get<std::int64_t>(), synth["images_per_s"].get<double>(),
        cfg.synth.output, cfg.synth.truth_dir(), ingest.exams, ingest.images, ingest.rejects,
        cfg.ingest.output, ingest.content_sha256, verdict, label_line, eval_line, run.path());
  }
  return code;
}

}  // namespace endoked::app
