#include "endoked/distributed/data_parallel.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/torch.h>

#include <functional>
#include <mutex>
#include <optional>

#include "endoked/core/error.h"
#include "half_kernels.h"

namespace endoked::dist {

namespace {
bool is_view_of(const at::Tensor& g, const at::Tensor& region) {
  return g.data_ptr() == region.data_ptr() && g.is_contiguous() && g.numel() == region.numel();
}

// `region` (a contiguous piece of a bucket) shaped as `p`, sharing its memory without being an
// autograd view: LibTorch's Optimizer::zero_grad() calls detach_(), which refuses views.
at::Tensor alias_as(const at::Tensor& region, const at::Tensor& p) {
  std::vector<std::int64_t> strides(static_cast<std::size_t>(p.dim()), 1);
  for (std::int64_t d = p.dim() - 2; d >= 0; --d)
    strides[static_cast<std::size_t>(d)] = strides[static_cast<std::size_t>(d + 1)] * p.size(d + 1);
  return at::empty({0}, region.options())
      .set_(region.storage(), region.storage_offset(), p.sizes(), strides);
}

// A bucket divided by the world size in float32 and cast to 16 bits into `wire`, and back (the
// float32 buckets, all but rare ones, through the vectorised kernels).
void to_wire(const at::Tensor& flat, at::Tensor& wire, int world) {
  if (flat.scalar_type() != at::kFloat) {
    wire.copy_(flat.div(world));
    return;
  }
  to_16bit(flat.data_ptr<float>(), static_cast<std::uint16_t*>(wire.data_ptr()), flat.numel(),
           1.0f / static_cast<float>(world), wire.scalar_type());
}
void from_wire(const at::Tensor& wire, at::Tensor& flat) {
  if (flat.scalar_type() != at::kFloat) {
    flat.copy_(wire);
    return;
  }
  from_16bit(static_cast<const std::uint16_t*>(wire.data_ptr()), flat.data_ptr<float>(),
             flat.numel(), wire.scalar_type());
}

struct Bucket {
  at::Tensor flat;                    // the gradients, in the parameters' dtype
  at::Tensor wire;                    // what is all-reduced: `flat`, or its 16-bit copy
  std::vector<std::size_t> params;    // indices into Impl::params
  std::vector<std::int64_t> offsets;  // element offset of each param in `flat`
  std::size_t pending = 0;            // params not ready yet this step
  std::shared_ptr<Work> work;
};
}  // namespace

struct DataParallel::Impl {
  Communicator& comm;
  std::vector<std::string> names;
  std::vector<at::Tensor> params;
  std::vector<std::size_t> bucket_of, slot_of;
  std::vector<Bucket> buckets;
  std::vector<bool> ready;
  std::size_t next_launch = 0;
  bool sync = true;
  std::mutex mutex;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<std::uintptr_t> hook_keys;
  std::vector<at::Tensor> float_buffers;  // batch-norm running statistics and the like
  std::optional<at::ScalarType> compress;  // the 16-bit wire type, when compressing
  Progress progress = Progress::kAuto;
  StepRecord record, last;

  explicit Impl(Communicator& c) : comm(c) {}

  // Called by autograd once param i's .grad holds this backward's gradient.
  void mark_ready(std::size_t i) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!sync || ready[i]) return;
    ready[i] = true;
    Bucket& b = buckets[bucket_of[i]];
    at::Tensor& p = params[i];
    const at::Tensor& g = p.grad();
    auto region = b.flat.narrow(0, b.offsets[slot_of[i]], p.numel());
    if (!g.defined()) {
      region.zero_();
    } else if (!is_view_of(g, region)) {
      // From now on the gradient lives in the bucket (PyTorch DDP's gradient_as_bucket_view):
      // autograd accumulates into it in place and the reduced values need no copy back.
      region.copy_(g.reshape({-1}));
      p.mutable_grad() = alias_as(region, p);
    }
    if (--b.pending == 0) launch_ready();
  }

  // Buckets start strictly in order, so every rank issues the same collectives in the same order.
  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      Bucket& b = buckets[next_launch];
      CollectiveOptions o;
      o.verify = false;  // shapes were agreed at construction
      o.progress = progress;
      if (compress && b.flat.element_size() > 2) {  // division in float32, the sum on 16 bits
        o.op = ReduceOp::kSum;
        to_wire(b.flat, b.wire, comm.size());
      } else {
        o.op = ReduceOp::kAvg;  // b.wire is b.flat
      }
      record.launched.push_back(std::chrono::steady_clock::now());
      record.wire_bytes += b.wire.numel() * static_cast<std::int64_t>(b.wire.element_size());
      b.work = comm.all_reduce_async(b.wire, o);
      ++next_launch;
    }
  }
};

