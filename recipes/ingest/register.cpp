// `endoked ingest`: raw exam records -> a record store.
#include <fmt/format.h>

#include "endoked/core/log.h"
#include "endoked/engine/stage.h"
#include "ingest_stage.h"

namespace endoked::recipes {

void register_ingest(engine::Registry& registry) {
  registry.add_stage<data::IngestOptions>(
      {"ingest",
       "raw exam records -> record store",
       {{"--strict", "ingest.strict", "exit non-zero (3) when any input was rejected", true}},
       [](const data::IngestOptions& o, engine::StageContext& c) {
         const IngestSummary s = run_ingest(c.comm, o, c.run);
         engine::StageResult r;
         r.summary = s.json;
         r.line = fmt::format("{} exams, {} images, {} rejected -> {} (content sha256 {})",
                              s.exams, s.images, s.rejects, o.output,
                              s.content_sha256.substr(0, 16));
         if (s.exams == 0) {
           log::error("ingest: no valid exam found; nothing was written to {} (rejects: {})",
                      o.output, s.rejects_file);
           r.code = 1;
         } else if (o.strict && s.rejects > 0) {
           log::error(
               "ingest: {} input(s) rejected and ingest.strict is set; nothing was written to {} "
               "(rejects: {})",
               s.rejects, o.output, s.rejects_file);
           r.code = 3;
         }
         return r;
       }});
}

}  // namespace endoked::recipes
