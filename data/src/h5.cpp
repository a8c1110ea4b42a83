#include "h5.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "endoked/core/error.h"

namespace endoked::data::h5 {
namespace {

Handle dataset_create_plist() {
  Handle p(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  // No timestamps in the file: the same content gives the same bytes.
  H5Pset_obj_track_times(p.get(), 0);
  return p;
}

Handle string_type() {
  Handle t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

template <typename T>
void write_numbers(hid_t loc, const std::string& name, const std::vector<T>& values, hid_t type,
                   const std::string& where) {
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle dcpl = dataset_create_plist();
  Handle d(H5Dcreate2(loc, name.c_str(), type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
           H5Dclose);
  ENDOKED_CHECK(d.get() >= 0, where, ": cannot create dataset '", name, "'");
  if (n > 0)
    ENDOKED_CHECK(H5Dwrite(d.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) >= 0, where,
                  ": cannot write dataset '", name, "'");
}

template <typename T>
std::vector<T> read_numbers(hid_t loc, const std::string& name, hid_t type,
                            const std::string& where) {
  Handle d = open_dataset(loc, name, where);
  std::vector<T> out(static_cast<std::size_t>(length(loc, name, where)));
  if (!out.empty())
    ENDOKED_CHECK(H5Dread(d.get(), type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) >= 0, where,
                  ": cannot read dataset '", name, "'");
  return out;
}

}  // namespace

Handle open_dataset(hid_t loc, const std::string& name, const std::string& where) {
  Handle d(H5Dopen2(loc, name.c_str(), H5P_DEFAULT), H5Dclose);
  ENDOKED_CHECK(d.get() >= 0, where, ": missing dataset '", name, "'");
  return d;
}

void quiet() {
  static const bool done = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)done;
}

Handle create_file(const std::string& path) {
  quiet();
  Handle fcpl(H5Pcreate(H5P_FILE_CREATE), H5Pclose);
  Handle f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), H5Fclose);
  ENDOKED_CHECK(f.get() >= 0, "cannot create HDF5 file '", path, "'");
  return f;
}

Handle open_file(const std::string& path) {
  quiet();
  Handle f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  ENDOKED_CHECK(f.get() >= 0, "cannot open HDF5 file '", path,
                "' (missing, truncated or not HDF5)");
  return f;
}

Handle create_group(hid_t file, const std::string& name, const std::string& where) {
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE), H5Pclose);
  H5Pset_obj_track_times(gcpl.get(), 0);
  Handle g(H5Gcreate2(file, name.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose);
  ENDOKED_CHECK(g.get() >= 0, where, ": cannot create group '", name, "'");
  return g;
}

bool exists(hid_t loc, const std::string& path) {
  return H5Lexists(loc, path.c_str(), H5P_DEFAULT) > 0;
}

