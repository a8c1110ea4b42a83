#pragma once
// Ingest: raw exam records → a record store.
//
// Sources:
//   folders — the hospital layout EndoKED used: `images_dir/<exam id>/*.jpg` plus a CSV/TSV
//             report table keyed by exam id (column names configurable; other columns become
//             the exam's metadata).
//   jsonl   — one JSON object a line: {"exam_id", "report", "images": [paths relative to the
//             manifest file], optional "centre", optional "metadata": {...}}.
//
// The work splits in three steps so that it can run on N ranks with a result independent of N:
//   1. plan_ingest (rank 0): list exams sorted by id, reject what is wrong before reading images,
//      and cut the exam list into shards by size (greedy, in id order);
//   2. ingest_shard (the rank that owns the shard: shard % world == rank): read and check every
//      image, write the shard;
//   3. the caller gathers the outcomes and commits the store with the rejects and a summary.
// Sources are only read, never modified.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "endoked/data/store.h"

namespace endoked::data {

struct IngestOptions {
  std::string layout = "folders";
  std::string images_dir;
  std::string reports;
  std::string manifest;
  std::string output = "store";
  bool overwrite = false;
  std::string id_column = "exam_id";
  std::string report_column = "report";
  std::string centre_column;
  std::string delimiter = "auto";
  std::string centre;
  std::string report_encoding = "auto";
  double shard_size_mb = 512;
  double max_image_mb = 32;
  std::int64_t max_pixels = 50'000'000;  // 150 MB as decoded RGB
  std::string check = "decode";
  int threads = 2;
  bool strict = false;

  template <class V>
  void visit(V& v) {
    v("layout", layout, "source layout: folders | jsonl");
    v("images_dir", images_dir, "folders: directory with one sub-folder of images per exam id");
    v("reports", reports, "folders: CSV/TSV report table (one row per exam)");
    v("manifest", manifest, "jsonl: the JSON-lines manifest (image paths relative to it)");
    v("output", output, "record store directory to create");
    v("overwrite", overwrite, "replace an existing store (only after the new one is complete)");
    v("id_column", id_column, "report table: exam id column");
    v("report_column", report_column, "report table: report text column");
    v("centre_column", centre_column, "report table: centre column (optional)");
    v("delimiter", delimiter, "report table delimiter: auto | comma | tab");
    v("centre", centre, "centre recorded for exams without one");
    v("report_encoding", report_encoding,
      "text encoding of the report table / manifest and of names that are not UTF-8: auto "
      "(UTF-8, else GB18030 when it reads as Chinese) | utf-8 | gb18030 | latin-1 | cp1252");
    v("shard_size_mb", shard_size_mb, "target shard size in MiB (image bytes)");
    v("max_image_mb", max_image_mb, "images larger than this are rejected");
    v("max_pixels", max_pixels,
      "images whose header declares more pixels are rejected before decoding (memory bound)");
    v("check", check, "image check: header (read dimensions) | decode (decode every image)");
    v("threads", threads, "image reading/checking threads per rank");
    v("strict", strict, "exit non-zero when anything was rejected");
  }
};

/// One rejected input, with the reason ("zero-byte file", "missing report", …).
struct Reject {
  std::string exam_id;
  std::string path;  // file, or "<table>:<line>"; bytes that are not UTF-8 escaped as \xHH
  std::string reason;
  std::string path_hex;  // the raw bytes of `path` when they were not UTF-8, else empty
  /// Builds a reject from raw bytes: every field made valid UTF-8 (escaped), path_hex set.
  static Reject make(const std::string& exam_id, const std::string& path,
                     const std::string& reason);
  nlohmann::json to_json() const;
  static Reject from_json(const nlohmann::json& j);
};

struct PlannedImage {
  std::string path;      // absolute or as configured; read from here
  std::string relative;  // recorded in the store (relative to the source root; valid UTF-8)
  std::int64_t size = 0;
};

struct PlannedExam {
  std::string id;
  std::string centre;
  std::string report;    // UTF-8
  std::string metadata;  // JSON object text
  std::vector<PlannedImage> images;
  std::string report_encoding;  // planning only: the encoding the report was decoded from
};

struct IngestPlan {
  std::string source;                             // description for the manifest
  std::vector<PlannedExam> exams;                 // sorted by id
  std::vector<std::vector<std::int64_t>> shards;  // exam indices per shard
  std::vector<Reject> rejects;                    // found while planning
  std::map<std::string, std::int64_t> counters;   // e.g. "reports_converted_gb18030"
  nlohmann::json to_json() const;
  static IngestPlan from_json(const nlohmann::json& j);
};

/// Step 1 (rank 0): lists and checks the source; throws Error only for unusable configuration
/// (a missing table, a column that does not exist, …), never for a bad record.
IngestPlan plan_ingest(const IngestOptions& options);

struct ShardOutcome {
  ShardInfo info;
  std::vector<Reject> rejects;
  std::int64_t bytes_read = 0;
  nlohmann::json to_json() const;
  static ShardOutcome from_json(const nlohmann::json& j);
};

/// Step 2: writes shard `index` of the plan into `dir` (the store's partial directory).
/// `on_image` is called after each image (progress).
ShardOutcome ingest_shard(const IngestPlan& plan, int index, const std::string& dir,
                          const IngestOptions& options, const std::function<void()>& on_image = {});

/// Step 3 helper: rejects in a stable order and counted by reason.
nlohmann::json summarise_rejects(const std::vector<Reject>& rejects);

}  // namespace endoked::data
