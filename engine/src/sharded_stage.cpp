#include "endoked/engine/sharded_stage.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <yaml-cpp/yaml.h>
#include "endoked/core/error.h"
#include "endoked/core/sha256.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/run_dir.h"
#include "endoked/distributed/preemption.h"

using nlohmann::json;
namespace fs = std::filesystem;

namespace endoked::engine {

std::string resume_key(const std::string& options_yaml, const std::string& inputs) {
  YAML::Node node = YAML::Load(options_yaml);
  for (const char* key : {"threads", "overwrite"})
    if (node.IsMap() && node[key]) node.remove(key);
  YAML::Emitter out;
  out << node;
  return sha256_hex(std::string(out.c_str()) + "\n" + inputs);
}

void begin_outputs(dist::Communicator& comm, const std::vector<Output>& outputs, bool overwrite,
                   const std::vector<std::string>& inputs, const std::string& resume_key) {
  dist::run_on_root(comm, [&] {
    std::vector<std::string> begun;
    try {
      for (const auto& o : outputs) {
        data::begin_store(o.dir, overwrite, o.kind, inputs, resume_key);
        begun.push_back(o.dir);
      }
    } catch (...) {
      for (const auto& d : begun) data::abandon_store(d);
      throw;
    }
    return std::string();
  });
}

ShardedResult run_shards(dist::Communicator& comm, const ShardedWork& w) {
  std::int64_t mine_total = 0;
  if (w.items)
    for (int s = comm.rank(); s < w.shards; s += comm.size()) mine_total += w.items(s);
  Progress progress(w.stage, mine_total, w.unit);
  json mine = {{"shards", json::array()}, {"rank", nullptr}, {"preempted", false}};
  std::string error;
  dist::Preemption preemption;
  const bool resumable = !w.resumable_output.empty();
  // Test hook: rank 0 raises SIGUSR1 (or ENDOKED_TEST_SIGNAL=TERM: SIGTERM) after that many shards.
  const char* test_signal = std::getenv("ENDOKED_TEST_SIGNAL_AFTER_SHARDS");
  const char* test_signal_name = std::getenv("ENDOKED_TEST_SIGNAL");
  const int test_signo =
      test_signal_name && std::string(test_signal_name) == "TERM" ? SIGTERM : SIGUSR1;
  // Test hook: every rank sleeps this long after each shard it works (a slow stage to signal).
  const char* test_delay = std::getenv("ENDOKED_TEST_SHARD_DELAY_MS");
  int worked = 0, reused = 0;
  try {
    for (int s = comm.rank(); s < w.shards; s += comm.size()) {
      const std::string record = resumable ? data::finished_shard_record(w.resumable_output, s) : "";
      json part;
      if (resumable && fs::exists(record)) {  // done by a preempted run of the same config
        part = json::parse(files::read_all(record));
        if (w.items) progress.add(w.items(s));
        ++reused;
      } else {
        if (resumable && preemption.requested_locally()) {
          mine["preempted"] = true;
          break;
        }
        part = w.work(s, progress);
        if (resumable) files::atomic_write(record, part.dump());
        ++worked;
        if (test_signal && comm.rank() == 0 && worked == std::atoi(test_signal)) std::raise(test_signo);
        if (test_delay) std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(test_delay)));
      }
      mine["shards"].push_back({{"shard", s}, {"part", std::move(part)}});
    }
    if (w.rank_part) mine["rank"] = w.rank_part();
  } catch (const Error& e) {
    error = e.what();
  }
  progress.finish();
  if (reused > 0) log::info("{}: {} shard(s) reused from the interrupted run", w.stage, reused);
  // Errors travel with the results: every rank learns that one failed, none waits forever.
  const auto gathered = comm.all_gather_bytes(error.empty() ? mine.dump() : "!" + error);
  for (std::size_t r = 0; r < gathered.size(); ++r)
    if (!gathered[r].empty() && gathered[r][0] == '!')
      ENDOKED_FAIL(w.stage, " failed on rank ", r, ": ", gathered[r].substr(1));
  std::vector<json> parts;
  std::int64_t stopped = 0;
  for (const auto& g : gathered) {
    parts.push_back(json::parse(g));
    stopped += parts.back().value("preempted", false) ? 1 : 0;
  }
  if (stopped > 0)
    throw Preempted(w.stage + ": preempted by a signal; the finished shards are kept in '" +
                    data::partial_dir(w.resumable_output) +
                    "'; rerun the same command to continue (exit 75)");
  ShardedResult out;
  out.shards.resize(static_cast<std::size_t>(w.shards));
  out.ranks.resize(gathered.size());
  for (std::size_t r = 0; r < parts.size(); ++r) {
    json& part = parts[r];
    for (auto& sh : part["shards"])
      out.shards[sh["shard"].get<std::size_t>()] = std::move(sh["part"]);
    out.ranks[r] = std::move(part["rank"]);
  }
  out.seconds = progress.elapsed_s();
  comm.all_reduce(&out.seconds, 1, dist::ReduceOp::kMax);
  return out;
}

json provenance(const std::string& command, const json& extra) {
  json p = {{"command", command}, {"git_revision", git_revision()}, {"created", utc_timestamp()}};
  if (extra.is_object())
    for (const auto& [k, v] : extra.items()) p[k] = v;
  return p;
}

void commit_on_root(dist::Communicator& comm, const std::function<void()>& commit) {
  dist::run_on_root(comm, [&] {
    commit();
    return std::string();
  });
}

}  // namespace endoked::engine
