#include "endoked/distributed/checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/lr_schedule.h"
#include "endoked/core/run_dir.h"

namespace fs = std::filesystem;

namespace endoked::dist {
namespace {

// Twelve digits: names sort as text in step order up to 10^12 steps (a million steps needs
// seven, which the old six-digit names did not have).
std::string step_name(std::int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%012lld", static_cast<long long>(step));
  return buf;
}

// The step of a checkpoint directory name ("step-<digits>", any width), or -1.
std::int64_t parse_step(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() == 5) return -1;
  std::int64_t v = 0;
  for (std::size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

at::Generator cpu_generator() {
  return at::detail::getDefaultCPUGenerator();
}

// Runs `fn` on rank 0; its error reaches every rank.
void on_root(Communicator& comm, const std::function<void()>& fn) {
  run_on_root(comm, [&] {
    fn();
    return std::string();
  });
}

}  // namespace

Checkpointer::Checkpointer(CheckpointOptions options, Communicator& comm)
    : options_(std::move(options)), comm_(comm) {
  ENDOKED_CHECK(options_.keep_last >= 1, "checkpoint.keep_last must be ≥ 1, got ",
                options_.keep_last);
}

std::string Checkpointer::save(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                               const TrainingState& state, const LrScheduler* scheduler) {
  const std::string final_dir = options_.dir + "/" + step_name(state.step);
  const std::string tmp = final_dir + ".tmp";
  on_root(comm_, [&] {
    fs::create_directories(options_.dir);
    fs::remove_all(tmp);
    fs::create_directories(tmp);
  });
  // Every rank's RNG state (dropout and augmentation differ per rank).
  std::string error;
  try {
    torch::serialize::OutputArchive a;
    auto gen = cpu_generator();
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      a.write("state", gen.get_state());
    }
    const std::string path = tmp + "/rng-rank" + std::to_string(comm_.rank()) + ".pt";
    a.save_to(path);
    files::fsync_path(path);
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::int64_t failed = error.empty() ? 0 : 1;
  comm_.all_reduce(&failed, 1, ReduceOp::kMax);
  if (failed)
    ENDOKED_FAIL("checkpoint: saving the RNG state failed",
                 error.empty() ? " on another rank" : ": " + error);
  on_root(comm_, [&] {
    torch::serialize::OutputArchive m, o;
    model.save(m);
    m.save_to(tmp + "/model.pt");
    optimizer.save(o);
    o.save_to(tmp + "/optimizer.pt");
    const nlohmann::json j = {{"step", state.step},
                              {"epoch", state.epoch},
                              {"cursor", state.cursor},
                              {"world_size", comm_.size()},
                              {"git_revision", git_revision()},
                              {"created", utc_timestamp()}};
    files::write_file(tmp + "/state.json", j.dump(2) + "\n");
    files::write_file(tmp + "/config.yaml", state.config_yaml);
    if (scheduler) files::write_file(tmp + "/scheduler.json", scheduler->state_json());
    for (const auto& e : fs::directory_iterator(tmp)) files::fsync_path(e.path().string());
    // Replace, never delete first: `latest` may point at final_dir (a crash in the fallback
    // leaves the old one at .old, which load_latest() uses; once final_dir is back, a leftover
    // .old of this checkpoint directory is ours to clear).
    if (fs::exists(final_dir)) fs::remove_all(final_dir + ".old");
    files::replace_directory(tmp, final_dir);
    files::atomic_write(options_.dir + "/latest", step_name(state.step) + "\n");  // last
    // Keep the newest keep_last checkpoints, ordered by step number (not by name).
    std::vector<std::pair<std::int64_t, std::string>> all;
    for (const auto& e : fs::directory_iterator(options_.dir)) {
      const std::string name = e.path().filename().string();
      const std::int64_t step = parse_step(name);
      if (e.is_directory() && step >= 0) all.emplace_back(step, name);
    }
    std::sort(all.begin(), all.end());
    for (std::size_t i = 0; i + static_cast<std::size_t>(options_.keep_last) < all.size(); ++i)
      if (all[i].second != step_name(state.step))
        fs::remove_all(options_.dir + "/" + all[i].second);
    log::info("checkpoint: step {} -> {}", state.step, final_dir);
  });
  return final_dir;
}

bool Checkpointer::load_latest(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                               TrainingState& state, LrScheduler* scheduler) {
  const std::string latest = options_.dir + "/latest";
  std::int64_t exists = fs::exists(latest) ? 1 : 0;
  std::int64_t all_exist = exists;
  comm_.all_reduce(&all_exist, 1, ReduceOp::kMin);
  comm_.all_reduce(&exists, 1, ReduceOp::kMax);
  if (!exists) return false;
  ENDOKED_CHECK(all_exist == 1, "checkpoint: '", latest,
                "' is not visible on every rank (not a shared file system?)");
  std::string name = files::read_all(latest);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  std::string dir = options_.dir + "/" + name;
  // A save interrupted between parking the old checkpoint and moving the new one in.
  if (!fs::exists(dir) && fs::exists(dir + ".old")) {
    log::warn("checkpoint: '{}' is missing; resuming from the previous copy '{}.old'", dir, dir);
    dir += ".old";
  }
  ENDOKED_CHECK(fs::exists(dir + "/state.json"), "checkpoint: '", latest, "' points at '", dir,
                "', which holds no state.json");
  try {
    const nlohmann::json j = nlohmann::json::parse(files::read_all(dir + "/state.json"));
    state.step = j.at("step").get<std::int64_t>();
    state.epoch = j.at("epoch").get<std::int64_t>();
    state.cursor = j.at("cursor").get<std::int64_t>();
    state.config_yaml = files::read_all(dir + "/config.yaml");
    torch::serialize::InputArchive m, o;
    m.load_from(dir + "/model.pt");
    model.load(m);
    o.load_from(dir + "/optimizer.pt");
    optimizer.load(o);
    if (scheduler) {
      const std::string path = dir + "/scheduler.json";
      ENDOKED_CHECK(fs::exists(path), "checkpoint '", dir,
                    "' has no scheduler.json but the run uses an LR scheduler");
      scheduler->load_state_json(files::read_all(path), path);
    }
    const std::string rng = dir + "/rng-rank" + std::to_string(comm_.rank()) + ".pt";
    if (fs::exists(rng)) {
      torch::serialize::InputArchive a;
      a.load_from(rng);
      at::Tensor st;
      a.read("state", st);
      auto gen = cpu_generator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(st);
    }
  } catch (const nlohmann::json::exception& e) {
    ENDOKED_FAIL("checkpoint '", dir, "': bad state.json: ", e.what());
  } catch (const c10::Error& e) {
    ENDOKED_FAIL("checkpoint '", dir, "': ", e.what_without_backtrace());
  }
  log::info("checkpoint: resumed from {} (step {}, epoch {}, cursor {})", dir, state.step,
            state.epoch, state.cursor);
  return true;
}

}  // namespace endoked::dist
