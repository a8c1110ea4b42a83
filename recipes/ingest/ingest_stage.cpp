#include "ingest_stage.h"

#include <algorithm>

#include "endoked/core/config.h"
#include "endoked/core/error.h"
#include "endoked/core/sha256.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/data/store.h"
#include "endoked/engine/sharded_stage.h"

using nlohmann::json;

namespace endoked::recipes {

IngestSummary run_ingest(dist::Communicator& comm, const data::IngestOptions& opt,
                         const RunDir& run) {
  log::info("ingest: planning ({} layout)", opt.layout);
  const std::string plan_text = dist::run_on_root(comm, [&] {
    const data::IngestPlan plan = data::plan_ingest(opt);
    // The inputs the output must stay clear of (an overwrite there would destroy them); a rerun
    // with the same options over the same listing continues a preempted run.
    const std::vector<std::string> inputs = {opt.images_dir, opt.reports, opt.manifest};
    const std::string listing = plan.to_json().dump();
    data::begin_store(opt.output, opt.overwrite, "records", inputs,
                      engine::resume_key(config::to_yaml(opt), listing));
    return listing;
  });
  const data::IngestPlan plan = data::IngestPlan::from_json(json::parse(plan_text));
  const int shards = static_cast<int>(plan.shards.size());
  log::info("ingest: {} exams planned into {} shard(s) on {} rank(s); {} rejected while planning",
            plan.exams.size(), shards, comm.size(), plan.rejects.size());

  const std::string partial = data::partial_dir(opt.output);
  engine::ShardedWork w;
  w.stage = "ingest";
  w.shards = shards;
  w.unit = "images";
  w.resumable_output = opt.output;
  w.items = [&](int s) {
    std::int64_t n = 0;
    for (auto e : plan.shards[static_cast<std::size_t>(s)])
      n += static_cast<std::int64_t>(plan.exams[static_cast<std::size_t>(e)].images.size());
    return n;
  };
  w.work = [&](int s, Progress& progress) {
    return data::ingest_shard(plan, s, partial, opt, [&] { progress.add(); }).to_json();
  };
  const engine::ShardedResult done = engine::run_shards(comm, w);
  std::vector<data::ShardOutcome> outcomes;
  for (const auto& o : done.shards) outcomes.push_back(data::ShardOutcome::from_json(o));

  std::vector<data::Reject> rejects = plan.rejects;
  data::Manifest m;
  m.kind = "records";
  m.image_columns = {"images/bytes"};
  std::int64_t bytes_read = 0;
  for (auto& o : outcomes) {
    rejects.insert(rejects.end(), o.rejects.begin(), o.rejects.end());
    bytes_read += o.bytes_read;
    // Shards whose every exam was rejected stay (empty) so that shard numbers never shift.
    m.shards.push_back(o.info);
  }
  const double seconds = done.seconds;

  IngestSummary summary;
  summary.exams = m.exam_count();
  summary.images = m.image_count();
  summary.rejects = static_cast<std::int64_t>(rejects.size());
  summary.content_sha256 = m.content_sha256();
  summary.json = {{"exams", summary.exams},
                  {"images", summary.images},
                  {"shards", shards},
                  {"ranks", comm.size()},
                  {"bytes", bytes_read},
                  {"seconds", seconds},
                  {"images_per_s", seconds > 0 ? summary.images / seconds : 0.0},
                  {"rejects", data::summarise_rejects(rejects)},
                  {"converted", plan.counters},
                  {"content_sha256", summary.content_sha256}};

  // A run that failed (nothing valid; strict with rejects) never replaces what is there.
  summary.committed = summary.exams > 0 && !(opt.strict && summary.rejects > 0);
  summary.rejects_file =
      summary.committed ? opt.output + "/rejects.jsonl" : run.path() + "/rejects.jsonl";
  engine::commit_on_root(comm, [&] {
    m.provenance = engine::provenance("ingest", {{"source", plan.source}, {"layout", opt.layout}});
    m.summary = summary.json;
    std::string lines;
    for (const auto& r : rejects) lines += r.to_json().dump() + "\n";
    run.log_metrics(json{{"stage", "ingest"}, {"summary", summary.json}});
    if (!summary.committed) {
      files::atomic_write(summary.rejects_file, lines);
      data::abandon_store(opt.output);
      return;
    }
    files::atomic_write(partial + "/rejects.jsonl", lines);
    data::commit_store(opt.output, m);
  });

  log::info("ingest: {} exams, {} images in {} shard(s), {} rejected, {:.1f}s -> {}", summary.exams,
            summary.images, shards, summary.rejects, seconds, opt.output);
  for (const auto& [reason, n] : summary.json["rejects"]["by_reason"].items())
    log::info("  rejected {:>6} × {}", n.get<std::int64_t>(), reason);
  for (const auto& [what, n] : plan.counters) log::info("  converted {:>5} × {}", n, what);
  return summary;
}

}  // namespace endoked::recipes
