#include "endoked/data/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/sha256.h"
#include "h5.h"

namespace fs = std::filesystem;

namespace endoked::data {

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex m;
  return m;
}

std::string shard_file_name(int index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "shard-%05d.h5", index);
  return buf;
}

std::vector<std::string> image_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& f : std::filesystem::recursive_directory_iterator(dir)) {
    if (!f.is_regular_file()) continue;
    std::string ext = f.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".tif" ||
        ext == ".tiff")
      out.push_back(std::filesystem::relative(f.path(), dir).generic_string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string case_name(const std::string& path) {
  const std::filesystem::path p(path);
  std::string s = (p.parent_path() / p.stem()).generic_string();
  std::replace(s.begin(), s.end(), '/', '_');
  std::replace(s.begin(), s.end(), '\\', '_');
  return s;
}

// ---------------- manifest ----------------

std::int64_t Manifest::exam_count() const {
  std::int64_t n = 0;
  for (const auto& s : shards) n += s.exams;
  return n;
}
std::int64_t Manifest::image_count() const {
  std::int64_t n = 0;
  for (const auto& s : shards) n += s.images;
  return n;
}
std::string Manifest::content_sha256() const {
  Sha256 h;
  h.update_field(kind);
  for (const auto& s : shards) h.update_field(s.content_sha256);
  return h.hex();
}

nlohmann::json ShardInfo::to_json() const {
  return {{"file", file},   {"exams", exams},   {"images", images},
          {"bytes", bytes}, {"sha256", sha256}, {"content_sha256", content_sha256}};
}

ShardInfo ShardInfo::from_json(const nlohmann::json& j) {
  ShardInfo info;
  info.file = j.at("file").get<std::string>();
  info.exams = j.at("exams").get<std::int64_t>();
  info.images = j.at("images").get<std::int64_t>();
  info.bytes = j.at("bytes").get<std::int64_t>();
  info.sha256 = j.at("sha256").get<std::string>();
  info.content_sha256 = j.at("content_sha256").get<std::string>();
  return info;
}

nlohmann::json Manifest::to_json() const {
  nlohmann::json shards_json = nlohmann::json::array();
  for (const auto& s : shards) shards_json.push_back(s.to_json());
  nlohmann::json j = {{"format", kStoreFormat},
                      {"kind", kind},
                      {"schema_version", schema_version},
                      {"exam_count", exam_count()},
                      {"image_count", image_count()},
                      {"content_sha256", content_sha256()},
                      {"image_columns", image_columns},
                      {"provenance", provenance},
                      {"summary", summary},
                      {"shards", shards_json}};
  if (!columns.empty()) j["columns"] = columns;
  return j;
}

Manifest Manifest::from_json(const nlohmann::json& j, const std::string& where) {
  try {
    ENDOKED_CHECK(j.value("format", "") == kStoreFormat, where, ": not an endoked store manifest");
    Manifest m;
    m.kind = j.at("kind").get<std::string>();
    m.schema_version = j.at("schema_version").get<int>();
    ENDOKED_CHECK(m.schema_version <= kSchemaVersion, where, ": schema version ", m.schema_version,
                  " is newer than this endoked (", kSchemaVersion, ")");
    m.image_columns = j.value("image_columns", std::vector<std::string>{});
    m.provenance = j.value("provenance", nlohmann::json::object());
    m.summary = j.value("summary", nlohmann::json::object());
    m.columns = j.value("columns", nlohmann::json::array());
    for (const auto& s : j.at("shards")) {
      ShardInfo info = ShardInfo::from_json(s);
      ENDOKED_CHECK(info.file.find('/') == std::string::npos, where, ": shard name '", info.file,
                    "' must be a plain file name");
      ENDOKED_CHECK(info.exams >= 0 && info.images >= 0 && info.bytes >= 0, where, ": shard '",
                    info.file, "' has a negative count (exams ", info.exams, ", images ",
                    info.images, ", bytes ", info.bytes, ")");
      m.shards.push_back(std::move(info));
    }
    return m;
  } catch (const nlohmann::json::exception& e) {
    ENDOKED_FAIL(where, ": malformed manifest: ", e.what());
  }
}

Manifest Manifest::load(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  std::error_code ec;
  ENDOKED_CHECK(!fs::exists(dir, ec) || fs::is_directory(dir, ec), "'", dir,
                "' is a file, not a store directory");
  if (!fs::exists(path)) {
    if (fs::exists(partial_dir(dir)))
      ENDOKED_FAIL("store '", dir, "' is incomplete: its write was interrupted ('",
                   partial_dir(dir), "' exists, no manifest); rerun the command that makes it");
    if (!fs::exists(dir) && fs::exists(dir + ".old/manifest.json"))
      ENDOKED_FAIL("store '", dir, "' is missing but its previous copy is at '", dir,
                   ".old' (a replace was interrupted): `endoked store verify ", dir,
                   "` or the next run that writes it restores it");
    if (fs::is_directory(dir))
      ENDOKED_FAIL("'", dir, "' has no manifest.json: not a store, or an interrupted write");
    ENDOKED_FAIL("store '", dir, "' does not exist");
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(files::read_all(path));
  } catch (const nlohmann::json::exception& e) {
    ENDOKED_FAIL(path, ": not valid JSON: ", e.what());
  }
  return from_json(j, path);
}

// ---------------- shard writer ----------------

namespace {
enum class ColumnType { kString, kInt, kFloat, kBlob };

struct Column {
  ColumnType type;
  std::vector<std::string> strings;
  std::vector<std::int64_t> ints;  // ints, or blob offsets
  std::vector<double> floats;
  std::vector<std::int64_t> lengths;  // blob lengths
  std::unique_ptr<h5::ByteAppender> blob;
  std::unique_ptr<Sha256> blob_hash;
  std::int64_t rows() const {
    if (type == ColumnType::kString) return static_cast<std::int64_t>(strings.size());
    if (type == ColumnType::kFloat) return static_cast<std::int64_t>(floats.size());
    return static_cast<std::int64_t>(ints.size());
  }
};
}  // namespace

struct ShardWriter::Impl {
  std::string name;  // the file name in the directory
  std::string final_path;
  std::string tmp_path;
  std::string kind;
  int index = 0;
  h5::Handle file;
  std::map<std::string, h5::Handle> groups;
  std::map<std::string, std::map<std::string, Column>> tables;
  bool closed = false;

  hid_t group(const std::string& table) {
    auto it = groups.find(table);
    if (it == groups.end())
      it = groups.emplace(table, h5::create_group(file.get(), table, tmp_path)).first;
    return it->second.get();
  }
  Column& column(const std::string& table, const std::string& name, ColumnType type) {
    ENDOKED_CHECK(!closed, final_path, ": shard already closed");
    auto& cols = tables[table];
    auto it = cols.find(name);
    if (it == cols.end()) {
      Column c{type, {}, {}, {}, {}, nullptr, nullptr};
      if (type == ColumnType::kBlob) {
        c.blob = std::make_unique<h5::ByteAppender>(group(table), name, tmp_path,
                                                    tmp_path + ".spool-" + table + "-" + name);
        c.blob_hash = std::make_unique<Sha256>();
      }
      it = cols.emplace(name, std::move(c)).first;
    }
    ENDOKED_CHECK(it->second.type == type, final_path, ": column ", table, "/", name,
                  " used with two types");
    return it->second;
  }
};

ShardWriter::ShardWriter(const std::string& dir, int index, const std::string& kind)
    : ShardWriter(dir, index, kind, shard_file_name(index)) {}

ShardWriter::ShardWriter(const std::string& dir, int index, const std::string& kind,
                         const std::string& file)
    : impl_(std::make_unique<Impl>()) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  ENDOKED_CHECK(!file.empty() && file.find('/') == std::string::npos, "shard name '", file,
                "' must be a plain file name");
  impl_->name = file;
  impl_->final_path = dir + "/" + file;
  impl_->tmp_path = files::temp_name(impl_->final_path);
  impl_->kind = kind;
  impl_->index = index;
  impl_->file = h5::create_file(impl_->tmp_path);
}

