#include <mpi.h>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <ATen/ATen.h>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>

#include "backends.h"
#include "endoked/core/error.h"
#include "half_kernels.h"
#include "node_reduce.h"
#include "tensor_args.h"

namespace endoked::dist {
namespace {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  ENDOKED_FAIL("MPI ", what, " failed: ", std::string(text, static_cast<std::size_t>(len)));
}

// For the plain int64/double reductions (sizes, counts, timings): no avg there.
MPI_Op to_mpi(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
    case ReduceOp::kAvg:
      break;
  }
  ENDOKED_FAIL("avg is for tensor all_reduce; reduce sums of plain values with sum");
}

// bfloat16 and float16 travel as 2-byte MPI types with our own reduction functions
// (MPI has no 16-bit floating types); the arithmetic is done in float32 per element.
template <typename T, typename F>
void reduce16(void* in, void* inout, int* len, F f) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = T(f(static_cast<float>(a[i]), static_cast<float>(b[i])));
}
template <typename T>
void sum16(void* in, void* inout, int* len, MPI_Datatype*) {  // the hot one: vectorised
  sum_16bit(static_cast<const std::uint16_t*>(in), static_cast<std::uint16_t*>(inout), *len,
            std::is_same_v<T, c10::BFloat16> ? at::kBFloat16 : at::kHalf);
}
template <typename T>
void max16(void* in, void* inout, int* len, MPI_Datatype*) {
  reduce16<T>(in, inout, len, [](float x, float y) { return x > y ? x : y; });
}
template <typename T>
void min16(void* in, void* inout, int* len, MPI_Datatype*) {
  reduce16<T>(in, inout, len, [](float x, float y) { return x < y ? x : y; });
}

struct Types16 {
  MPI_Datatype bf16 = MPI_DATATYPE_NULL, f16 = MPI_DATATYPE_NULL;
  MPI_Op bf16_ops[3], f16_ops[3];  // sum, max, min
  void create() {
    MPI_Type_contiguous(2, MPI_BYTE, &bf16);
    MPI_Type_commit(&bf16);
    MPI_Type_contiguous(2, MPI_BYTE, &f16);
    MPI_Type_commit(&f16);
    MPI_Op_create(&sum16<c10::BFloat16>, 1, &bf16_ops[0]);
    MPI_Op_create(&max16<c10::BFloat16>, 1, &bf16_ops[1]);
    MPI_Op_create(&min16<c10::BFloat16>, 1, &bf16_ops[2]);
    MPI_Op_create(&sum16<c10::Half>, 1, &f16_ops[0]);
    MPI_Op_create(&max16<c10::Half>, 1, &f16_ops[1]);
    MPI_Op_create(&min16<c10::Half>, 1, &f16_ops[2]);
  }
  void free() {
    if (bf16 == MPI_DATATYPE_NULL) return;
    for (int i = 0; i < 3; ++i) {
      MPI_Op_free(&bf16_ops[i]);
      MPI_Op_free(&f16_ops[i]);
    }
    MPI_Type_free(&bf16);
    MPI_Type_free(&f16);
  }
};

// Async collectives: a queue of jobs run in issue order, one at a time, by a communication
// thread — or by a caller of wait() on the job at the head of the queue while the thread is
// idle (it would run that job next anyway; running it at once saves two thread wake-ups, which
// on a busy core cost more than a small all_reduce).
class WorkQueue;