namespace {
struct ReadyHook final : torch::autograd::FunctionPostHook {
  explicit ReadyHook(std::function<void()> on_ready) : on_ready_(std::move(on_ready)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list&) override {
    on_ready_();
    return outputs;
  }
  std::function<void()> on_ready_;
};
}  // namespace

DataParallel::DataParallel(torch::nn::Module& module, Communicator& comm,
                           const ReducerOptions& options)
    : impl_(std::make_unique<Impl>(comm)) {
  Impl& m = *impl_;
  m.progress = parse_progress(options.progress);
  if (options.compression == "fp16") {
    m.compress = at::kHalf;
  } else if (options.compression == "bf16") {
    m.compress = at::kBFloat16;
  } else {
    ENDOKED_CHECK(options.compression == "none", "ddp.compression: '", options.compression,
                  "' is not one of none, fp16, bf16");
  }
  // 1. Same parameters everywhere, or an Error naming the first difference.
  std::string mine;
  for (const auto& p : module.named_parameters(true)) {
    std::string shape;
    for (auto d : p.value().sizes()) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    mine += p.key() + " " + std::string(p.value().dtype().name()) + "[" + shape + "]" +
            (p.value().requires_grad() ? "" : " frozen") + "\n";
  }
  const auto all = comm.all_gather_bytes(mine);
  for (std::size_t r = 1; r < all.size(); ++r) {
    if (all[r] == all[0]) continue;
    std::size_t a = 0, b = 0;
    while (true) {
      const std::size_t ea = all[0].find('\n', a), eb = all[r].find('\n', b);
      const std::string la = ea == std::string::npos ? "<none>" : all[0].substr(a, ea - a);
      const std::string lb = eb == std::string::npos ? "<none>" : all[r].substr(b, eb - b);
      if (la != lb)
        ENDOKED_FAIL("data parallel: parameters differ between ranks: rank 0 has '", la, "', rank ",
                     r, " has '", lb, "'");
      a = ea + 1;
      b = eb + 1;
    }
  }
  // 2. Rank 0's values everywhere.
  {
    torch::NoGradGuard no_grad;
    CollectiveOptions o;
    o.verify = false;
    for (auto& p : module.parameters(true)) {
      at::Tensor t = p.detach();
      comm.broadcast(t, 0, o);
    }
    for (auto& b : module.buffers(true)) {
      at::Tensor t = b.detach();
      comm.broadcast(t, 0, o);
    }
  }
  // One rank: its gradients are already the average; no buckets, no hooks.
  if (comm.size() == 1) return;
  for (auto& b : module.buffers(true))
    if (at::isFloatingType(b.scalar_type())) m.float_buffers.push_back(b);
  // 3. Buckets in reverse registration order.
  for (const auto& p : module.named_parameters(true)) {
    if (!p.value().requires_grad()) continue;
    m.names.push_back(p.key());
    m.params.push_back(p.value());
  }
  const std::size_t n = m.params.size();
  m.bucket_of.resize(n);
  m.slot_of.resize(n);
  m.ready.assign(n, false);
  double cap = options.first_bucket_mb * 1024 * 1024;
  std::int64_t bytes = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = n - 1 - k;
    const at::Tensor& p = m.params[i];
    const std::int64_t pbytes = p.numel() * static_cast<std::int64_t>(p.element_size());
    const bool new_bucket =
        m.buckets.empty() || (bytes > 0 && bytes + pbytes > cap) ||
        m.params[m.buckets.back().params.front()].scalar_type() != p.scalar_type();
    if (new_bucket) {
      if (!m.buckets.empty()) cap = options.bucket_cap_mb * 1024 * 1024;
      m.buckets.emplace_back();
      bytes = 0;
    }
    Bucket& b = m.buckets.back();
    m.bucket_of[i] = m.buckets.size() - 1;
    m.slot_of[i] = b.params.size();
    b.offsets.push_back(b.params.empty() ? 0
                                         : b.offsets.back() + m.params[b.params.back()].numel());
    b.params.push_back(i);
    bytes += pbytes;
  }
  for (auto& b : m.buckets) {
    const at::Tensor& last = m.params[b.params.back()];
    const std::int64_t numel = b.offsets.back() + last.numel();
    const auto make = [&](at::ScalarType type) {
      return last.device().is_cpu()
                 ? comm.reduce_buffer(numel, type)
                 : at::zeros({numel}, last.options().dtype(type).requires_grad(false));
    };
    b.flat = make(last.scalar_type());
    // The 16-bit copy that travels, made once (in shared memory too).
    b.wire = m.compress && b.flat.element_size() > 2 ? make(*m.compress) : b.flat;
    b.pending = b.params.size();
  }
  // 4. A post-hook on every parameter's gradient accumulator.
  for (std::size_t i = 0; i < n; ++i) {
    auto acc = torch::autograd::impl::grad_accumulator(m.params[i]);
    ENDOKED_CHECK(acc != nullptr, "data parallel: parameter '", m.names[i],
                  "' has no gradient accumulator");
    Impl* impl = impl_.get();
    m.hook_keys.push_back(
        acc->add_post_hook(std::make_unique<ReadyHook>([impl, i] { impl->mark_ready(i); })));
    m.accumulators.push_back(std::move(acc));  // kept alive: the variable holds it weakly
  }
}

