#include "endoked/core/run_dir.h"

#include <nlohmann/json.hpp>

#include <ctime>
#include <filesystem>

#include "endoked/core/files.h"

namespace endoked {

std::string utc_timestamp() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

RunDir::RunDir(std::string dir, bool writer) : dir_(std::move(dir)), writer_(writer) {
  if (writer_) std::filesystem::create_directories(dir_);
}

void RunDir::write_config(const std::string& resolved_yaml) const {
  if (!writer_) return;
  files::atomic_write(dir_ + "/config.yaml", std::string("# resolved config; endoked revision ") +
                                                 git_revision() + "\n" + resolved_yaml);
}

void RunDir::write_run_info(const std::string& command_line, int world_size) const {
  if (!writer_) return;
  nlohmann::json j = {{"command", command_line},
                      {"git_revision", git_revision()},
                      {"world_size", world_size},
                      {"started", utc_timestamp()}};
  files::atomic_write(dir_ + "/run.json", j.dump(2) + "\n");
}

void RunDir::log_metrics(const nlohmann::json& record) const {
  if (!writer_) return;
  nlohmann::json r = record;
  r["time"] = utc_timestamp();
  files::append_line(dir_ + "/metrics.jsonl", r.dump());
}

}  // namespace endoked