class QueuedWork final : public Work {
 public:
  using Clock = std::chrono::steady_clock;
  QueuedWork(WorkQueue& queue, std::function<void()> job, Clock::time_point due)
      : due(due), queue_(queue), job_(std::move(job)) {}
  void run() {
    std::exception_ptr error;
    try {
      job_();
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = error;
    done_ = true;
  }
  void wait() override;
  bool is_completed() override {
    std::lock_guard<std::mutex> lock(mutex_);
    return done_;
  }
  const Clock::time_point due;  // the communication thread leaves it to a waiter until then

 private:
  WorkQueue& queue_;
  std::function<void()> job_;
  std::mutex mutex_;
  bool done_ = false;
  std::exception_ptr error_;
};

// The communication thread and the callers that wait share one ordered queue: one job runs at a
// time, in issue order, on whichever thread reaches it first.  A waiter runs the jobs up to its
// own on its own thread (no wake-up between the call and the blocking MPI call); the thread runs
// the rest in the background.  Small jobs (≤ kSmallBytes, a few µs of MPI) are not worth a
// wake-up (~3–5 µs on a busy core): the thread leaves them kDefer to a waiter, and while jobs keep
// coming it stays on a kTick timer instead of being woken for each, so an unwaited small job still
// completes within about a millisecond.
class WorkQueue {
 public:
  using Clock = QueuedWork::Clock;
  static constexpr std::size_t kSmallBytes = 64 << 10;
  static constexpr auto kDefer = std::chrono::microseconds(500);
  static constexpr auto kTick = std::chrono::milliseconds(1);
  static constexpr auto kHotWindow = std::chrono::milliseconds(100);

  ~WorkQueue() { stop(); }
  std::shared_ptr<Work> push(std::function<void()> job, std::size_t bytes) {
    const auto now = Clock::now();
    const bool small = bytes <= kSmallBytes;
    auto work = std::make_shared<QueuedWork>(*this, std::move(job), small ? now + kDefer : now);
    std::lock_guard<std::mutex> lock(mutex_);
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    queue_.push_back(work);
    ++pending_;
    last_push_ = now;
    // A running job wakes the thread when it ends; a hot thread sees a small job on its tick.
    if (!running_ && (!small || asleep_)) work_cv_.notify_one();
    return work;
  }
  // Runs queued jobs on the calling thread, in order, until `work` has completed (every job
  // when null); waits while another thread runs one.
  void run_through(QueuedWork* work) {
    std::unique_lock<std::mutex> lock(mutex_);
    while (work ? !work->is_completed() : pending_ > 0) {
      if (!running_ && !queue_.empty()) {
        run_front(lock);
      } else {
        idle_cv_.wait(lock);
      }
    }
  }
  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      work_cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!(stop_ && queue_.empty())) {
      const auto now = Clock::now();
      // (A small job holds no larger one behind it: both go as soon as the larger is issued.)
      if (!running_ && !queue_.empty() &&
          (stop_ || queue_.front()->due <= now || queue_.back()->due <= now)) {
        run_front(lock);
      } else if (!running_ && !queue_.empty()) {
        work_cv_.wait_until(lock, queue_.front()->due);
      } else if (now - last_push_ < kHotWindow) {
        work_cv_.wait_for(lock, kTick);
      } else {
        asleep_ = true;
        work_cv_.wait(lock);
        asleep_ = false;
      }
    }
  }
  // Pops the first job and runs it unlocked; wakes only who has something to do: the thread
  // when a job waits, the waiters when one completed.
  void run_front(std::unique_lock<std::mutex>& lock) {
    auto work = queue_.front();
    queue_.pop_front();
    running_ = true;
    lock.unlock();
    work->run();
    lock.lock();
    running_ = false;
    --pending_;
    if (!queue_.empty() || stop_) work_cv_.notify_one();
    idle_cv_.notify_all();
  }

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable work_cv_;  // the communication thread waits here
  std::condition_variable idle_cv_;  // waiters wait here for a job to complete
  std::deque<std::shared_ptr<QueuedWork>> queue_;
  Clock::time_point last_push_{};
  int pending_ = 0;       // issued, not completed
  bool running_ = false;  // a job runs (on the thread or a waiter)
  bool asleep_ = false;   // the thread waits without a timer
  bool stop_ = false;
};

