#pragma once
// The helper every stage that maps shards to shards uses (synth, ingest, label; next the
// scores, boxes and masks sidecars): outputs prepared on rank 0, shard s worked by rank
// s % world (so the output is the same for every world size), per-shard results gathered on
// every rank in shard order, the error protocol (a failure on any rank becomes an Error on
// every rank naming that rank and its message — no rank waits forever), the slowest rank's time,
// the standard provenance, and the commit on rank 0.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "endoked/core/progress.h"
#include "endoked/data/store.h"
#include "endoked/distributed/communicator.h"

namespace endoked::engine {

/// An output store and the kind an existing one must have to be replaced ("records", "labels",
/// … ; "corpus" for the raw synthetic layout).
struct Output {
  std::string dir;
  std::string kind;
};

/// Collective. Rank 0 starts every output store (data::begin_store: the output lock; refuses an
/// output that overlaps an input, an existing one unless `overwrite`, and anything but an
/// endoked store of its kind); its error reaches every rank.
/// `resume_key` (a hash of the stage's config and inputs): a partial output left by a preempted
/// run with the same key is continued (see run_shards).
void begin_outputs(dist::Communicator& comm, const std::vector<Output>& outputs, bool overwrite,
                   const std::vector<std::string>& inputs = {}, const std::string& resume_key = "");

/// The resume key of a stage: SHA-256 of its options' YAML without the keys that do not change
/// what it writes (`threads`, `overwrite` — the first follows the Slurm allocation, which a
/// requeued or resubmitted job may change), then `inputs` (a hash of what it reads).
std::string resume_key(const std::string& options_yaml, const std::string& inputs = "");

/// Thrown on every rank when SIGUSR1/SIGTERM reached any rank during a stage: the finished
/// shards are kept in the partial output, the command exits 75, and rerunning it continues.
struct Preempted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ShardedWork {
  std::string stage;  // "label": names progress lines and errors
  int shards = 0;
  std::string unit;  // what progress counts ("reports", "images")
  /// Items in shard s (progress total of this rank); may be empty (no ETA then).
  std::function<std::int64_t(int shard)> items;
  /// The work of shard s, on the rank that owns it. Returns the shard's part of the result.
  /// Throwing endoked::Error fails the stage on every rank with the message.
  std::function<nlohmann::json(int shard, Progress& progress)> work;
  /// Optional: this rank's part after all its shards (counters kept per rank, e.g. LLM stats).
  std::function<nlohmann::json()> rank_part;
  /// Optional: the output whose partial directory records finished shards. Then a signal
  /// (SIGUSR1/SIGTERM, e.g. Slurm's warning before the time limit) makes every rank finish its
  /// current shard and stop (Preempted), and a rerun with the same resume key skips the
  /// shards already done. For tests, ENDOKED_TEST_SIGNAL_AFTER_SHARDS=N makes rank 0 raise
  /// SIGUSR1 after finishing N shards.
  std::string resumable_output;
};

struct ShardedResult {
  std::vector<nlohmann::json> shards;  // by shard index, on every rank
  std::vector<nlohmann::json> ranks;   // rank_part() by rank (null without one)
  double seconds = 0;                  // the slowest rank's working time
};

/// Collective.
ShardedResult run_shards(dist::Communicator& comm, const ShardedWork& work);

/// {"command", "git_revision", "created"} plus `extra`'s keys: the provenance of a stage output.
nlohmann::json provenance(const std::string& command, const nlohmann::json& extra = {});

/// Collective. Runs `commit` on rank 0 (build the manifest, write extra files, commit_store);
/// its error reaches every rank.
void commit_on_root(dist::Communicator& comm, const std::function<void()>& commit);

}  // namespace endoked::engine
