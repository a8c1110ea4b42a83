#pragma once
// The record store and its sidecars (DESIGN.md §3).
//
// A store is a directory: manifest.json + shard-00000.h5, shard-00001.h5, … Each shard holds two
// tables, /exams and /images, as 1-D datasets of equal length per table (one dataset a column).
// Blob columns (encoded images, masks) are packed: /images/<col> is uint8, with
// /images/<col>_offset and /images/<col>_length (int64) per row. Strings are variable-length
// UTF-8. Readable with h5py alone:
//
//   f = h5py.File("store/shard-00000.h5")
//   o, n = f["images/bytes_offset"][i], f["images/bytes_length"][i]
//   jpeg = f["images/bytes"][o:o + n].tobytes()
//
// Writing is atomic at two levels: a shard is written under a temporary name, fsynced and
// renamed; the store is built in "<dir>.partial/" and renamed to "<dir>" after rank 0 wrote the
// manifest (last). A directory without a manifest, or a leftover ".partial", is never read as a
// store.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace endoked::data {

inline constexpr int kSchemaVersion = 1;
inline constexpr const char* kStoreFormat = "endoked-store";

/// "shard-00042.h5"
std::string shard_file_name(int index);
/// The name of an image as a flat case: its path (an image's source path in a record store, a
/// file's path below a folder) without the extension, '/' and '\\' turned into '_'
/// ("EX0000001/003.jpg" → "EX0000001_003"). Exports and `endoked segment` name files so.
std::string case_name(const std::string& path);
/// The image files below `dir` (recursively; extensions png, jpg, jpeg, bmp, tif, tiff in any
/// case), as paths relative to `dir` with '/', sorted.
std::vector<std::string> image_files(const std::string& dir);

struct ShardInfo {
  std::string file;
  std::int64_t exams = 0;
  std::int64_t images = 0;
  std::int64_t bytes = 0;      // file size
  std::string sha256;          // of the file's bytes
  std::string content_sha256;  // of the logical content (tables and blobs, in order)
  /// {"file", "exams", "images", "bytes", "sha256", "content_sha256"}, as in manifest.json.
  nlohmann::json to_json() const;
  /// Throws nlohmann::json::exception when a key is missing or has the wrong type.
  static ShardInfo from_json(const nlohmann::json& j);
};

struct Manifest {
  std::string kind;  // "records", "truth", …
  int schema_version = kSchemaVersion;
  std::vector<ShardInfo> shards;
  std::vector<std::string> image_columns;  // blob columns holding encoded images ("images/bytes")
  nlohmann::json provenance = nlohmann::json::object();  // command, source, revision, config hash
  nlohmann::json summary = nlohmann::json::object();     // stage summary (e.g. ingest rejects)
  /// Sidecars: the datasets of each shard as h5py sees them (data/sidecars.h layout()), so a
  /// Python user can read the store from its manifest alone. Empty for stores without a schema.
  nlohmann::json columns = nlohmann::json::array();

  std::int64_t exam_count() const;
  std::int64_t image_count() const;
  /// SHA-256 over the shards' content hashes in order: equal content ⇒ equal hash.
  std::string content_sha256() const;

  nlohmann::json to_json() const;
  static Manifest from_json(const nlohmann::json& j, const std::string& where);
  /// Reads `<dir>/manifest.json`; explains an interrupted write when that is what it finds.
  static Manifest load(const std::string& dir);
};

/// Writes one shard. Columns are appended row by row; every column of a table must have the
/// same number of rows at close(). Strings and ints are buffered; blobs stream to the file.
/// Every call takes the process-wide HDF5 lock (Debian's parallel HDF5 is not thread-safe), so
/// writers and readers may be used from any thread. A writer destroyed before close() removes
/// its temporary file.
class ShardWriter {
 public:
  ShardWriter(const std::string& dir, int index, const std::string& kind);
  /// The same under another file name (caches that add files beside the ones they have).
  ShardWriter(const std::string& dir, int index, const std::string& kind, const std::string& file);
  ~ShardWriter();
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;