void QueuedWork::wait() {
  queue_.run_through(this);
  std::lock_guard<std::mutex> lock(mutex_);
  if (error_) std::rethrow_exception(error_);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int* argc, char*** argv) {
    int initialised = 0;
    MPI_Initialized(&initialised);
    if (!initialised) {
      int provided = 0;
      check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided), "Init_thread");
      owns_ = true;
    }
    int provided = 0;
    MPI_Query_thread(&provided);
    check_mpi_thread_level(provided);
    // Errors come back as codes (turned into endoked::Error) instead of aborting inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    types16_.create();
    MPI_Comm_dup(MPI_COMM_WORLD, &watch_comm_);
    MPI_Comm_dup(MPI_COMM_WORLD, &polite_comm_);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
    const char* use_node = std::getenv("ENDOKED_NODE_REDUCE");
    if (!(use_node && std::string(use_node) == "0")) {
      const char* group = std::getenv("ENDOKED_NODE_RANKS");
      node_reducer_ = std::make_unique<NodeReducer>(MPI_COMM_WORLD, group ? std::atoi(group) : 0);
    }
    last_arrival_.assign(static_cast<std::size_t>(size_), 0);
  }
  ~MpiCommunicator() override {
    queue_.stop();
    node_reducer_.reset();
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised) {
      for (auto& [req, buf] : sends_) MPI_Wait(&req, MPI_STATUS_IGNORE);
      MPI_Comm_free(&watch_comm_);
      MPI_Comm_free(&polite_comm_);
      types16_.free();
    }
    if (owns_ && !finalised) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void barrier() override {
    drain();
    check_mpi(MPI_Barrier(MPI_COMM_WORLD), "Barrier");
  }

  void broadcast_bytes(std::string& data, int root) override {
    drain();
    long long n = static_cast<long long>(data.size());
    check_mpi(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "Bcast(size)");
    data.resize(static_cast<std::size_t>(n));
    broadcast_chunks(data.data(), data.size(), root);
  }

  std::vector<std::string> all_gather_bytes(const std::string& mine) override {
    drain();
    return all_gather_bytes_now(mine);
  }

  // Without draining: also called from the communication thread (argument agreement).
  std::vector<std::string> all_gather_bytes_now(const std::string& mine) {
    long long n = static_cast<long long>(mine.size());
    std::vector<long long> sizes(static_cast<std::size_t>(size_));
    check_mpi(MPI_Allgather(&n, 1, MPI_LONG_LONG, sizes.data(), 1, MPI_LONG_LONG, MPI_COMM_WORLD),
              "Allgather(sizes)");
    std::vector<std::string> out(static_cast<std::size_t>(size_));
    // Each rank's bytes are broadcast in turn: simple, and no int overflow of Allgatherv counts.
    for (int r = 0; r < size_; ++r) {
      std::string& s = out[static_cast<std::size_t>(r)];
      s = r == rank_ ? mine : std::string(static_cast<std::size_t>(sizes[r]), '\0');
      broadcast_chunks(s.data(), s.size(), r);
    }
    return out;
  }

  void all_reduce(std::int64_t* values, std::size_t n, ReduceOp op) override {
    drain();
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(n), MPI_INT64_T, to_mpi(op),
                            MPI_COMM_WORLD),
              "Allreduce(int64)");
  }
  void all_reduce(double* values, std::size_t n, ReduceOp op) override {
    drain();
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(n), MPI_DOUBLE, to_mpi(op),
                            MPI_COMM_WORLD),
              "Allreduce(double)");
  }

  std::shared_ptr<Work> all_reduce_async(at::Tensor t, const CollectiveOptions& o) override {
    check_collective_tensor(t, "all_reduce", o.op);
    return queue_.push([this, t, o]() mutable { reduce_now(t, o, /*async=*/true); }, t.nbytes());
  }

  void all_reduce(at::Tensor& t, const CollectiveOptions& o) override {
    check_collective_tensor(t, "all_reduce", o.op);
    drain();
    reduce_now(t, o);
  }

  // The all_reduce itself, on whichever thread runs it (`async`: the communication thread).
  // Open MPI's tuned blocking Allreduce is several times faster than its non-blocking (libnbc)
  // one, which moreover advances only inside MPI_Test; so both policies end in the blocking
  // call. `polling` first waits, without spinning, until every rank has reached this
  // collective (an Ibarrier tested with growing pauses): the blocking call then spins only for
  // the transfer itself, not while a slower rank is still computing. Stalls are the watchdog's
  // job (arrive()).
  void reduce_now(at::Tensor& t, const CollectiveOptions& o, bool async = false) {
    arrive(o, "all_reduce");
    if (o.verify) agree(t, "all_reduce", false);
    if (t.numel() == 0) return;
    at::Tensor c = t.is_contiguous() ? t : t.contiguous();
    const bool polling = async && resolve_progress(o.progress, local_size_) == Progress::kPolling;
    if (polling) wait_politely_for_every_rank();
    if (node_reducer_ && (o.op == ReduceOp::kSum || o.op == ReduceOp::kAvg) &&
        node_reducer_->takes(c)) {
      node_reducer_->all_reduce(c, o.op == ReduceOp::kAvg, !polling);
      if (!c.is_same(t)) t.copy_(c);
      return;
    }
    const MPI_Datatype type = mpi_type(c);
    const MPI_Op op = mpi_op(c, o.op);
    // In pieces of at most 16 MiB: Open MPI's Allreduce mallocs a scratch buffer as large as
    // the message, and on any thread but the main one glibc serves more than 64 MiB (its
    // thread-heap size) with a fresh mmap every call — page faults that halved the
    // communication thread's bandwidth at 64 MiB and above.
    const std::int64_t chunk =
        std::max<std::int64_t>(1, (std::int64_t(16) << 20) / c.element_size());
    char* base = static_cast<char*>(c.data_ptr());
    for (std::int64_t at = 0; at < c.numel(); at += chunk) {
      const int n = static_cast<int>(std::min(chunk, c.numel() - at));
      check_mpi(
          MPI_Allreduce(MPI_IN_PLACE, base + at * c.element_size(), n, type, op, MPI_COMM_WORLD),
          "Allreduce");
    }
    if (o.op == ReduceOp::kAvg) c.div_(size_);
    if (!c.is_same(t)) t.copy_(c);
  }

  at::Tensor reduce_buffer(std::int64_t numel, at::ScalarType type) override {
    drain();
    at::Tensor t;
    if (node_reducer_) t = node_reducer_->buffer(numel, type);
    return t.defined() ? t : Communicator::reduce_buffer(numel, type);
  }

  void broadcast(at::Tensor& t, int root, const CollectiveOptions& o) override {
    check_collective_tensor(t, "broadcast");
    drain();
    ENDOKED_CHECK(root >= 0 && root < size_, "broadcast root ", root, " outside [0, ", size_, ")");
    arrive(o, "broadcast");
    if (o.verify) agree(t, "broadcast", false);
    if (t.numel() == 0) return;
    at::Tensor c = t.is_contiguous() ? t : t.contiguous();
    check_mpi(MPI_Bcast(c.data_ptr(), count(c), mpi_type(c), root, MPI_COMM_WORLD), "Bcast");
    if (!c.is_same(t)) t.copy_(c);
  }

  std::vector<at::Tensor> all_gather(const at::Tensor& t, const CollectiveOptions& o) override {
    check_collective_tensor(t, "all_gather");
    ENDOKED_CHECK(t.dim() >= 1, "all_gather needs at least one dimension");
    drain();
    arrive(o, "all_gather");
    if (o.verify) agree(t, "all_gather", true);
    const at::Tensor c = t.contiguous();
    long long rows = c.size(0);
    std::vector<long long> all_rows(static_cast<std::size_t>(size_));
    check_mpi(
        MPI_Allgather(&rows, 1, MPI_LONG_LONG, all_rows.data(), 1, MPI_LONG_LONG, MPI_COMM_WORLD),
        "Allgather(rows)");
    const std::int64_t row_elems = rows > 0 ? c.numel() / rows : [&] {
      std::int64_t n = 1;
      for (std::int64_t d = 1; d < c.dim(); ++d) n *= c.size(d);
      return n;
    }();
    std::vector<int> counts(static_cast<std::size_t>(size_)),
        displs(static_cast<std::size_t>(size_));
    long long total = 0;
    for (int r = 0; r < size_; ++r) {
      const long long n = all_rows[static_cast<std::size_t>(r)] * row_elems;
      ENDOKED_CHECK(total + n < (1LL << 31), "all_gather of more than 2^31 elements");
      counts[static_cast<std::size_t>(r)] = static_cast<int>(n);
      displs[static_cast<std::size_t>(r)] = static_cast<int>(total);
      total += n;
    }
    std::vector<std::int64_t> shape = c.sizes().vec();
    shape[0] = 0;
    for (auto r : all_rows) shape[0] += r;
    at::Tensor out = at::empty(shape, c.options());
    check_mpi(
        MPI_Allgatherv(c.data_ptr(), counts[static_cast<std::size_t>(rank_)], mpi_type(c),
                       out.data_ptr(), counts.data(), displs.data(), mpi_type(c), MPI_COMM_WORLD),
        "Allgatherv");
    std::vector<at::Tensor> parts;
    std::int64_t at_row = 0;
    for (auto r : all_rows) {
      parts.push_back(out.narrow(0, at_row, r));
      at_row += r;
    }
    return parts;
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  void broadcast_chunks(char* p, std::size_t n, int root) {
    constexpr std::size_t kChunk = std::size_t(1) << 30;
    for (std::size_t off = 0; off < n; off += kChunk) {
      const int len = static_cast<int>(std::min(kChunk, n - off));
      check_mpi(MPI_Bcast(p + off, len, MPI_BYTE, root, MPI_COMM_WORLD), "Bcast(bytes)");
    }
  }

  MPI_Datatype mpi_type(const at::Tensor& t) const {
    switch (t.scalar_type()) {
      case at::kFloat:
        return MPI_FLOAT;
      case at::kDouble:
        return MPI_DOUBLE;
      case at::kInt:
        return MPI_INT32_T;
      case at::kLong:
        return MPI_INT64_T;
      case at::kBFloat16:
        return types16_.bf16;
      case at::kHalf:
        return types16_.f16;
      default:
        ENDOKED_FAIL("no MPI type for ", t.dtype().name());
    }
  }

  MPI_Op mpi_op(const at::Tensor& t, ReduceOp op) const {
    const int k = op == ReduceOp::kMax ? 1 : op == ReduceOp::kMin ? 2 : 0;  // avg: a sum first
    if (t.scalar_type() == at::kBFloat16) return types16_.bf16_ops[k];
    if (t.scalar_type() == at::kHalf) return types16_.f16_ops[k];
    return k == 1 ? MPI_MAX : k == 2 ? MPI_MIN : MPI_SUM;
  }

  static int count(const at::Tensor& t) {
    ENDOKED_CHECK(t.numel() < (1LL << 31), "tensor of ", t.numel(),
                  " elements: split it (MPI counts are int)");
    return static_cast<int>(t.numel());
  }

  // Every rank describes its tensor; all compare, so all raise the same Error on a mismatch.
  void agree(const at::Tensor& t, const char* what, bool skip_first_dim) {
    const auto all = all_gather_bytes_now(describe(t, skip_first_dim));
    for (int r = 1; r < size_; ++r)
      if (all[static_cast<std::size_t>(r)] != all[0])
        ENDOKED_FAIL(what, ": ranks disagree on the tensor: rank 0 has ", all[0], ", rank ", r,
                     " has ", all[static_cast<std::size_t>(r)]);
  }

  // The stall watchdog (CollectiveOptions::timeout_s > 0): before the collective every rank
  // reports its arrival to rank 0 and joins a barrier on a separate communicator. When the
  // barrier is not complete in time, rank 0 names the ranks whose arrival it has not seen; the
  // others wait half a timeout longer (so that rank 0's message is the one printed) and fail
  // too. The caller is expected to abort the world (MPI cannot cancel a collective).
  void arrive(const CollectiveOptions& o, const char* what) {
    if (o.timeout_s <= 0) return;
    const std::uint64_t seq = ++arrival_seq_;
    if (rank_ != 0) {
      sends_.emplace_back(MPI_REQUEST_NULL, std::make_unique<std::uint64_t>(seq));
      check_mpi(MPI_Isend(sends_.back().second.get(), 1, MPI_UINT64_T, 0, kArrivalTag, watch_comm_,
                          &sends_.back().first),
                "Isend(arrival)");
      while (!sends_.empty()) {  // forget completed arrival messages
        int done = 0;
        MPI_Test(&sends_.front().first, &done, MPI_STATUS_IGNORE);
        if (!done) break;
        sends_.pop_front();
      }
    } else {
      last_arrival_[0] = seq;
    }
    MPI_Request barrier;
    check_mpi(MPI_Ibarrier(watch_comm_, &barrier), "Ibarrier(watchdog)");
    const double limit = rank_ == 0 ? o.timeout_s : 1.5 * o.timeout_s;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(limit);
    auto pause = std::chrono::microseconds(20);
    while (true) {
      if (rank_ == 0) collect_arrivals();
      int done = 0;
      check_mpi(MPI_Test(&barrier, &done, MPI_STATUS_IGNORE), "Test(watchdog)");
      if (done) return;
      if (std::chrono::steady_clock::now() > deadline) {
        if (rank_ != 0)
          ENDOKED_FAIL(what, " #", seq, " did not complete within ", o.timeout_s,
                       " s (rank 0 names the ranks that did not arrive)");
        std::string missing;
        for (int r = 0; r < size_; ++r)
          if (last_arrival_[static_cast<std::size_t>(r)] < seq)
            missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        ENDOKED_FAIL("stall: ", what, " #", seq, " did not complete within ", o.timeout_s,
                     " s: rank(s) ", missing, " did not arrive");
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(2000));
    }
  }

  // An Ibarrier on its own communicator, tested with sleeps that grow from 10 to 200 µs: the
  // core stays with the compute threads while other ranks catch up. (Tests between yields keep
  // no more of the core for them: the scheduler gives a yielding thread its fair share.)
  void wait_politely_for_every_rank() {
    MPI_Request req;
    check_mpi(MPI_Ibarrier(polite_comm_, &req), "Ibarrier(progress)");
    auto pause = std::chrono::microseconds(10);
    while (true) {
      int done = 0;
      check_mpi(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "Test(progress)");
      if (done) return;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(200));
    }
  }

  void collect_arrivals() {
    while (true) {
      int flag = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, kArrivalTag, watch_comm_, &flag, &status);
      if (!flag) return;
      std::uint64_t seq = 0;
      MPI_Recv(&seq, 1, MPI_UINT64_T, status.MPI_SOURCE, kArrivalTag, watch_comm_,
               MPI_STATUS_IGNORE);
      auto& last = last_arrival_[static_cast<std::size_t>(status.MPI_SOURCE)];
      last = std::max(last, seq);
    }
  }

  // Blocking collectives go after every async one already issued.
  void drain() { queue_.run_through(nullptr); }

  int rank_ = 0;
  int size_ = 1;
  bool owns_ = false;
  Types16 types16_;
  static constexpr int kArrivalTag = 7001;
  MPI_Comm watch_comm_ = MPI_COMM_NULL;
  MPI_Comm polite_comm_ = MPI_COMM_NULL;  // the polling policy's arrival barriers
  int local_size_ = 1;                    // ranks on this node (the auto progress policy)
  std::uint64_t arrival_seq_ = 0;
  std::vector<std::uint64_t> last_arrival_;  // rank 0: the last collective each rank reached
  std::deque<std::pair<MPI_Request, std::unique_ptr<std::uint64_t>>> sends_;
  std::unique_ptr<NodeReducer> node_reducer_;  // large float sums through shared memory
  WorkQueue queue_;  // last member: its thread stops before the rest is destroyed
};
}  // namespace

void check_mpi_thread_level(int provided) {
  if (provided >= MPI_THREAD_MULTIPLE) return;
  const auto name = [](int level) -> std::string {
    if (level == MPI_THREAD_SINGLE) return "MPI_THREAD_SINGLE";
    if (level == MPI_THREAD_FUNNELED) return "MPI_THREAD_FUNNELED";
    if (level == MPI_THREAD_SERIALIZED) return "MPI_THREAD_SERIALIZED";
    return "level " + std::to_string(level);
  };
  ENDOKED_FAIL("MPI granted thread level ", name(provided),
               " but endoked needs MPI_THREAD_MULTIPLE (a communication thread runs beside the "
               "training thread); use an MPI library built with thread support (Open MPI: "
               "--enable-mpi-thread-multiple, the default since 3.0)");
}

std::unique_ptr<Communicator> make_mpi_communicator(int* argc, char*** argv) {
  return std::make_unique<MpiCommunicator>(argc, argv);
}

int mpi_local_rank() {
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
  int local = 0;
  MPI_Comm_rank(node, &local);
  MPI_Comm_free(&node);
  return local;
}

}  // namespace endoked::dist
