// `endoked label`, `endoked label eval` (stages) and `endoked label export` (a tool).
#include <fmt/format.h>

#include "endoked/engine/stage.h"
#include "label_stage.h"

namespace endoked::recipes {

void register_label(engine::Registry& registry) {
  registry.add_stage<LabelOptions>(
      {"label", "report text -> exam labels with evidence (rules | llm | ensemble), on N ranks", {},
       [](const LabelOptions& o, engine::StageContext& c) {
         engine::StageResult r;
         r.summary = run_label(c.comm, o, c.run);
         const auto& s = r.summary;
         const auto& counts = s["polyp_present"];
         r.line = fmt::format(
             "{} reports ({} positive, {} negative, {} uncertain), {:.0f} reports/s, {} -> {}",
             s["exams"].get<std::int64_t>(), counts.value("positive", 0),
             counts.value("negative", 0), counts.value("uncertain", 0),
             s["reports_per_s"].get<double>(), o.backend, o.output);
         return r;
       }});
  registry.add_stage<LabelEvalOptions>(
      {"label eval",
       "score a labels store against a truth store or a CSV",
       {{"--labels", "label_eval.labels", "labels store"},
        {"--truth", "label_eval.truth", "truth store or CSV"}},
       [](const LabelEvalOptions& o, engine::StageContext& c) {
         engine::StageResult r;
         if (!c.comm.is_root()) return r;  // a single-process evaluation
         const auto e = run_label_eval(o, c.run);
         r.summary = e;
         const auto field = [&](const char* f) {
           return e["fields"].contains(f) ? e["fields"][f]["accuracy"].get<double>() : 0.0;
         };
         r.line = fmt::format(
             "polyp_present F1 {:.3f}, accuracy {:.3f}; polyp size {:.3f}, segment {:.3f}",
             e["polyp_present_positive_f1"].get<double>(), field("polyp_present"),
             field("polyp.size"), field("polyp.segment"));
         r.key_metrics = {
             {"label F1 (polyp present)", e["polyp_present_positive_f1"].get<double>()}};
         return r;
       }});
  registry.add_tool({"label export",
                     "labels store -> CSV and/or JSONL",
                     {{"labels", "labels store", true},
                      {"--csv", "CSV file to write"},
                      {"--jsonl", "JSONL file to write"}},
                     [](const std::map<std::string, std::string>& a) {
                       const auto get = [&](const char* k) {
                         return a.count(k) ? a.at(k) : std::string();
                       };
                       export_labels(get("labels"), get("--csv"), get("--jsonl"));
                       return 0;
                     }});
}

}  // namespace endoked::recipes
