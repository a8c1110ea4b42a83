// `endoked store info|verify DIR` (tools) and the `verify` stage of a pipeline.
#include <fmt/format.h>

#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "endoked/data/store.h"
#include "endoked/engine/stage.h"
#include "store_commands.h"

namespace endoked::recipes {
namespace {

struct VerifyOptions {
  std::string store;
  bool deep = true;
  template <class V>
  void visit(V& v) {
    v("store", store, "store directory to verify");
    v("deep", deep, "decode every image while verifying");
  }
};

}  // namespace

void register_store(engine::Registry& registry) {
  registry.add_tool({"store info",
                     "counts, shards, provenance",
                     {{"dir", "store directory", true}, {"--json", "print the manifest as JSON", false, true}},
                     [](const std::map<std::string, std::string>& a) {
                       return store_info(a.at("dir"), a.count("--json") > 0);
                     }});
  registry.add_tool({"store verify",
                     "checksums and counts; --deep decodes every image",
                     {{"dir", "store directory", true}, {"--deep", "decode every image", false, true}},
                     [](const std::map<std::string, std::string>& a) {
                       return store_verify(a.at("dir"), a.count("--deep") > 0);
                     }});
  // In a pipeline: a store that fails verification stops the run before any stage reads it.
  registry.add_stage<VerifyOptions>(
      {"verify", "verify a store (checksums, counts; deep: decode every image)", {},
       [](const VerifyOptions& o, engine::StageContext& c) {
         ENDOKED_CHECK(!o.store.empty(), "verify.store is empty: name the store to verify");
         std::int64_t failed = 0;
         engine::StageResult r;
         if (c.comm.is_root()) {
           const data::VerifyResult v = data::verify_store(o.store, data::VerifyOptions{o.deep});
           for (const auto& p : v.problems) log::error("verify: {}", p);
           failed = v.ok() ? 0 : 1;
           r.summary = {{"store", o.store}, {"ok", v.ok()}, {"exams", v.exams},
                        {"images", v.images}, {"decoded", v.decoded}, {"problems", v.problems}};
           r.line = v.ok() ? fmt::format("{} OK{}", o.store,
                                         o.deep ? fmt::format(" ({} images decoded)", v.decoded) : "")
                           : fmt::format("{} FAILED: {} problem(s)", o.store, v.problems.size());
           c.run.log_metrics({{"stage", "verify"}, {"summary", r.summary}});
           log::info("verify: {}", r.line);
         }
         c.comm.all_reduce(&failed, 1, dist::ReduceOp::kMax);
         r.code = failed ? 1 : 0;
         return r;
       }});
}

}  // namespace endoked::recipes
