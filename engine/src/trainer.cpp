#include "endoked/engine/trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <set>
#include <thread>

#include "endoked/core/error.h"
#include "endoked/core/log.h"
#include "endoked/core/progress.h"
#include "endoked/distributed/preemption.h"

using nlohmann::json;

namespace endoked::engine {
namespace {

class LoaderSource final : public BatchSource {
 public:
  LoaderSource(std::shared_ptr<const data::Dataset> dataset, const data::LoaderOptions& options,
               std::int64_t epoch, int rank, int world, std::int64_t cursor)
      : loader_(std::move(dataset), options, epoch, rank, world, cursor) {}
  std::int64_t steps() const override { return loader_.steps(); }
  bool next(data::Batch& batch) override { return loader_.next(batch); }
  std::int64_t cursor() const override { return loader_.cursor(); }

 private:
  data::Loader loader_;
};

void validate(const TrainerOptions& o, const std::string& name) {
  ENDOKED_CHECK(o.epochs >= 0, name, ".trainer.epochs must be ≥ 0, got ", o.epochs);
  ENDOKED_CHECK(o.max_steps >= 0, name, ".trainer.max_steps must be ≥ 0, got ", o.max_steps);
  ENDOKED_CHECK(o.accumulate >= 1, name, ".trainer.accumulate must be ≥ 1, got ", o.accumulate);
  ENDOKED_CHECK(o.checkpoint_every >= 0, name, ".trainer.checkpoint_every must be ≥ 0, got ",
                o.checkpoint_every);
  ENDOKED_CHECK(o.eval_every >= 0, name, ".trainer.eval_every must be ≥ 0, got ", o.eval_every);
  ENDOKED_CHECK(o.log_every >= 1, name, ".trainer.log_every must be ≥ 1, got ", o.log_every);
  ENDOKED_CHECK(o.watchdog_s >= 0, name, ".trainer.watchdog_s must be ≥ 0, got ", o.watchdog_s);
}

}  // namespace

BatchSourceFactory loader_source(std::shared_ptr<const data::Dataset> dataset,
                                 data::LoaderOptions options, int rank, int world) {
  return [dataset = std::move(dataset), options = std::move(options), rank, world](
             std::int64_t epoch, std::int64_t cursor) -> std::unique_ptr<BatchSource> {
    return std::make_unique<LoaderSource>(dataset, options, epoch, rank, world, cursor);
  };
}

void MetricSums::add(const std::string& name, double sum, double weight) {
  auto& v = values_[name];
  v.first += sum;
  v.second += weight;
}

std::map<std::string, double> reduce_metrics(dist::Communicator& comm, const MetricSums& mine) {
  json j = json::object();
  for (const auto& [k, v] : mine.values()) j[k] = {v.first, v.second};
  std::map<std::string, std::pair<double, double>> total;
  for (const auto& part : comm.all_gather_bytes(j.dump())) {
    const json parsed = json::parse(part);
    for (const auto& [k, v] : parsed.items()) {
      total[k].first += v[0].get<double>();
      total[k].second += v[1].get<double>();
    }
  }
  std::map<std::string, double> out;
  for (const auto& [k, v] : total) out[k] = v.second > 0 ? v.first / v.second : 0.0;
  return out;
}

Trainer::Trainer(TrainerOptions options, dist::Communicator& comm, const RunDir& run,
                 std::string config_yaml, std::string name)
    : options_(std::move(options)),
      comm_(comm),
      run_(run),
      config_yaml_(std::move(config_yaml)),
      name_(std::move(name)) {
  validate(options_, name_);
}

FitResult Trainer::fit(torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                       const BatchSourceFactory& data, const StepFn& step, const EvalFn& eval) {
  const TrainerOptions& o = options_;
  FitResult result;
  dist::DataParallel ddp(model, comm_, o.ddp);  // checks the models agree, broadcasts rank 0's

  LrScheduleOptions schedule = o.lr_schedule;
  std::int64_t steps_per_epoch = -1;
  const auto optimizer_steps = [&](std::int64_t batches) {
    return (batches + o.accumulate - 1) / o.accumulate;
  };
  if ((schedule.kind == "cosine" || schedule.kind == "linear") && schedule.total_steps == 0) {
    steps_per_epoch = optimizer_steps(data(0, 0)->steps());
    schedule.total_steps = o.max_steps > 0 ? o.max_steps : o.epochs * steps_per_epoch;
    log::info("{}: lr_schedule.total_steps = {} (the whole run)", name_, schedule.total_steps);
  }
  LrScheduler scheduler(schedule, optimizer);
  dist::Checkpointer checkpointer(o.checkpoint, comm_);
  dist::TrainingState state;
  if (o.resume) result.resumed = checkpointer.load_latest(model, optimizer, state, &scheduler);
  if (result.resumed) {
    // In the uninterrupted process every parameter that was ever updated keeps a gradient
    // (zero_grad zeroes, it does not drop), so the optimizer keeps stepping it on momentum even
    // in steps where it gets no gradient (a head unused in this phase). A resumed process must
    // do the same, or such parameters stand still and the run is no longer the same run.
    for (auto& group : optimizer.param_groups())
      for (auto& p : group.params())
        if (!p.grad().defined() &&
            optimizer.state().count(c10::guts::to_string(p.unsafeGetTensorImpl())) > 0)
          p.mutable_grad() = torch::zeros_like(p);
  }
  std::int64_t last_saved = result.resumed ? state.step : -1;
  const auto save = [&] {
    state.config_yaml = config_yaml_;
    checkpointer.save(model, optimizer, state, &scheduler);
    last_saved = state.step;
  };

  dist::Preemption preemption;
  dist::CollectiveOptions step_collective;
  step_collective.op = dist::ReduceOp::kSum;
  step_collective.timeout_s = o.watchdog_s;
  step_collective.verify = false;  // same length on every rank by construction

  // Remaining optimizer steps, for the progress line (unknown → 0: no ETA).
  if (steps_per_epoch < 0 && o.epochs > state.epoch)
    steps_per_epoch = optimizer_steps(data(state.epoch, 0)->steps());
  std::int64_t remaining = std::max<std::int64_t>(0, (o.epochs - state.epoch) * steps_per_epoch);
  if (o.max_steps > 0) remaining = std::min(remaining, std::max<std::int64_t>(0, o.max_steps - state.step));
  Progress progress(name_, remaining, "steps");

  std::vector<std::string> metric_names;  // fixed at the first step (union over ranks)
  bool names_fixed = false;
  double items_since_log = 0;
  auto log_clock = std::chrono::steady_clock::now();
  const auto start = log_clock;
  bool done = o.max_steps > 0 && state.step >= o.max_steps;
  // Test hook: rank 0 raises SIGUSR1 (ENDOKED_TEST_SIGNAL=TERM: SIGTERM) as optimizer step N
  // begins, the way Slurm's warning signal lands in the middle of a training step.
  const char* test_step = std::getenv("ENDOKED_TEST_SIGNAL_AT_STEP");
  const char* test_signal_name = std::getenv("ENDOKED_TEST_SIGNAL");
  const std::int64_t signal_at = test_step ? std::atoll(test_step) : -1;
  const int test_signo =
      test_signal_name && std::string(test_signal_name) == "TERM" ? SIGTERM : SIGUSR1;
  // Test hook: every rank sleeps this long after each optimizer step (a slow run to signal).
  const char* test_delay = std::getenv("ENDOKED_TEST_STEP_DELAY_MS");
  const int delay_ms = test_delay ? std::atoi(test_delay) : 0;

  while (!done && state.epoch < o.epochs) {
    model.train();
    std::unique_ptr<BatchSource> source = data(state.epoch, state.cursor);
    const std::int64_t batches = source->steps();
    std::int64_t b = 0;
    while (b < batches) {
      if (o.max_steps > 0 && state.step >= o.max_steps) {
        done = true;
        break;
      }
      if (state.step == signal_at && comm_.rank() == 0) std::raise(test_signo);
      const auto micro = static_cast<int>(std::min<std::int64_t>(o.accumulate, batches - b));
      optimizer.zero_grad();
      double loss_sum = 0, items = 0, nonempty = 0;
      std::map<std::string, double> metric_sum;
      for (int m = 0; m < micro; ++m) {
        data::Batch batch;
        ENDOKED_CHECK(source->next(batch), name_, ": the batch source ended after ", b, " of ",
                      batches, " batches in epoch ", state.epoch);
        ++b;
        const bool last = m + 1 == micro;
        ddp.set_sync(last);
        at::Tensor loss;
        if (batch.items() > 0) {  // a rank may get an empty batch at a partial tail
          StepOutput out = step(batch);
          ENDOKED_CHECK(out.loss.defined() && out.loss.numel() == 1, name_,
                        ": the loss step must return a scalar loss (step ", state.step, ")");
          loss = out.loss;
          const double v = loss.item<double>();
          loss_sum += v;
          nonempty += 1;
          items += static_cast<double>(batch.items());
          for (const auto& [k, x] : out.metrics) metric_sum[k] += x;
        }
        if (last) {
          if (!names_fixed) {  // once: every rank learns every metric name
            std::set<std::string> all;
            json mine = json::array();
            for (const auto& [k, x] : metric_sum) mine.push_back(k);
            for (const auto& part : comm_.all_gather_bytes(mine.dump())) {
              const json names = json::parse(part);
              for (const auto& k : names) all.insert(k.get<std::string>());
            }
            metric_names.assign(all.begin(), all.end());
            names_fixed = true;
          }
          for (const auto& [k, x] : metric_sum)
            ENDOKED_CHECK(std::binary_search(metric_names.begin(), metric_names.end(), k), name_,
                          ": the loss step returned a new metric '", k, "' at step ", state.step,
                          " (every step must return the same names)");
          const bool bad = !std::isfinite(loss_sum);
          // [loss, batches with items, items, non-finite ranks, preempted ranks, metrics…]
          at::Tensor stats = at::zeros({5 + static_cast<std::int64_t>(metric_names.size())},
                                       at::kDouble);
          auto* s = stats.data_ptr<double>();
          s[0] = bad ? 0.0 : loss_sum;
          s[1] = nonempty;
          s[2] = items;
          s[3] = bad ? 1.0 : 0.0;
          s[4] = preemption.requested_locally() ? 1.0 : 0.0;
          for (std::size_t i = 0; i < metric_names.size(); ++i) {
            const auto it = metric_sum.find(metric_names[i]);
            s[5 + i] = it == metric_sum.end() ? 0.0 : it->second;
          }
          if (bad)
            log::error("{}: rank {}: loss is {} at step {} (epoch {})", name_, comm_.rank(),
                       loss_sum, state.step, state.epoch);
          comm_.all_reduce(stats, step_collective);  // also the stall watchdog of this step
          if (s[3] > 0)
            ENDOKED_FAIL(name_, ": non-finite loss at step ", state.step, " (epoch ", state.epoch,
                         ") on ", static_cast<std::int64_t>(s[3]), " rank(s)",
                         bad ? " including rank " + std::to_string(comm_.rank()) : std::string(),
                         "; the weights were not updated");
          result.last_loss = s[1] > 0 ? s[0] / s[1] : 0.0;
          items_since_log += s[2];
          if (s[4] > 0) result.preempted = true;
          if ((state.step + 1) % o.log_every == 0 || result.preempted) {
            const auto now = std::chrono::steady_clock::now();
            const double dt = std::chrono::duration<double>(now - log_clock).count();
            json line = {{"stage", name_},
                         {"step", state.step + 1},
                         {"epoch", state.epoch},
                         {"loss", result.last_loss},
                         {"lr", lr_at(scheduler.options(), state.step)},
                         {"items_per_s", dt > 0 ? items_since_log / dt : 0.0}};
            for (std::size_t i = 0; i < metric_names.size(); ++i)
              line[metric_names[i]] = s[1] > 0 ? s[5 + i] / s[1] : 0.0;
            run_.log_metrics(line);
            log_clock = now;
            items_since_log = 0;
          }
        }
        if (loss.defined()) (micro > 1 ? loss / micro : loss).backward();
      }
      ddp.finish_backward();
      scheduler.apply(state.step);
      optimizer.step();
      if (o.ddp.average_buffers) ddp.average_buffers();
      ++state.step;
      state.cursor = source->cursor();
      progress.add();
      if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
      if (result.preempted) break;
      if (o.checkpoint_every > 0 && state.step % o.checkpoint_every == 0 && b < batches) save();
    }
    if (result.preempted) {
      log::warn("{}: preempted ({}) at step {}: checkpointing, then exit {}", name_,
                preemption.signal() ? fmt::format("signal {} here", preemption.signal())
                                    : std::string("a signal on another rank"),
                state.step, dist::kRequeueExitCode);
      save();
      break;
    }
    if (done) break;
    // Epoch complete.
    ++state.epoch;
    state.cursor = 0;
    ++result.epochs;
    run_.log_metrics({{"stage", name_}, {"epoch_end", state.epoch - 1}, {"step", state.step},
                      {"loss", result.last_loss}});
    if (eval && o.eval_every > 0 && state.epoch % o.eval_every == 0) {
      model.eval();
      MetricSums sums;
      {
        torch::NoGradGuard no_grad;
        sums = eval(state.epoch - 1);
      }
      result.last_eval = reduce_metrics(comm_, sums);
      json line = {{"stage", name_}, {"eval_epoch", state.epoch - 1}, {"step", state.step}};
      std::string text;
      for (const auto& [k, v] : result.last_eval) {
        line[k] = v;
        text += fmt::format(" {} {:.4f}", k, v);
      }
      run_.log_metrics(line);
      log::info("{}: epoch {} eval:{}", name_, state.epoch - 1, text);
      model.train();
    }
    save();
  }
  progress.finish();
  if (!result.preempted && last_saved != state.step && state.step > 0) save();
  result.steps = state.step;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log::info("{}: {} step(s), {} epoch(s) this run, last loss {:.5f}{}", name_, result.steps,
            result.epochs, result.last_loss, result.preempted ? " (preempted)" : "");
  return result;
}

}  // namespace endoked::engine
