// `endoked refine` (a stage).
#include <fmt/format.h>

#include "endoked/engine/stage.h"
#include "refine_stage.h"

namespace endoked::recipes {

void register_refine(engine::Registry& registry) {
  registry.add_stage<RefineOptions>(
      {"refine",
       "boxes -> masks with a registered refiner (box, ellipse, grabcut, cam), judged by the "
       "acceptance rules, on N ranks",
       {},
       [](const RefineOptions& o, engine::StageContext& c) {
         engine::StageResult r;
         r.summary = run_refine(c.comm, o, c.run);
         r.line =
             fmt::format("{}: {} image(s), {} accepted, rejects {}", o.refiner,
                         r.summary["refined"].get<std::int64_t>(),
                         r.summary["accepted"].get<std::int64_t>(), r.summary["rejects"].dump());
         if (r.summary.contains("truth")) {
           r.line += fmt::format("; mask Dice {:.3f} (filled boxes {:.3f}), IoU {:.3f}",
                                 r.summary["truth"]["dice"].get<double>(),
                                 r.summary["truth"]["box_dice"].get<double>(),
                                 r.summary["truth"]["iou"].get<double>());
           r.key_metrics = {{"pseudo-mask Dice", r.summary["truth"]["dice"].get<double>()}};
         }
         r.line += " -> " + o.output;
         return r;
       }});
}

}  // namespace endoked::recipes