ShardWriter::~ShardWriter() {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  if (impl_ && !impl_->closed) {
    impl_->tables.clear();
    impl_->groups.clear();
    impl_->file.reset();
    ::unlink(impl_->tmp_path.c_str());
  }
}

void ShardWriter::add_string(const std::string& table, const std::string& column,
                             std::string value) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  impl_->column(table, column, ColumnType::kString).strings.push_back(std::move(value));
}
void ShardWriter::add_int(const std::string& table, const std::string& column, std::int64_t value) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  impl_->column(table, column, ColumnType::kInt).ints.push_back(value);
}
void ShardWriter::add_float(const std::string& table, const std::string& column, double value) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  impl_->column(table, column, ColumnType::kFloat).floats.push_back(value);
}
void ShardWriter::declare(const std::string& table, const std::string& column, char type) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  ENDOKED_CHECK(type == 's' || type == 'i' || type == 'f' || type == 'b',
                "ShardWriter::declare: type must be s, i, f or b");
  impl_->column(table, column,
                type == 's'   ? ColumnType::kString
                : type == 'i' ? ColumnType::kInt
                : type == 'f' ? ColumnType::kFloat
                              : ColumnType::kBlob);
}
void ShardWriter::add_blob(const std::string& table, const std::string& column,
                           std::string_view bytes) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  Column& c = impl_->column(table, column, ColumnType::kBlob);
  c.ints.push_back(c.blob->append(bytes));
  c.lengths.push_back(static_cast<std::int64_t>(bytes.size()));
  c.blob_hash->update_field(bytes);
}

