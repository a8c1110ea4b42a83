#include "recipes/ingest/ingest_stage.h"

#include <algorithm>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/data/store.h"

using nlohmann::json;

namespace endoked::recipes {

IngestSummary run_ingest(dist::Communicator& comm, const data::IngestOptions& opt,
                         const RunDir& run) {
  log::info("ingest: planning ({} layout)", opt.layout);
  const std::string plan_text = dist::run_on_root(comm, [&] {
    data::IngestPlan plan = data::plan_ingest(opt);
    data::begin_store(opt.output, opt.overwrite);
    return plan.to_json().dump();
  });
  const data::IngestPlan plan = data::IngestPlan::from_json(json::parse(plan_text));
  const int shards = static_cast<int>(plan.shards.size());
  log::info("ingest: {} exams planned into {} shard(s) on {} rank(s); {} rejected while planning",
            plan.exams.size(), shards, comm.size(), plan.rejects.size());

  const std::string partial = data::partial_dir(opt.output);
  std::int64_t my_images = 0;
  for (int s = comm.rank(); s < shards; s += comm.size())
    for (auto e : plan.shards[static_cast<std::size_t>(s)])
      my_images += static_cast<std::int64_t>(plan.exams[static_cast<std::size_t>(e)].images.size());
  Progress progress("ingest", my_images, "images");
  json mine = json::array();
  std::string error;
  try {
    for (int s = comm.rank(); s < shards; s += comm.size()) {
      auto outcome = data::ingest_shard(plan, s, partial, opt, [&] { progress.add(); });
      json o = outcome.to_json();
      o["shard"] = s;
      mine.push_back(o);
    }
  } catch (const Error& e) {
    error = e.what();
  }
  progress.finish();
  // Errors travel with the results: every rank learns that one failed, none waits forever.
  const auto gathered = comm.all_gather_bytes(error.empty() ? mine.dump() : "!" + error);
  for (std::size_t r = 0; r < gathered.size(); ++r)
    if (!gathered[r].empty() && gathered[r][0] == '!')
      ENDOKED_FAIL("ingest failed on rank ", r, ": ", gathered[r].substr(1));

  std::vector<data::ShardOutcome> outcomes(static_cast<std::size_t>(shards));
  for (const auto& part : gathered)
    for (const auto& o : json::parse(part))
      outcomes[o["shard"].get<std::size_t>()] = data::ShardOutcome::from_json(o);

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
  double seconds = progress.elapsed_s();
  comm.all_reduce(&seconds, 1, dist::ReduceOp::kMax);

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

  dist::run_on_root(comm, [&] {
    m.provenance = {{"command", "ingest"},
                    {"git_revision", git_revision()},
                    {"created", utc_timestamp()},
                    {"source", plan.source},
                    {"layout", opt.layout}};
    m.summary = summary.json;
    std::string lines;
    for (const auto& r : rejects) lines += r.to_json().dump() + "\n";
    files::atomic_write(partial + "/rejects.jsonl", lines);
    data::commit_store(opt.output, m);
    run.log_metrics(json{{"stage", "ingest"}, {"summary", summary.json}});
    return std::string();
  });

  log::info("ingest: {} exams, {} images in {} shard(s), {} rejected, {:.1f}s -> {}", summary.exams,
            summary.images, shards, summary.rejects, seconds, opt.output);
  for (const auto& [reason, n] : summary.json["rejects"]["by_reason"].items())
    log::info("  rejected {:>6} × {}", n.get<std::int64_t>(), reason);
  for (const auto& [what, n] : plan.counters) log::info("  converted {:>5} × {}", n, what);
  return summary;
}

}  // namespace endoked::recipes
