#pragma once
// The directory of one run of a command: it keeps the resolved config (config.yaml), what ran
// (run.json: command line, git revision, world size, start time) and metrics as JSON lines
// (metrics.jsonl). Only rank 0 writes here.
#include <nlohmann/json_fwd.hpp>

#include <string>

namespace endoked {

/// The git revision the binary was built from ("abc123def456[-dirty]" or "unknown").
const char* git_revision();

class RunDir {
 public:
  /// Creates `dir` on rank 0 (writer == true); other ranks get an inert object.
  RunDir(std::string dir, bool writer);
  const std::string& path() const { return dir_; }
  bool writer() const { return writer_; }

  /// config.yaml: a header comment with the revision, then the resolved YAML.
  void write_config(const std::string& resolved_yaml) const;
  /// run.json: the command line, revision, world size and UTC start time.
  void write_run_info(const std::string& command_line, int world_size) const;
  /// Appends one JSON object (with "time" added) to metrics.jsonl.
  void log_metrics(const nlohmann::json& record) const;

 private:
  std::string dir_;
  bool writer_;
};

/// "2026-11-28T02:16:36Z"
std::string utc_timestamp();

}  // namespace endoked
