#include "synth_stage.h"

#include <filesystem>

#include "endoked/core/config.h"
#include "endoked/core/error.h"
#include "endoked/core/sha256.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/data/store.h"
#include "endoked/engine/sharded_stage.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::recipes {

nlohmann::json run_synth(dist::Communicator& comm, const data::SynthOptions& opt,
                         const RunDir& run) {
  const int shards = data::synth_shard_count(opt);
  const std::string out_partial = data::partial_dir(opt.output);
  const std::string truth_partial = data::partial_dir(opt.truth_dir());
  const auto nested = [](std::string a, std::string b) {
    a = fs::weakly_canonical(fs::absolute(a)).string() + "/";
    b = fs::weakly_canonical(fs::absolute(b)).string() + "/";
    return a.rfind(b, 0) == 0 || b.rfind(a, 0) == 0;
  };
  ENDOKED_CHECK(!nested(opt.output, opt.truth_dir()), "synth.output '", opt.output,
                "' and synth.truth '", opt.truth_dir(), "' must not contain one another");
  // A rerun with the same options continues a preempted one (same options: same corpus).
  engine::begin_outputs(
      comm, {{opt.output, opt.format == "store" ? "records" : "corpus"}, {opt.truth_dir(), "truth"}},
      opt.overwrite, {}, engine::resume_key(config::to_yaml(opt)));

  // Rank 0's progress line shows its own share of frames.
  engine::ShardedWork w;
  w.stage = "synth";
  w.shards = shards;
  w.unit = "images";
  w.resumable_output = opt.output;
  w.items = [&](int s) {
    const std::int64_t exams =
        std::min(opt.exams, (s + 1) * opt.exams_per_shard) - s * opt.exams_per_shard;
    return exams * (opt.min_images + opt.max_images) / 2;
  };
  w.work = [&](int s, Progress& progress) -> json {
    auto o = data::synth_shard(opt, s, out_partial, truth_partial, [&] { progress.add(); });
    return {{"records", o.records},
            {"truth", o.truth},
            {"exams", o.exams},
            {"images", o.images},
            {"positive_images", o.positive_images}};
  };
  const engine::ShardedResult done = engine::run_shards(comm, w);
  const std::vector<json>& by_shard = done.shards;
  const double slowest = done.seconds;
  std::int64_t exams = 0, images = 0, positive = 0;
  for (const auto& o : by_shard) {
    exams += o["exams"].get<std::int64_t>();
    images += o["images"].get<std::int64_t>();
    positive += o["positive_images"].get<std::int64_t>();
  }
  json summary = {{"exams", exams},
                  {"images", images},
                  {"positive_images", positive},
                  {"shards", shards},
                  {"ranks", comm.size()},
                  {"seconds", slowest},
                  {"images_per_s", slowest > 0 ? static_cast<double>(images) / slowest : 0.0},
                  {"format", opt.format},
                  {"output", opt.output},
                  {"truth", opt.truth_dir()}};

  engine::commit_on_root(comm, [&] {
    const auto to_info = &data::ShardInfo::from_json;
    const json provenance = engine::provenance("synth", {{"source", "synthetic"}, {"seed", opt.seed}});
    data::Manifest truth;
    truth.kind = "truth";
    truth.image_columns = {"images/mask"};
    truth.provenance = provenance;
    truth.provenance["corpus"] = opt.output;
    truth.summary = summary;
    for (const auto& o : by_shard) truth.shards.push_back(to_info(o["truth"]));
    if (opt.format == "store") {
      data::Manifest records;
      records.kind = "records";
      records.image_columns = {"images/bytes"};
      records.provenance = provenance;
      records.summary = summary;
      for (const auto& o : by_shard) records.shards.push_back(to_info(o["records"]));
      data::commit_store(opt.output, records);
      summary["content_sha256"] = records.content_sha256();
    } else {
      data::synth_join_reports(opt, out_partial);
      // The raw corpus is not a store; its manifest-like file says what it is.
      data::commit_directory(opt.output, "corpus.json",
                             json{{"format", "endoked-raw-corpus"},
                                  {"layout", "folders"},
                                  {"images_dir", "images"},
                                  {"reports", "reports.csv"},
                                  {"provenance", provenance},
                                  {"summary", summary}}
                                 .dump(2));
    }
    data::commit_store(opt.truth_dir(), truth);
    summary["truth_content_sha256"] = truth.content_sha256();
    run.log_metrics(json{{"stage", "synth"}, {"summary", summary}});
    log::info(
        "synth: {} exams, {} images ({} with polyps) in {:.1f}s = {:.0f} images/s on {} rank(s) -> "
        "{}",
        exams, images, positive, slowest, summary["images_per_s"].get<double>(), comm.size(),
        opt.output);
  });
  return summary;
}

}  // namespace endoked::recipes
