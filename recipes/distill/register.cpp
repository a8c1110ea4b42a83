// `endoked distill` and `endoked segment` (stages).
#include <fmt/format.h>

#include "distill_stage.h"
#include "endoked/engine/stage.h"
#include "segment_stage.h"

namespace endoked::recipes {

void register_distill(engine::Registry& registry) {
  registry.add_stage<DistillOptions>(
      {"distill",
       "masks mined from records -> a segmentation model (U-Net, structure loss), with "
       "self-training rounds, on N ranks",
       {},
       [](const DistillOptions& o, engine::StageContext& c) {
         engine::StageResult r;
         r.summary = run_distill(c.comm, o, c.run);
         if (r.preempted()) return r;
         const auto& rounds = r.summary["rounds"];
         r.line = fmt::format("{} round(s) on {} mask(s); {} of {} prediction(s) accepted",
                              rounds.size(), rounds[0]["trained_on"].get<std::int64_t>(),
                              r.summary["accepted"].get<std::int64_t>(),
                              r.summary["predicted"].get<std::int64_t>());
         if (r.summary.contains("truth")) {
           r.line += fmt::format("; Dice on the training images {:.3f} (pseudo masks {:.3f})",
                                 r.summary["truth"]["dice"].get<double>(),
                                 rounds[0]["truth"]["train_masks_dice"].get<double>());
           r.key_metrics.emplace_back("distilled Dice (the pseudo masks' images)",
                                      r.summary["truth"]["dice"].get<double>());
         }
         if (r.summary.contains("heldout")) {
           r.line += fmt::format(", held-out {:.3f} ({} images)",
                                 r.summary["heldout"]["dice"].get<double>(),
                                 rounds.back()["heldout_images"].get<std::int64_t>());
           r.key_metrics.emplace_back("distilled Dice (held-out polyp images)",
                                      r.summary["heldout"]["dice"].get<double>());
         }
         r.line += " -> " + o.output;
         return r;
       }});
  registry.add_stage<SegmentOptions>(
      {"segment",
       "a distilled model on a folder of images or a record store -> PNG masks and overlays, "
       "on N ranks",
       {{"--checkpoint", "segment.checkpoint", "a distill output folder (or its model.pt)"},
        {"--images", "segment.images", "a folder of images"},
        {"--store", "segment.store", "a record store"},
        {"--output", "segment.output", "a new or empty folder"}},
       [](const SegmentOptions& o, engine::StageContext& c) {
         engine::StageResult r;
         r.summary = run_segment(c.comm, o, c.run);
         r.line = fmt::format("{} mask(s) written, {} skipped, {:.0f} images/s -> {}",
                              r.summary["written"].get<std::int64_t>(),
                              r.summary["skipped"].get<std::int64_t>(),
                              r.summary["images_per_s"].get<double>(), o.output);
         return r;
       }});
}

}  // namespace endoked::recipes