void write_attr(hid_t obj, const std::string& name, const std::string& value) {
  Handle t = string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(obj, name.c_str(), t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  ENDOKED_CHECK(a.get() >= 0, "cannot create attribute '", name, "'");
  const char* p = value.c_str();
  ENDOKED_CHECK(H5Awrite(a.get(), t.get(), &p) >= 0, "cannot write attribute '", name, "'");
}

void write_attr(hid_t obj, const std::string& name, std::int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle a(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
  ENDOKED_CHECK(a.get() >= 0, "cannot create attribute '", name, "'");
  ENDOKED_CHECK(H5Awrite(a.get(), H5T_NATIVE_INT64, &value) >= 0, "cannot write attribute '", name,
                "'");
}

std::string read_attr_string(hid_t obj, const std::string& name, const std::string& where) {
  Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  ENDOKED_CHECK(a.get() >= 0, where, ": missing attribute '", name, "'");
  Handle t = string_type();
  char* p = nullptr;
  ENDOKED_CHECK(H5Aread(a.get(), t.get(), &p) >= 0, where, ": cannot read attribute '", name, "'");
  std::string s = p ? p : "";
  H5free_memory(p);
  return s;
}

std::int64_t read_attr_i64(hid_t obj, const std::string& name, const std::string& where) {
  Handle a(H5Aopen(obj, name.c_str(), H5P_DEFAULT), H5Aclose);
  ENDOKED_CHECK(a.get() >= 0, where, ": missing attribute '", name, "'");
  std::int64_t v = 0;
  ENDOKED_CHECK(H5Aread(a.get(), H5T_NATIVE_INT64, &v) >= 0, where, ": cannot read attribute '",
                name, "'");
  return v;
}

void write_strings(hid_t loc, const std::string& name, const std::vector<std::string>& values,
                   const std::string& where) {
  std::vector<const char*> ptrs(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    ENDOKED_CHECK(values[i].find('\0') == std::string::npos, where, ": string ", i, " of '", name,
                  "' holds a NUL byte");
    ptrs[i] = values[i].c_str();
  }
  Handle t = string_type();
  const hsize_t n = values.size();
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle dcpl = dataset_create_plist();
  Handle d(
      H5Dcreate2(loc, name.c_str(), t.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
      H5Dclose);
  ENDOKED_CHECK(d.get() >= 0, where, ": cannot create dataset '", name, "'");
  if (n > 0)
    ENDOKED_CHECK(H5Dwrite(d.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) >= 0,
                  where, ": cannot write dataset '", name, "'");
}

void write_i64(hid_t loc, const std::string& name, const std::vector<std::int64_t>& values,
               const std::string& where) {
  write_numbers(loc, name, values, H5T_STD_I64LE, where);
}
void write_f64(hid_t loc, const std::string& name, const std::vector<double>& values,
               const std::string& where) {
  write_numbers(loc, name, values, H5T_IEEE_F64LE, where);
}
void write_i32(hid_t loc, const std::string& name, const std::vector<std::int32_t>& values,
               const std::string& where) {
  write_numbers(loc, name, values, H5T_STD_I32LE, where);
}

std::int64_t length(hid_t loc, const std::string& name, const std::string& where) {
  Handle d = open_dataset(loc, name, where);
  Handle space(H5Dget_space(d.get()), H5Sclose);
  ENDOKED_CHECK(H5Sget_simple_extent_ndims(space.get()) == 1, where, ": dataset '", name,
                "' is not 1-D");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  return static_cast<std::int64_t>(n);
}

std::vector<std::string> read_strings(hid_t loc, const std::string& name,
                                      const std::string& where) {
  return read_strings(loc, name, 0, length(loc, name, where), where);
}

std::vector<std::string> read_strings(hid_t loc, const std::string& name, std::int64_t first,
                                      std::int64_t count, const std::string& where) {
  Handle d = open_dataset(loc, name, where);
  const std::int64_t n = length(loc, name, where);
  ENDOKED_CHECK(first >= 0 && count >= 0 && first + count <= n, where, ": rows [", first, ", ",
                first + count, ") outside '", name, "' of ", n, " rows");
  std::vector<std::string> out;
  if (count == 0) return out;
  Handle t = string_type();
  Handle file_space(H5Dget_space(d.get()), H5Sclose);
  const hsize_t start = static_cast<hsize_t>(first), cnt = static_cast<hsize_t>(count);
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &cnt, nullptr);
  Handle mem_space(H5Screate_simple(1, &cnt, nullptr), H5Sclose);
  std::vector<char*> ptrs(cnt, nullptr);
  ENDOKED_CHECK(
      H5Dread(d.get(), t.get(), mem_space.get(), file_space.get(), H5P_DEFAULT, ptrs.data()) >= 0,
      where, ": cannot read dataset '", name, "'");
  out.reserve(cnt);
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  H5Dvlen_reclaim(t.get(), mem_space.get(), H5P_DEFAULT, ptrs.data());
  return out;
}

std::vector<std::int64_t> read_i64(hid_t loc, const std::string& name, const std::string& where) {
  return read_numbers<std::int64_t>(loc, name, H5T_NATIVE_INT64, where);
}
std::vector<double> read_f64(hid_t loc, const std::string& name, const std::string& where) {
  return read_numbers<double>(loc, name, H5T_NATIVE_DOUBLE, where);
}
bool is_float(hid_t loc, const std::string& name, const std::string& where) {
  Handle d = open_dataset(loc, name, where);
  Handle t(H5Dget_type(d.get()), H5Tclose);
  return H5Tget_class(t.get()) == H5T_FLOAT;
}
std::vector<std::int32_t> read_i32(hid_t loc, const std::string& name, const std::string& where) {
  return read_numbers<std::int32_t>(loc, name, H5T_NATIVE_INT32, where);
}

std::string read_bytes(hid_t loc, const std::string& name, std::int64_t offset, std::int64_t size,
                       const std::string& where) {
  Handle d = open_dataset(loc, name, where);
  return read_bytes(d.get(), offset, size, where + " " + name);
}

std::int64_t contiguous_offset(hid_t dataset) {
  Handle plist(H5Dget_create_plist(dataset), H5Pclose);
  if (plist.get() < 0 || H5Pget_layout(plist.get()) != H5D_CONTIGUOUS) return -1;
  const haddr_t at = H5Dget_offset(dataset);
  return at == HADDR_UNDEF ? -1 : static_cast<std::int64_t>(at);
}

std::int64_t extent(hid_t dataset) {
  Handle space(H5Dget_space(dataset), H5Sclose);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  return static_cast<std::int64_t>(n);
}

std::string read_bytes(hid_t dataset, std::int64_t offset, std::int64_t size,
                       const std::string& where) {
  Handle file_space(H5Dget_space(dataset), H5Sclose);
  hsize_t n = 0;
  H5Sget_simple_extent_dims(file_space.get(), &n, nullptr);
  ENDOKED_CHECK(offset >= 0 && size >= 0 && static_cast<hsize_t>(offset + size) <= n, where,
                ": bytes [", offset, ", ", offset + size, ") outside a dataset of ", n, " bytes");
  std::string out(static_cast<std::size_t>(size), '\0');
  if (size == 0) return out;
  const hsize_t start = static_cast<hsize_t>(offset), cnt = static_cast<hsize_t>(size);
  H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &cnt, nullptr);
  Handle mem_space(H5Screate_simple(1, &cnt, nullptr), H5Sclose);
  ENDOKED_CHECK(H5Dread(dataset, H5T_NATIVE_UINT8, mem_space.get(), file_space.get(), H5P_DEFAULT,
                        out.data()) >= 0,
                where, ": cannot read bytes");
  return out;
}

ByteAppender::ByteAppender(hid_t loc, const std::string& name, const std::string& where,
                           std::string spool_path)
    : loc_(loc), name_(name), where_(where), spool_path_(std::move(spool_path)) {
  spool_ = std::fopen(spool_path_.c_str(), "w+b");
  ENDOKED_CHECK(spool_ != nullptr, where, ": cannot create spool file '", spool_path_, "'");
}

ByteAppender::~ByteAppender() {
  if (spool_) {
    std::fclose(spool_);
    std::remove(spool_path_.c_str());
  }
}

std::int64_t ByteAppender::append(std::string_view bytes) {
  ENDOKED_CHECK(spool_ != nullptr, where_, ": append after close");
  const std::int64_t offset = size_;
  ENDOKED_CHECK(std::fwrite(bytes.data(), 1, bytes.size(), spool_) == bytes.size(), where_,
                ": cannot write ", bytes.size(), " bytes to the spool '", spool_path_, "'");
  size_ += static_cast<std::int64_t>(bytes.size());
  return offset;
}

void ByteAppender::close() {
  ENDOKED_CHECK(spool_ != nullptr, where_, ": byte dataset closed twice");
  ENDOKED_CHECK(std::fflush(spool_) == 0 && std::fseek(spool_, 0, SEEK_SET) == 0, where_,
                ": cannot rewind the spool '", spool_path_, "'");
  const hsize_t n = static_cast<hsize_t>(size_);
  Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
  Handle dcpl = dataset_create_plist();
  Handle d(H5Dcreate2(loc_, name_.c_str(), H5T_STD_U8LE, space.get(), H5P_DEFAULT, dcpl.get(),
                      H5P_DEFAULT),
           H5Dclose);
  ENDOKED_CHECK(d.get() >= 0, where_, ": cannot create dataset '", name_, "'");
  // Up to 8 MiB at a time; a small blob (most sidecar shards) gets a buffer of its own size.
  std::vector<char> buf(static_cast<std::size_t>(std::max<hsize_t>(1, std::min<hsize_t>(n, hsize_t(8) << 20))));
  for (hsize_t at = 0; at < n;) {
    const std::size_t want = static_cast<std::size_t>(std::min<hsize_t>(buf.size(), n - at));
    ENDOKED_CHECK(std::fread(buf.data(), 1, want, spool_) == want, where_,
                  ": short read from the spool '", spool_path_, "'");
    Handle file_space(H5Dget_space(d.get()), H5Sclose);
    const hsize_t cnt = want;
    H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &at, nullptr, &cnt, nullptr);
    Handle mem_space(H5Screate_simple(1, &cnt, nullptr), H5Sclose);
    ENDOKED_CHECK(H5Dwrite(d.get(), H5T_NATIVE_UINT8, mem_space.get(), file_space.get(),
                           H5P_DEFAULT, buf.data()) >= 0,
                  where_, ": cannot write dataset '", name_, "'");
    at += cnt;
  }
  std::fclose(spool_);
  spool_ = nullptr;
  std::remove(spool_path_.c_str());
}

}  // namespace endoked::data::h5
