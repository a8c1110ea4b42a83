// `endoked mil` and `endoked mil score` (stages).
#include <fmt/format.h>

#include "endoked/engine/stage.h"
#include "mil_stage.h"

namespace endoked::recipes {
namespace {
std::string metrics_line(const nlohmann::json& s) {
  std::string out;
  for (const char* k : {"exam_auc", "image_auc", "image_ap"})
    if (s.contains(k))
      out += fmt::format("{}{} {:.3f}", out.empty() ? "" : ", ", k, s[k].get<double>());
  return out.empty() ? "no labels to evaluate against" : out;
}
}  // namespace

void register_mil(engine::Registry& registry) {
  registry.add_stage<MilOptions>(
      {"mil",
       "exam images + report labels -> per-image polyp scores (WENO: attention-MIL and DSMIL "
       "teachers, a student), on N ranks",
       {},
       [](const MilOptions& o, engine::StageContext& c) {
         engine::StageResult r;
         r.summary = run_mil(c.comm, o, c.run);
         if (r.preempted()) return r;
         const auto& sel = r.summary["selection"];
         r.line = fmt::format("{}; {} epochs; localisation {} positive / {} negative images -> {}",
                              metrics_line(r.summary), r.summary["epochs"].get<std::int64_t>(),
                              sel["positives"].get<std::int64_t>(),
                              sel["negatives"].get<std::int64_t>(), o.output);
         for (const auto& [k, name] : {std::pair<const char*, const char*>{"exam_auc", "exam AUC"},
                                       {"image_auc", "image AUC"}})
           if (r.summary.contains(k)) r.key_metrics.emplace_back(name, r.summary[k].get<double>());
         return r;
       }});
  registry.add_stage<MilScoreOptions>(
      {"mil score",
       "score a record store's images with a trained mil model.pt, on N ranks",
       {{"--store", "mil_score.store", "record store to score"},
        {"--checkpoint", "mil_score.checkpoint", "model.pt of a mil output"},
        {"--output", "mil_score.output", "scores sidecar store to write"},
        {"--truth", "mil_score.truth", "truth sidecar for image AUC"},
        {"--labels", "mil_score.labels", "labels sidecar for exam AUC"}},
       [](const MilScoreOptions& o, engine::StageContext& c) {
         engine::StageResult r;
         r.summary = run_mil_score(c.comm, o, c.run);
         r.line = fmt::format(
             "{} images, {:.0f} images/s; {} -> {}", r.summary["images"].get<std::int64_t>(),
             r.summary["images_per_s"].get<double>(), metrics_line(r.summary), o.output);
         return r;
       }});
}

}  // namespace endoked::recipes