DataParallel::~DataParallel() {
  for (std::size_t i = 0; i < impl_->accumulators.size(); ++i)
    impl_->accumulators[i]->del_post_hook(impl_->hook_keys[i]);
}

void DataParallel::set_sync(bool sync) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->sync = sync;
}
bool DataParallel::sync() const {
  return impl_->sync;
}

void DataParallel::finish_backward() {
  Impl& m = *impl_;
  ENDOKED_CHECK(m.sync, "finish_backward on a step with set_sync(false)");
  if (m.comm.size() == 1) return;
  // Parameters that got no gradient this step (unused branches) join as zeros.
  for (std::size_t i = 0; i < m.params.size(); ++i)
    if (!m.ready[i]) m.mark_ready(i);
  for (auto& b : m.buckets) {
    ENDOKED_CHECK(b.work != nullptr, "data parallel: a bucket was never launched");
    b.work->wait();
    b.work.reset();
    if (!b.wire.is_same(b.flat)) from_wire(b.wire, b.flat);
    for (std::size_t s = 0; s < b.params.size(); ++s) {
      at::Tensor& p = m.params[b.params[s]];
      auto avg = b.flat.narrow(0, b.offsets[s], p.numel());
      if (!p.grad().defined() || !is_view_of(p.grad(), avg)) p.mutable_grad() = alias_as(avg, p);
    }
    b.pending = b.params.size();
  }
  std::fill(m.ready.begin(), m.ready.end(), false);
  m.next_launch = 0;
  m.last = std::move(m.record);
  m.record = {};
}

DataParallel::StepRecord DataParallel::last_step() const {
  return impl_->last;
}

void DataParallel::average_buffers() {
  Impl& m = *impl_;
  if (m.comm.size() == 1 || m.float_buffers.empty()) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> flat;
  for (const auto& b : m.float_buffers) flat.push_back(b.reshape({-1}).to(at::kDouble));
  at::Tensor all = at::cat(flat);
  CollectiveOptions o;
  o.op = ReduceOp::kAvg;
  o.verify = false;
  m.comm.all_reduce(all, o);
  std::int64_t at = 0;
  for (auto& b : m.float_buffers) {
    b.copy_(all.narrow(0, at, b.numel()).view(b.sizes()));
    at += b.numel();
  }
}

std::vector<std::vector<std::string>> DataParallel::buckets() const {
  std::vector<std::vector<std::string>> out;
  for (const auto& b : impl_->buckets) {
    out.emplace_back();
    for (auto i : b.params) out.back().push_back(impl_->names[i]);
  }
  return out;
}

}  // namespace endoked::dist
