#include "endoked/core/lr_schedule.h"

#include <torch/optim/optimizer.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "endoked/core/error.h"
#include "endoked/core/log.h"

namespace endoked {

void validate(const LrScheduleOptions& o) {
  ENDOKED_CHECK(
      o.kind == "constant" || o.kind == "step" || o.kind == "cosine" || o.kind == "linear",
      "lr_schedule.kind: '", o.kind, "' is not one of constant, step, cosine, linear");
  ENDOKED_CHECK(o.lr > 0, "lr_schedule.lr must be > 0, got ", o.lr);
  ENDOKED_CHECK(o.warmup_steps >= 0, "lr_schedule.warmup_steps must be ≥ 0, got ", o.warmup_steps);
  ENDOKED_CHECK(o.min_lr >= 0 && o.min_lr <= o.lr, "lr_schedule.min_lr must be in [0, lr = ", o.lr, "], got ", o.min_lr);
  if (o.kind == "step") {
    ENDOKED_CHECK(o.step_size > 0, "lr_schedule.step_size must be > 0, got ", o.step_size);
    ENDOKED_CHECK(o.gamma > 0, "lr_schedule.gamma must be > 0, got ", o.gamma);
  }
  if (o.kind == "cosine" || o.kind == "linear")
    ENDOKED_CHECK(o.total_steps > o.warmup_steps, "lr_schedule.total_steps (", o.total_steps,
                  ") must exceed warmup_steps (", o.warmup_steps, ") for kind ", o.kind);
}

double lr_at(const LrScheduleOptions& o, std::int64_t step) {
  if (step < o.warmup_steps)
    return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup_steps);
  const std::int64_t s = step - o.warmup_steps;
  if (o.kind == "step") return o.lr * std::pow(o.gamma, static_cast<double>(s / o.step_size));
  if (o.kind == "cosine" || o.kind == "linear") {
    const double span = static_cast<double>(o.total_steps - o.warmup_steps);
    const double t = std::min(1.0, static_cast<double>(s) / span);
    const double f = o.kind == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * t)) : 1.0 - t;
    return o.min_lr + (o.lr - o.min_lr) * f;
  }
  return o.lr;
}

LrScheduler::LrScheduler(LrScheduleOptions options, torch::optim::Optimizer& optimizer)
    : options_(std::move(options)), optimizer_(optimizer) {
  validate(options_);
}

double LrScheduler::apply(std::int64_t step) {
  current_ = lr_at(options_, step);
  for (auto& group : optimizer_.param_groups()) group.options().set_lr(current_);
  last_step_ = step;
  return current_;
}

std::string LrScheduler::state_json() const {
  const auto& o = options_;
  return nlohmann::json{{"kind", o.kind},
                        {"lr", o.lr},
                        {"warmup_steps", o.warmup_steps},
                        {"total_steps", o.total_steps},
                        {"step_size", o.step_size},
                        {"gamma", o.gamma},
                        {"min_lr", o.min_lr},
                        {"last_step", last_step_}}
             .dump(2) +
         "\n";
}

void LrScheduler::load_state_json(const std::string& text, const std::string& origin) {
  LrScheduleOptions saved;
  std::int64_t last = -1;
  try {
    const auto j = nlohmann::json::parse(text);
    saved.kind = j.at("kind").get<std::string>();
    saved.lr = j.at("lr").get<double>();
    saved.warmup_steps = j.at("warmup_steps").get<std::int64_t>();
    saved.total_steps = j.at("total_steps").get<std::int64_t>();
    saved.step_size = j.at("step_size").get<std::int64_t>();
    saved.gamma = j.at("gamma").get<double>();
    saved.min_lr = j.at("min_lr").get<double>();
    last = j.at("last_step").get<std::int64_t>();
  } catch (const nlohmann::json::exception& e) {
    ENDOKED_FAIL(origin, ": bad scheduler state: ", e.what());
  }
  validate(saved);
  struct Diff {
    const char* key;
    std::string was, now;
  };
  const auto& c = options_;
  const Diff diffs[] = {
      {"kind", saved.kind, c.kind},
      {"lr", std::to_string(saved.lr), std::to_string(c.lr)},
      {"warmup_steps", std::to_string(saved.warmup_steps), std::to_string(c.warmup_steps)},
      {"total_steps", std::to_string(saved.total_steps), std::to_string(c.total_steps)},
      {"step_size", std::to_string(saved.step_size), std::to_string(c.step_size)},
      {"gamma", std::to_string(saved.gamma), std::to_string(c.gamma)},
      {"min_lr", std::to_string(saved.min_lr), std::to_string(c.min_lr)}};
  for (const auto& d : diffs)
    if (d.was != d.now)
      log::warn(
          "{}: lr_schedule.{} is {} in the checkpoint and {} in the config; the "
          "checkpoint's value is used",
          origin, d.key, d.was, d.now);
  options_ = saved;
  last_step_ = last;
  if (last_step_ >= 0) apply(last_step_);
}

}  // namespace endoked
