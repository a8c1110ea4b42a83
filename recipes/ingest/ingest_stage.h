#pragma once
// `endoked ingest`: raw records (exam folders + report table, or a JSONL manifest) → a record
// store, on N ranks. Inputs: ingest.images_dir + ingest.reports, or ingest.manifest.
// Output: ingest.output (manifest.json, shards, rejects.jsonl). The store's content is the same
// for every N (exams in id order, shards cut by size, shard s written by rank s % N).
#include <nlohmann/json.hpp>

#include "endoked/core/run_dir.h"
#include "endoked/data/ingest.h"
#include "endoked/distributed/communicator.h"

namespace endoked::recipes {

struct IngestSummary {
  std::int64_t exams = 0;
  std::int64_t images = 0;
  std::int64_t rejects = 0;
  std::string content_sha256;
  nlohmann::json json;
  /// false when the run found nothing valid, or rejected inputs under ingest.strict: then no
  /// store is written (an existing one stays as it was) and the rejects go to the run
  /// directory's rejects.jsonl.
  bool committed = false;
  std::string rejects_file;  // where rejects.jsonl went
};

/// Collective over `comm`. Every rank returns the same summary.
IngestSummary run_ingest(dist::Communicator& comm, const data::IngestOptions& options,
                         const RunDir& run);

}  // namespace endoked::recipes
