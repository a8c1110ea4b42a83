// `endoked synth`: the synthetic corpus with ground truth.
#include <fmt/format.h>

#include "endoked/engine/stage.h"
#include "synth_stage.h"

namespace endoked::recipes {

void register_synth(engine::Registry& registry) {
  registry.add_stage<data::SynthOptions>(
      {"synth", "write a synthetic corpus with ground truth", {},
       [](const data::SynthOptions& o, engine::StageContext& c) {
         engine::StageResult r;
         r.summary = run_synth(c.comm, o, c.run);
         const auto& s = r.summary;
         r.line = fmt::format("{} exams, {} frames ({} with polyps), {:.0f} frames/s -> {}; truth -> {}",
                              s["exams"].get<std::int64_t>(), s["images"].get<std::int64_t>(),
                              s["positive_images"].get<std::int64_t>(),
                              s["images_per_s"].get<double>(), o.output, o.truth_dir());
         return r;
       }});
}

}  // namespace endoked::recipes