std::int64_t ShardWriter::rows(const std::string& table) const {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  auto it = impl_->tables.find(table);
  if (it == impl_->tables.end() || it->second.empty()) return 0;
  return it->second.begin()->second.rows();
}

ShardInfo ShardWriter::close() {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  Impl& m = *impl_;
  ENDOKED_CHECK(!m.closed, m.final_path, ": shard closed twice");
  Sha256 content;
  content.update_field(m.kind);
  ShardInfo info;
  info.file = m.name;
  for (auto& [table, cols] : m.tables) {
    const std::int64_t n = cols.empty() ? 0 : cols.begin()->second.rows();
    for (auto& [name, c] : cols) {
      ENDOKED_CHECK_EQ(c.rows(), n, m.final_path, ": column ", table, "/", name,
                       " has a different row count than ", table, "/", cols.begin()->first);
      const hid_t g = m.group(table);
      content.update_field(table + "/" + name);
      switch (c.type) {
        case ColumnType::kString:
          h5::write_strings(g, name, c.strings, m.tmp_path);
          content.update_i64(0);
          for (const auto& s : c.strings) content.update_field(s);
          break;
        case ColumnType::kInt:
          h5::write_i64(g, name, c.ints, m.tmp_path);
          content.update_i64(1);
          for (auto v : c.ints) content.update_i64(v);
          break;
        case ColumnType::kFloat:
          h5::write_f64(g, name, c.floats, m.tmp_path);
          content.update_i64(3);
          for (double v : c.floats) {
            std::int64_t bits;
            std::memcpy(&bits, &v, sizeof bits);
            content.update_i64(bits);
          }
          break;
        case ColumnType::kBlob:
          c.blob->close();
          h5::write_i64(g, name + "_offset", c.ints, m.tmp_path);
          h5::write_i64(g, name + "_length", c.lengths, m.tmp_path);
          content.update_i64(2);
          content.update_field(c.blob_hash->hex());
          break;
      }
    }
    if (table == "exams") info.exams = n;
    if (table == "images") info.images = n;
  }
  // Tables every store has, even when a shard is empty.
  for (const char* t : {"exams", "images"}) m.group(t);
  h5::write_attr(m.file.get(), "format", std::string(kStoreFormat));
  h5::write_attr(m.file.get(), "kind", m.kind);
  h5::write_attr(m.file.get(), "schema_version", static_cast<std::int64_t>(kSchemaVersion));
  h5::write_attr(m.file.get(), "shard_index", static_cast<std::int64_t>(m.index));
  m.tables.clear();
  m.groups.clear();
  ENDOKED_CHECK(H5Fflush(m.file.get(), H5F_SCOPE_GLOBAL) >= 0, m.tmp_path, ": flush failed");
  m.file.reset();
  files::fsync_path(m.tmp_path);
  files::atomic_rename(m.tmp_path, m.final_path);
  m.closed = true;
  info.content_sha256 = content.hex();
  info.sha256 = sha256_file(m.final_path);
  info.bytes = static_cast<std::int64_t>(fs::file_size(m.final_path));
  return info;
}