  void add_string(const std::string& table, const std::string& column, std::string value);
  void add_int(const std::string& table, const std::string& column, std::int64_t value);
  void add_float(const std::string& table, const std::string& column, double value);
  void add_blob(const std::string& table, const std::string& column, std::string_view bytes);
  /// Creates a column before its first row, so a table that gets no rows is still written
  /// (empty datasets): readers find every declared table. `type`: 's', 'i', 'f' or 'b'.
  void declare(const std::string& table, const std::string& column, char type);
  std::int64_t rows(const std::string& table) const;
  /// Writes the buffered columns, fsyncs and renames into place; returns sizes and checksums.
  ShardInfo close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Reads one shard. Column arrays are cached after first use (references stay valid for the
/// reader's life). Thread-safe: every call takes the process-wide HDF5 lock; blobs read with
/// read_blob_at() need no lock.
class ShardReader {
 public:
  explicit ShardReader(const std::string& path);
  ~ShardReader();
  const std::string& path() const;
  std::int64_t rows(const std::string& table) const;
  bool has(const std::string& table, const std::string& column) const;
  const std::vector<std::string>& strings(const std::string& table, const std::string& column);
  const std::vector<std::int64_t>& ints(const std::string& table, const std::string& column);
  const std::vector<double>& floats(const std::string& table, const std::string& column);
  /// Any numeric column as doubles (ints converted): labels and scores.
  std::vector<double> numbers(const std::string& table, const std::string& column);
  std::string blob(const std::string& table, const std::string& column, std::int64_t row);
  /// Where a blob's bytes lie in the file when its dataset is contiguous (every store this
  /// version writes): read them with read_blob_at() without HDF5 and without its lock. Empty
  /// for other layouts (use blob()).
  struct BlobLocation {
    int fd = -1;
    std::int64_t offset = 0, length = 0;
    std::string where;  // file and row, for messages
  };
  std::optional<BlobLocation> blob_location(const std::string& table, const std::string& column,
                                            std::int64_t row);
  /// pread of a located blob; thread-safe.
  static std::string read_blob_at(const BlobLocation& at);
  std::string attr(const std::string& name) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- building a store (all ranks write shards into the same partial directory) ----

/// "<dir>.partial"
std::string partial_dir(const std::string& dir);
/// Rank 0, before any shard is written. In order:
///  - refuses an output equal to, inside, or containing any of `inputs` (a store, an images
///    folder, a report table): an overwrite there would destroy what the run reads;
///  - takes the advisory lock "<dir>.lock" (flock) for this process until commit or abandon; a
///    lock held elsewhere is an error naming the holder's pid and host;
///  - finishes an interrupted replace (restores "<dir>.old" when `dir` is missing);
///  - fails if `dir` exists and !overwrite; with overwrite, replaces only an endoked store of
///    kind `kind` (any kind when empty; "corpus" is the raw synthetic layout): never a folder
///    endoked did not make;
///  - clears a partial directory left by an earlier run, creates a new one.
/// Returns the partial directory.
/// With a `resume_key` (a hash of the run's config and inputs), a partial directory left by a
/// preempted run with the same key is kept, so the finished shards are not redone; any other
/// partial directory is cleared.
std::string begin_store(const std::string& dir, bool overwrite, const std::string& kind = "",
                        const std::vector<std::string>& inputs = {},
                        const std::string& resume_key = "");
/// Where a resumable run keeps the result of finished shard `shard` inside the partial
/// directory of `dir` (removed at commit).
std::string finished_shard_record(const std::string& dir, int shard);
/// Rank 0, after every shard is in place: writes the manifest (last) and puts the partial
/// directory at `dir`. An old store is replaced only now and in one step (the two directories
/// are exchanged), so a failed or killed run loses nothing; then the lock is released.
void commit_store(const std::string& dir, const Manifest& manifest);
/// The same for a directory that is not a store: writes `file` (last) with `content` into the
/// partial directory, then moves it to `dir`.
void commit_directory(const std::string& dir, const std::string& file, const std::string& content);
/// Rank 0, when a run gives up (nothing valid, strict rejects, an error): removes the partial
/// directory and releases the lock; whatever was at `dir` stays as it was.
void abandon_store(const std::string& dir);
/// When a replace was interrupted between its two renames (only where the file system cannot
/// exchange directories), moves "<dir>.old" back to `dir` and says so; "" when nothing needed
/// doing.
std::string recover_store(const std::string& dir);

// ---- the record store ----

struct ExamRecord {
  std::string id;
  std::string centre;
  std::string report;            // UTF-8
  std::string metadata;          // a JSON object, as text
  std::int64_t first_image = 0;  // global image index (reading) / unused (writing)
  std::int64_t image_count = 0;
};

struct ImageRecord {
  std::string bytes;   // encoded as received (JPEG, PNG, …)
  std::string format;  // "jpeg", "png", …
  std::int32_t width = 0;
  std::int32_t height = 0;
  std::string source_path;
  std::int64_t exam = 0;  // global exam index (reading)
};

/// Appends one exam with its images to a records shard.
void add_exam(ShardWriter& shard, const ExamRecord& exam, const std::vector<ImageRecord>& images);

/// Random access and scans over a record store (or any store with the same tables).
/// Thread-safe: HDF5 access is serialised by the store's internal lock.
class RecordStore {
 public:
  explicit RecordStore(const std::string& dir);
  ~RecordStore();
  const Manifest& manifest() const { return manifest_; }
  const std::string& dir() const { return dir_; }
  std::int64_t exam_count() const { return exam_start_.back(); }
  std::int64_t image_count() const { return image_start_.back(); }

  ExamRecord exam(std::int64_t index);
  /// `with_bytes` false: metadata only (size, path, exam), no blob read.
  ImageRecord image(std::int64_t index, bool with_bytes = true);
  struct ExamSpan {
    std::string id;
    std::int64_t first_image;  // global
    std::int64_t image_count;
  };
  /// Every exam's id and image range, in store order (from cached columns; no reports read).
  std::vector<ExamSpan> exam_spans();
  /// Index of the exam with this id, or -1.
  std::int64_t find_exam(const std::string& id);
  /// Visits every exam in order with its images (sequential, shard by shard).
  void scan(const std::function<void(const ExamRecord&, const std::vector<ImageRecord>&)>& visit);

 private:
  struct Location {
    std::size_t shard;
    std::int64_t row;
  };
  Location locate(const std::vector<std::int64_t>& starts, std::int64_t index,
                  const char* what) const;
  ShardReader& shard(std::size_t i);
  ExamRecord exam_locked(std::size_t s, std::int64_t row);
  ImageRecord image_locked(std::size_t s, std::int64_t row, bool with_bytes);

  std::string dir_;
  Manifest manifest_;
  std::vector<std::int64_t> exam_start_;  // prefix sums, size shards+1
  std::vector<std::int64_t> image_start_;
  std::vector<std::unique_ptr<ShardReader>> shards_;
  std::map<std::string, std::int64_t> id_index_;
};

// ---- verification ----

struct VerifyOptions {
  bool deep = false;  // also decode every image of the manifest's image columns
};
struct VerifyResult {
  std::vector<std::string> problems;  // empty when the store is sound
  std::int64_t exams = 0;
  std::int64_t images = 0;
  std::int64_t decoded = 0;
  bool ok() const { return problems.empty(); }
};
/// Checks the manifest, every shard's size and SHA-256, table lengths against the manifest,
/// blob offsets within bounds; `deep` decodes images. Never throws for a damaged store: the
/// damage is listed in `problems`.
VerifyResult verify_store(const std::string& dir, const VerifyOptions& options);
/// The first column of a records shard (exams/…, images/…, the blob offsets) whose row count
/// differs from the manifest's count for it, described; empty when they all agree. Columns
/// the shard does not have are not checked.
std::string record_columns_problem(ShardReader& reader, const ShardInfo& info);

}  // namespace endoked::data
