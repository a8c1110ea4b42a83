#include "endoked/engine/sharded_stage.h"

#include "endoked/core/error.h"
#include "endoked/core/run_dir.h"

using nlohmann::json;

namespace endoked::engine {

void begin_outputs(dist::Communicator& comm, const std::vector<Output>& outputs, bool overwrite,
                   const std::vector<std::string>& inputs) {
  dist::run_on_root(comm, [&] {
    std::vector<std::string> begun;
    try {
      for (const auto& o : outputs) {
        data::begin_store(o.dir, overwrite, o.kind, inputs);
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
  json mine = {{"shards", json::array()}, {"rank", nullptr}};
  std::string error;
  try {
    for (int s = comm.rank(); s < w.shards; s += comm.size()) {
      json part = w.work(s, progress);
      mine["shards"].push_back({{"shard", s}, {"part", std::move(part)}});
    }
    if (w.rank_part) mine["rank"] = w.rank_part();
  } catch (const Error& e) {
    error = e.what();
  }
  progress.finish();
  // Errors travel with the results: every rank learns that one failed, none waits forever.
  const auto gathered = comm.all_gather_bytes(error.empty() ? mine.dump() : "!" + error);
  for (std::size_t r = 0; r < gathered.size(); ++r)
    if (!gathered[r].empty() && gathered[r][0] == '!')
      ENDOKED_FAIL(w.stage, " failed on rank ", r, ": ", gathered[r].substr(1));
  ShardedResult out;
  out.shards.resize(static_cast<std::size_t>(w.shards));
  out.ranks.resize(gathered.size());
  for (std::size_t r = 0; r < gathered.size(); ++r) {
    json part = json::parse(gathered[r]);
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