// ---------------- shard reader ----------------

struct ShardReader::Impl {
  std::string path;
  h5::Handle file;
  std::map<std::string, h5::Handle> blobs;                               // open blob datasets
  std::map<std::string, std::pair<std::int64_t, std::int64_t>> blob_at;  // file offset, size
  int fd = -1;                                 // the file, for reading contiguous blobs directly
  hid_t blob_dataset(const std::string& key);  // opened once, then cached
  ~Impl() {
    if (fd >= 0) ::close(fd);
  }
  std::map<std::string, std::vector<std::string>> strings;
  std::map<std::string, std::vector<std::int64_t>> ints;
  std::map<std::string, std::vector<double>> floats;
};

ShardReader::ShardReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  impl_->path = path;
  impl_->file = h5::open_file(path);
  ENDOKED_CHECK(h5::read_attr_string(impl_->file.get(), "format", path) == kStoreFormat, path,
                ": not an endoked shard");
}
ShardReader::~ShardReader() {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  impl_.reset();  // closes the HDF5 handles under the lock
}

const std::string& ShardReader::path() const {
  return impl_->path;
}

std::int64_t ShardReader::rows(const std::string& table) const {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  // A table's row count is the length of any of its columns; "id" for exams, else the first.
  h5::Handle g(H5Gopen2(impl_->file.get(), table.c_str(), H5P_DEFAULT), H5Gclose);
  ENDOKED_CHECK(g.get() >= 0, impl_->path, ": missing table '", table, "'");
  H5G_info_t info;
  H5Gget_info(g.get(), &info);
  if (info.nlinks == 0) return 0;
  char name[256];
  H5Lget_name_by_idx(g.get(), ".", H5_INDEX_NAME, H5_ITER_INC, 0, name, sizeof(name), H5P_DEFAULT);
  std::string first = name;
  // a blob's data column is not one row per entry; use its offsets instead
  if (h5::exists(g.get(), first + "_offset")) first += "_offset";
  return h5::length(g.get(), first, impl_->path);
}

bool ShardReader::has(const std::string& table, const std::string& column) const {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  return h5::exists(impl_->file.get(), table) &&
         h5::exists(impl_->file.get(), table + "/" + column);
}

namespace {
// A column read once and kept: `read` loads it on the first request.
template <typename T, typename Read>
const std::vector<T>& cached(std::map<std::string, std::vector<T>>& cache, const std::string& key,
                             Read&& read) {
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, read()).first;
  return it->second;
}
}  // namespace

const std::vector<std::string>& ShardReader::strings(const std::string& table,
                                                     const std::string& column) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  const std::string key = table + "/" + column;
  return cached(impl_->strings, key,
                [&] { return h5::read_strings(impl_->file.get(), key, impl_->path); });
}

const std::vector<std::int64_t>& ShardReader::ints(const std::string& table,
                                                   const std::string& column) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  const std::string key = table + "/" + column;
  return cached(impl_->ints, key,
                [&] { return h5::read_i64(impl_->file.get(), key, impl_->path); });
}

const std::vector<double>& ShardReader::floats(const std::string& table,
                                               const std::string& column) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  const std::string key = table + "/" + column;
  return cached(impl_->floats, key,
                [&] { return h5::read_f64(impl_->file.get(), key, impl_->path); });
}

