#pragma once
// Internal: thin RAII and typed helpers over the HDF5 C API. Every failure throws endoked::Error
// naming the file and the object path. Not thread-safe (neither is the HDF5 build): callers
// serialise access.
#include <hdf5.h>

#include <cstdint>
#include <mutex>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace endoked::data::h5 {

/// Owns an hid_t and closes it with the right H5*close.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = -1;
  }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

/// Turns off HDF5's own error printing (we raise our own errors). Idempotent.
void quiet();

Handle create_file(const std::string& path);  // truncates
Handle open_file(const std::string& path);    // read-only
Handle create_group(hid_t file, const std::string& name, const std::string& file_name);
bool exists(hid_t loc, const std::string& path);

void write_attr(hid_t obj, const std::string& name, const std::string& value);
void write_attr(hid_t obj, const std::string& name, std::int64_t value);
std::string read_attr_string(hid_t obj, const std::string& name, const std::string& where);
std::int64_t read_attr_i64(hid_t obj, const std::string& name, const std::string& where);

// Whole 1-D datasets, written once (`where` names the file in errors).
void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values,
                   const std::string& where);
void write_i64(hid_t loc, const std::string& name, const std::vector<std::int64_t>& values,
               const std::string& where);
void write_f64(hid_t loc, const std::string& name, const std::vector<double>& values,
               const std::string& where);
void write_i32(hid_t loc, const std::string& name, const std::vector<std::int32_t>& values,
               const std::string& where);

std::int64_t length(hid_t loc, const std::string& name, const std::string& where);
std::vector<std::string> read_strings(hid_t loc, const std::string& name, const std::string& where);
/// Rows [first, first+count) of a string dataset.
std::vector<std::string> read_strings(hid_t loc, const std::string& name, std::int64_t first,
                                      std::int64_t count, const std::string& where);
std::vector<std::int64_t> read_i64(hid_t loc, const std::string& name, const std::string& where);
std::vector<double> read_f64(hid_t loc, const std::string& name, const std::string& where);
/// True when the dataset holds floating-point numbers.
bool is_float(hid_t loc, const std::string& name, const std::string& where);
std::vector<std::int32_t> read_i32(hid_t loc, const std::string& name, const std::string& where);
/// Bytes [offset, offset+size) of a 1-D uint8 dataset.
std::string read_bytes(hid_t loc, const std::string& name, std::int64_t offset, std::int64_t size,
                       const std::string& where);

/// The same from an open dataset (no per-call open: the hot path of loaders).
Handle open_dataset(hid_t loc, const std::string& name, const std::string& where);
/// File offset of a contiguous, allocated dataset's raw data (so its bytes can be pread without
/// the library); −1 for any other layout.
std::int64_t contiguous_offset(hid_t dataset);
/// Number of elements of a 1-D dataset.
std::int64_t extent(hid_t dataset);
std::string read_bytes(hid_t dataset, std::int64_t offset, std::int64_t size,
                       const std::string& where);

/// A 1-D uint8 dataset filled by appending blobs. The bytes are spooled to `spool_path` while
/// the shard is written and land in one contiguous dataset at close(): a reader's hyperslab read
/// is then a single pread into its buffer (no chunk index, no chunk-cache copy).
class ByteAppender {
 public:
  ByteAppender(hid_t loc, const std::string& name, const std::string& where,
               std::string spool_path);
  ~ByteAppender();
  ByteAppender(const ByteAppender&) = delete;
  ByteAppender& operator=(const ByteAppender&) = delete;
  /// Appends and returns the offset of the first byte.
  std::int64_t append(std::string_view bytes);
  std::int64_t size() const { return size_; }
  /// Writes the dataset (loc must still be open) and removes the spool.
  void close();

 private:
  hid_t loc_;
  std::string name_, where_, spool_path_;
  std::FILE* spool_ = nullptr;
  std::int64_t size_ = 0;
};

}  // namespace endoked::data::h5

namespace endoked::data {
/// The HDF5 library (Debian's parallel build) is not thread-safe: every HDF5 call goes under this
/// process-wide lock. ShardReader and ShardWriter take it in every method, so code outside data/
/// never needs it; inside data/ it also makes a sequence of calls atomic.
std::recursive_mutex& hdf5_mutex();
}  // namespace endoked::data
