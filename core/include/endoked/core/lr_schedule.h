#pragma once
// Learning-rate schedules as pure functions of the optimizer step, and the scheduler that
// applies them to a LibTorch optimizer.
//   constant: lr
//   step:     lr · gamma^floor(s / step_size)
//   cosine:   min_lr + (lr − min_lr) · (1 + cos(π · s' / (total_steps − warmup_steps))) / 2
//   linear:   lr → min_lr linearly over total_steps
// Every kind first warms up linearly from lr/warmup_steps to lr over warmup_steps (s' counts
// from the end of warm-up). Past total_steps, cosine and linear stay at min_lr.
// The scheduler's state is its options and the step it last applied. A checkpoint stores it
// (scheduler.json); on resume the saved state wins, as in PyTorch's load_state_dict, and a
// config that differs from it is logged key by key so the change is never silent.
#include <cstdint>
#include <string>

namespace torch::optim {
class Optimizer;
}

namespace endoked {

struct LrScheduleOptions {
  std::string kind = "constant";
  double lr = 0.01;
  std::int64_t warmup_steps = 0;
  std::int64_t total_steps = 0;
  std::int64_t step_size = 1000;
  double gamma = 0.1;
  double min_lr = 0.0;
  template <class V>
  void visit(V& v) {
    v("kind", kind, "constant | step | cosine | linear");
    v("lr", lr, "peak learning rate");
    v("warmup_steps", warmup_steps, "linear warm-up steps");
    v("total_steps", total_steps, "length of the cosine/linear decay (steps, warm-up included)");
    v("step_size", step_size, "step: steps between decays");
    v("gamma", gamma, "step: decay factor");
    v("min_lr", min_lr, "cosine/linear: final learning rate");
  }
};

/// Checks the options (kind known, positive sizes); throws endoked::Error naming the key.
void validate(const LrScheduleOptions& o);

/// The learning rate for optimizer step `step` (0-based).
double lr_at(const LrScheduleOptions& o, std::int64_t step);

class LrScheduler {
 public:
  LrScheduler(LrScheduleOptions options, torch::optim::Optimizer& optimizer);
  /// Sets every parameter group's lr for optimizer step `step`; call before optimizer.step().
  double apply(std::int64_t step);
  double current_lr() const { return current_; }
  std::int64_t last_step() const { return last_step_; }
  const LrScheduleOptions& options() const { return options_; }
  std::string state_json() const;
  /// Restores options and step from state_json(); throws endoked::Error (naming `origin`) on
  /// malformed state; logs each key where the saved options differ from the configured ones.
  void load_state_json(const std::string& text, const std::string& origin);

 private:
  LrScheduleOptions options_;
  torch::optim::Optimizer& optimizer_;
  std::int64_t last_step_ = -1;
  double current_ = 0;
};

}  // namespace endoked