std::vector<double> ShardReader::numbers(const std::string& table, const std::string& column) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  if (h5::is_float(impl_->file.get(), table + "/" + column, impl_->path))
    return floats(table, column);
  const auto& v = ints(table, column);
  return std::vector<double>(v.begin(), v.end());
}

namespace {

// Offset and length of a blob row (columns <column>_offset and <column>_length), checked.
struct BlobRow {
  std::string key;  // "<table>/<column>"
  std::int64_t offset = 0, length = 0;
};

BlobRow blob_row(ShardReader& r, const std::string& table, const std::string& column,
                 std::int64_t row) {
  const auto& off = r.ints(table, column + "_offset");
  const auto& len = r.ints(table, column + "_length");
  ENDOKED_CHECK(row >= 0 && row < static_cast<std::int64_t>(off.size()), r.path(), ": row ", row,
                " outside ", table, "/", column, " of ", off.size(), " rows");
  return {table + "/" + column, off[static_cast<std::size_t>(row)],
          len[static_cast<std::size_t>(row)]};
}

}  // namespace

hid_t ShardReader::Impl::blob_dataset(const std::string& key) {
  auto it = blobs.find(key);
  if (it == blobs.end()) it = blobs.emplace(key, h5::open_dataset(file.get(), key, path)).first;
  return it->second.get();
}

std::string ShardReader::blob(const std::string& table, const std::string& column,
                              std::int64_t row) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  const BlobRow b = blob_row(*this, table, column, row);
  return h5::read_bytes(impl_->blob_dataset(b.key), b.offset, b.length, impl_->path + " " + b.key);
}

std::optional<ShardReader::BlobLocation> ShardReader::blob_location(const std::string& table,
                                                                    const std::string& column,
                                                                    std::int64_t row) {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  const BlobRow b = blob_row(*this, table, column, row);
  const std::string& key = b.key;
  auto at = impl_->blob_at.find(key);
  if (at == impl_->blob_at.end()) {
    const hid_t d = impl_->blob_dataset(key);
    at = impl_->blob_at.emplace(key, std::make_pair(h5::contiguous_offset(d), h5::extent(d))).first;
  }
  const auto [base, size] = at->second;
  if (base < 0) return std::nullopt;
  ENDOKED_CHECK(b.offset >= 0 && b.length >= 0 && b.offset + b.length <= size, impl_->path, " ",
                key, ": bytes [", b.offset, ", ", b.offset + b.length, ") of row ", row,
                " outside a dataset of ", size, " bytes");
  if (impl_->fd < 0) {
    impl_->fd = ::open(impl_->path.c_str(), O_RDONLY | O_CLOEXEC);
    ENDOKED_CHECK(impl_->fd >= 0, impl_->path, ": cannot open: ", std::strerror(errno));
  }
  return BlobLocation{impl_->fd, base + b.offset, b.length,
                      impl_->path + " " + key + " row " + std::to_string(row)};
}

std::string ShardReader::read_blob_at(const BlobLocation& at) {
  std::string out;
  out.resize(static_cast<std::size_t>(at.length));
  std::int64_t done = 0;
  while (done < at.length) {
    const ssize_t n = ::pread(at.fd, out.data() + done, static_cast<std::size_t>(at.length - done),
                              static_cast<off_t>(at.offset + done));
    if (n < 0 && errno == EINTR) continue;
    ENDOKED_CHECK(n > 0, at.where,
                  ": read failed: ", n < 0 ? std::strerror(errno) : "file too short");
    done += n;
  }
  return out;
}

std::string ShardReader::attr(const std::string& name) const {
  const std::lock_guard<std::recursive_mutex> hdf5_lock(hdf5_mutex());
  return h5::read_attr_string(impl_->file.get(), name, impl_->path);
}

// ---------------- building ----------------

std::string partial_dir(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d + ".partial";
}

// ---------------- record store ----------------

