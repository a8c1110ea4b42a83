// `endoked localise` (a stage).
#include <fmt/format.h>

#include "endoked/engine/stage.h"
#include "localise_stage.h"

namespace endoked::recipes {

void register_localise(engine::Registry& registry) {
  registry.add_stage<LocaliseOptions>(
      {"localise",
       "MIL scores -> a CAM classifier on the selected images -> boxes from its CAMs (EndoKED's "
       "filters), on N ranks",
       {},
       [](const LocaliseOptions& o, engine::StageContext& c) {
         engine::StageResult r;
         r.summary = run_localise(c.comm, o, c.run);
         if (r.preempted()) return r;
         r.line =
             fmt::format("{} candidate(s), {} box(es) accepted, rejects {}",
                         r.summary["candidates"].get<std::int64_t>(),
                         r.summary["accepted"].get<std::int64_t>(), r.summary["rejects"].dump());
         if (r.summary.contains("truth")) {
           r.line += fmt::format("; box hit rate {:.3f} (IoU ≥ 0.5), mean IoU {:.3f}",
                                 r.summary["truth"]["hit_rate"].get<double>(),
                                 r.summary["truth"]["mean_iou"].get<double>());
           r.key_metrics = {
               {"box hit rate (IoU ≥ 0.5)", r.summary["truth"]["hit_rate"].get<double>()}};
         }
         r.line += " -> " + o.output;
         return r;
       }});
}

}  // namespace endoked::recipes
