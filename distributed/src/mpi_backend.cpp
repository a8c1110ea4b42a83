#include <mpi.h>

#include <cstdlib>

#include "backends.h"
#include "endoked/core/error.h"

namespace endoked::dist {
namespace {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  ENDOKED_FAIL("MPI ", what, " failed: ", std::string(text, static_cast<std::size_t>(len)));
}

MPI_Op to_mpi(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
  }
  return MPI_SUM;
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
    // Errors come back as codes (turned into endoked::Error) instead of aborting inside MPI.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
  }
  ~MpiCommunicator() override {
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (owns_ && !finalised) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "Barrier"); }

  void broadcast_bytes(std::string& data, int root) override {
    long long n = static_cast<long long>(data.size());
    check_mpi(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "Bcast(size)");
    data.resize(static_cast<std::size_t>(n));
    broadcast_chunks(data.data(), data.size(), root);
  }

  std::vector<std::string> all_gather_bytes(const std::string& mine) override {
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
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(n), MPI_INT64_T, to_mpi(op),
                            MPI_COMM_WORLD),
              "Allreduce(int64)");
  }
  void all_reduce(double* values, std::size_t n, ReduceOp op) override {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, values, static_cast<int>(n), MPI_DOUBLE, to_mpi(op),
                            MPI_COMM_WORLD),
              "Allreduce(double)");
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

  int rank_ = 0;
  int size_ = 1;
  bool owns_ = false;
};
}  // namespace

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