void add_exam(ShardWriter& shard, const ExamRecord& exam, const std::vector<ImageRecord>& images) {
  const std::int64_t exam_row = shard.rows("exams");
  const std::int64_t first = shard.rows("images");
  shard.add_string("exams", "id", exam.id);
  shard.add_string("exams", "centre", exam.centre);
  shard.add_string("exams", "report", exam.report);
  shard.add_string("exams", "metadata", exam.metadata.empty() ? "{}" : exam.metadata);
  shard.add_int("exams", "first_image", first);
  shard.add_int("exams", "image_count", static_cast<std::int64_t>(images.size()));
  for (const auto& im : images) {
    shard.add_blob("images", "bytes", im.bytes);
    shard.add_string("images", "format", im.format);
    shard.add_int("images", "width", im.width);
    shard.add_int("images", "height", im.height);
    shard.add_int("images", "exam", exam_row);
    shard.add_string("images", "source_path", im.source_path);
  }
}

std::string record_columns_problem(ShardReader& r, const ShardInfo& info) {
  auto rows = [&](const char* table, const char* column, bool text) -> std::int64_t {
    return static_cast<std::int64_t>(text ? r.strings(table, column).size()
                                          : r.ints(table, column).size());
  };
  struct Column {
    const char* table;
    const char* name;
    bool text;
  };
  static const Column kColumns[] = {
      {"exams", "id", true},          {"exams", "centre", true},
      {"exams", "report", true},      {"exams", "metadata", true},
      {"exams", "first_image", false}, {"exams", "image_count", false},
      {"images", "format", true},     {"images", "source_path", true},
      {"images", "width", false},     {"images", "height", false},
      {"images", "exam", false},      {"images", "bytes_offset", false},
      {"images", "bytes_length", false}};
  for (const Column& c : kColumns) {
    if (!r.has(c.table, c.name)) continue;  // a missing column fails where it is read
    const std::int64_t want = std::string(c.table) == "exams" ? info.exams : info.images;
    const std::int64_t n = rows(c.table, c.name, c.text);
    if (n != want)
      return std::string("column ") + c.table + "/" + c.name + " has " + std::to_string(n) +
             " rows, the manifest says " + std::to_string(want);
  }
  return {};
}

RecordStore::RecordStore(const std::string& dir) : dir_(dir), manifest_(Manifest::load(dir)) {
  exam_start_.push_back(0);
  image_start_.push_back(0);
  for (const auto& s : manifest_.shards) {
    const std::string path = dir_ + "/" + s.file;
    ENDOKED_CHECK(fs::exists(path), "store '", dir_, "': shard ", s.file, " is missing");
    const auto size = static_cast<std::int64_t>(fs::file_size(path));
    ENDOKED_CHECK_EQ(size, s.bytes, "store '", dir_, "': shard ", s.file,
                     " has the wrong size (truncated or replaced); run `endoked store verify`");
    exam_start_.push_back(exam_start_.back() + s.exams);
    image_start_.push_back(image_start_.back() + s.images);
  }
  shards_.resize(manifest_.shards.size());
}

RecordStore::~RecordStore() = default;

ShardReader& RecordStore::shard(std::size_t i) {
  if (!shards_[i]) {
    auto r = std::make_unique<ShardReader>(dir_ + "/" + manifest_.shards[i].file);
    // Every column read by row must have the rows the manifest counts: a damaged or edited
    // shard is an error naming it here, never an index past a column's end later.
    const std::string problem = record_columns_problem(*r, manifest_.shards[i]);
    ENDOKED_CHECK(problem.empty(), "store '", dir_, "': shard ", manifest_.shards[i].file, ": ",
                  problem, " (a damaged or edited store; `endoked store verify --deep` lists what "
                  "else is wrong)");
    shards_[i] = std::move(r);
  }
  return *shards_[i];
}

RecordStore::Location RecordStore::locate(const std::vector<std::int64_t>& starts,
                                          std::int64_t index, const char* what) const {
  ENDOKED_CHECK(index >= 0 && index < starts.back(), "store '", dir_, "': ", what, " index ", index,
                " outside [0, ", starts.back(), ")");
  const auto it = std::upper_bound(starts.begin(), starts.end(), index);
  const std::size_t s = static_cast<std::size_t>(it - starts.begin()) - 1;
  return {s, index - starts[s]};
}

