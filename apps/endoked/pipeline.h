#pragma once
// `endoked run`: the stages of recipes/endoked.yaml in order, in one process group.
// Today: synth → ingest → verify → label → label eval (against the synthetic truth), with a
// printed summary.
#include "recipes/common/stage.h"
#include "recipes/ingest/ingest_stage.h"
#include "recipes/label/label_stage.h"
#include "recipes/synth/synth_stage.h"

namespace endoked::app {

struct VerifyStageOptions {
  bool enabled = true;
  bool deep = true;
  template <class V>
  void visit(V& v) {
    v("enabled", enabled, "verify the store after ingest");
    v("deep", deep, "decode every image while verifying");
  }
};

struct PipelineConfig {
  recipes::RunOptions run;
  data::SynthOptions synth;
  data::IngestOptions ingest;
  VerifyStageOptions verify;
  recipes::LabelOptions label;
  recipes::LabelEvalOptions label_eval;
  template <class V>
  void visit(V& v) {
    v("run", run);
    v("synth", synth);
    v("ingest", ingest);
    v("verify", verify);
    v("label", label);
    v("label_eval", label_eval);
  }
};

/// Collective. Returns the exit code.
int run_pipeline(dist::Communicator& comm, const PipelineConfig& config, const RunDir& run);

}  // namespace endoked::app