ExamRecord RecordStore::exam_locked(std::size_t s, std::int64_t row) {
  ShardReader& r = shard(s);
  ExamRecord e;
  e.id = r.strings("exams", "id").at(row);
  e.centre = r.strings("exams", "centre").at(row);
  e.report = r.strings("exams", "report").at(row);
  e.metadata = r.strings("exams", "metadata").at(row);
  e.first_image = image_start_[s] + r.ints("exams", "first_image").at(row);
  e.image_count = r.ints("exams", "image_count").at(row);
  return e;
}

ImageRecord RecordStore::image_locked(std::size_t s, std::int64_t row, bool with_bytes) {
  ShardReader& r = shard(s);
  ImageRecord im;
  if (with_bytes) im.bytes = r.blob("images", "bytes", row);
  im.format = r.strings("images", "format").at(row);
  im.width = static_cast<std::int32_t>(r.ints("images", "width").at(row));
  im.height = static_cast<std::int32_t>(r.ints("images", "height").at(row));
  im.source_path = r.strings("images", "source_path").at(row);
  im.exam = exam_start_[s] + r.ints("images", "exam").at(row);
  return im;
}

ExamRecord RecordStore::exam(std::int64_t index) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  const Location at = locate(exam_start_, index, "exam");
  return exam_locked(at.shard, at.row);
}

ImageRecord RecordStore::image(std::int64_t index, bool with_bytes) {
  std::optional<ShardReader::BlobLocation> where;
  ImageRecord im;
  {
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    const Location at = locate(image_start_, index, "image");
    if (with_bytes) where = shard(at.shard).blob_location("images", "bytes", at.row);
    // A contiguous blob is read below, outside the library lock (threads read in parallel).
    im = image_locked(at.shard, at.row, with_bytes && !where);
  }
  if (where) im.bytes = ShardReader::read_blob_at(*where);
  return im;
}

std::vector<RecordStore::ExamSpan> RecordStore::exam_spans() {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  std::vector<ExamSpan> out;
  out.reserve(static_cast<std::size_t>(exam_count()));
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    ShardReader& r = shard(s);
    const auto& ids = r.strings("exams", "id");
    const auto& first = r.ints("exams", "first_image");
    const auto& count = r.ints("exams", "image_count");
    for (std::size_t i = 0; i < ids.size(); ++i)
      out.push_back({ids[i], image_start_[s] + first[i], count[i]});
  }
  return out;
}

std::int64_t RecordStore::find_exam(const std::string& id) {
  std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
  if (id_index_.empty()) {
    for (std::size_t s = 0; s < shards_.size(); ++s) {
      const auto& ids = shard(s).strings("exams", "id");
      for (std::size_t i = 0; i < ids.size(); ++i)
        id_index_.emplace(ids[i], exam_start_[s] + static_cast<std::int64_t>(i));
    }
  }
  auto it = id_index_.find(id);
  return it == id_index_.end() ? -1 : it->second;
}

void RecordStore::scan(
    const std::function<void(const ExamRecord&, const std::vector<ImageRecord>&)>& visit) {
  for (std::size_t s = 0; s < shards_.size(); ++s) {
    std::int64_t n_exams;
    {
      std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
      n_exams = manifest_.shards[s].exams;
    }
    for (std::int64_t row = 0; row < n_exams; ++row) {
      ExamRecord e;
      std::vector<ImageRecord> images;
      {
        std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
        e = exam_locked(s, row);
        const std::int64_t local_first = e.first_image - image_start_[s];
        for (std::int64_t k = 0; k < e.image_count; ++k)
          images.push_back(image_locked(s, local_first + k, true));
      }
      visit(e, images);
    }
    std::lock_guard<std::recursive_mutex> lock(hdf5_mutex());
    shards_[s].reset();  // a scan keeps one shard open at a time
  }
}

}  // namespace endoked::data
