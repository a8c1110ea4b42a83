#include "endoked/data/ingest.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/parallel.h"
#include "endoked/core/progress.h"
#include "endoked/core/text.h"
#include "endoked/data/csv.h"
#include "endoked/data/image_codec.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::data {

Reject Reject::make(const std::string& exam_id, const std::string& path,
                    const std::string& reason) {
  Reject r{text::escape_invalid_utf8(exam_id), text::escape_invalid_utf8(path),
           text::escape_invalid_utf8(reason), {}};
  if (!text::is_valid_utf8(path)) r.path_hex = text::hex(path);
  return r;
}

json Reject::to_json() const {
  json j = {{"exam_id", exam_id}, {"path", path}, {"reason", reason}};
  if (!path_hex.empty()) j["path_hex"] = path_hex;
  return j;
}
Reject Reject::from_json(const json& j) {
  return {j.at("exam_id").get<std::string>(), j.at("path").get<std::string>(),
          j.at("reason").get<std::string>(), j.value("path_hex", std::string())};
}

namespace {
// File paths travel in the plan as JSON strings when they are UTF-8, else as {"hex": …}.
json lossless_path(const std::string& path) {
  if (text::is_valid_utf8(path)) return path;
  return json{{"hex", text::hex(path)}};
}
std::string path_from_json(const json& j) {
  return j.is_object() ? text::unhex(j.at("hex").get<std::string>()) : j.get<std::string>();
}
}  // namespace

json IngestPlan::to_json() const {
  json ex = json::array();
  for (const auto& e : exams) {
    json imgs = json::array();
    for (const auto& im : e.images) imgs.push_back({lossless_path(im.path), im.relative, im.size});
    ex.push_back({{"id", e.id},
                  {"centre", e.centre},
                  {"report", e.report},
                  {"metadata", e.metadata},
                  {"images", imgs}});
  }
  json rj = json::array();
  for (const auto& r : rejects) rj.push_back(r.to_json());
  return {{"source", source},
          {"exams", ex},
          {"shards", shards},
          {"rejects", rj},
          {"counters", counters}};
}

IngestPlan IngestPlan::from_json(const json& j) {
  IngestPlan p;
  p.source = j.at("source").get<std::string>();
  for (const auto& e : j.at("exams")) {
    PlannedExam pe;
    pe.id = e.at("id").get<std::string>();
    pe.centre = e.at("centre").get<std::string>();
    pe.report = e.at("report").get<std::string>();
    pe.metadata = e.at("metadata").get<std::string>();
    for (const auto& im : e.at("images"))
      pe.images.push_back(
          {path_from_json(im[0]), im[1].get<std::string>(), im[2].get<std::int64_t>()});
    p.exams.push_back(std::move(pe));
  }
  p.shards = j.at("shards").get<std::vector<std::vector<std::int64_t>>>();
  for (const auto& r : j.at("rejects")) p.rejects.push_back(Reject::from_json(r));
  p.counters = j.at("counters").get<std::map<std::string, std::int64_t>>();
  return p;
}

json ShardOutcome::to_json() const {
  json rj = json::array();
  for (const auto& r : rejects) rj.push_back(r.to_json());
  json j = info.to_json();
  j["rejects"] = rj;
  j["bytes_read"] = bytes_read;
  return j;
}

ShardOutcome ShardOutcome::from_json(const json& j) {
  ShardOutcome o;
  o.info = ShardInfo::from_json(j);
  for (const auto& r : j.at("rejects")) o.rejects.push_back(Reject::from_json(r));
  o.bytes_read = j.at("bytes_read").get<std::int64_t>();
  return o;
}

json summarise_rejects(const std::vector<Reject>& rejects) {
  std::map<std::string, std::int64_t> by_reason;
  for (const auto& r : rejects) {
    // Group by the reason's kind: the text before the first ':' or '(' ("corrupt JPEG").
    std::string kind = r.reason.substr(0, r.reason.find_first_of(":("));
    while (!kind.empty() && kind.back() == ' ') kind.pop_back();
    ++by_reason[kind];
  }
  return {{"total", rejects.size()}, {"by_reason", by_reason}};
}

namespace {

struct Planner {
  const IngestOptions& opt;
  std::optional<text::Encoding> encoding;  // ingest.report_encoding; nullopt = auto
  IngestPlan plan;
  std::map<std::string, std::string> first_seen;  // id → where

  void reject(const std::string& id, const std::string& path, const std::string& reason) {
    plan.rejects.push_back(Reject::make(id, path, reason));
  }

  // Text from an export (reports, metadata): UTF-8 as is (so a JSONL line decoded once is not
  // decoded again), otherwise decoded as ingest.report_encoding says (auto: GB18030 when it reads as Chinese), converted text
  // counted; what cannot be decoded is rejected.
  bool to_utf8(const std::string& raw, std::string& out, const std::string& what,
               const std::string& id, const std::string& where,
               text::Encoding* used = nullptr) {
    if (text::is_valid_utf8(raw)) {  // UTF-8 is taken as is, whatever the forced encoding
      out = raw;
      if (used) *used = text::Encoding::kUtf8;
      return true;
    }
    text::Decoded d = text::to_utf8(raw, encoding);
    if (d.source == text::Encoding::kInvalid) {
      reject(id, where, what + " is " + d.why + " (ingest.report_encoding=" +
                            opt.report_encoding + ")");
      return false;
    }
    if (d.utf8 != raw) ++plan.counters[what + "_converted_" + text::encoding_name(d.source)];
    if (used) *used = d.utf8 != raw ? d.source : text::Encoding::kUtf8;
    out = std::move(d.utf8);
    return true;
  }

  // A name (exam folder, image file, exam id, column) is never lost for its bytes: decoded like
  // the text, else kept with its invalid bytes escaped as \xHH; `raw_hex` is set whenever the
  // bytes were not UTF-8, so the source record keeps them.
  // Names that are UTF-8 are taken as they are (file systems hold UTF-8 names).
  std::string name(const std::string& raw, const std::string& what, json* source = nullptr) {
    if (text::is_valid_utf8(raw)) return raw;
    text::Decoded d = text::to_utf8(raw, encoding);
    const bool escaped = d.source == text::Encoding::kInvalid;
    const std::string how = escaped ? "escaped" : text::encoding_name(d.source);
    ++plan.counters[what + (escaped ? "_escaped" : "_converted_" + how)];
    std::string out = escaped ? text::escape_invalid_utf8(raw) : std::move(d.utf8);
    if (source) (*source)[out] = {{"hex", text::hex(raw)}, {"decoded_as", how}};
    return out;
  }

  bool check_id(const std::string& id, const std::string& where) {
    if (id.empty()) {
      reject("", where, "empty exam id");
      return false;
    }
    if (id.find('/') != std::string::npos || id == "." || id == "..") {
      reject(id, where, "exam id is not a plain name");
      return false;
    }
    for (const char c : id)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02x", static_cast<unsigned char>(c));
        std::string shown = id;
        for (char& x : shown)
          if (static_cast<unsigned char>(x) < 0x20 || x == 0x7f) x = '?';
        reject(shown, where, std::string("exam id contains a control character (byte ") + hex + ")");
        return false;
      }
    auto [it, fresh] = first_seen.emplace(id, where);
    if (!fresh) {
      reject(id, where, "duplicate exam id (first at " + it->second + ")");
      return false;
    }
    return true;
  }

  bool check_report(PlannedExam& e, const std::string& raw, const std::string& where) {
    text::Encoding used = text::Encoding::kUtf8;
    if (!to_utf8(raw, e.report, "report", e.id, where, &used)) return false;
    if (used != text::Encoding::kUtf8) e.report_encoding = text::encoding_name(used);
    e.report = text::trim(e.report);
    if (e.report.empty()) {
      reject(e.id, where, "missing report (empty text)");
      return false;
    }
    if (e.report.find('\0') != std::string::npos) {
      reject(e.id, where, "report holds a NUL byte");
      return false;
    }
    return true;
  }

  // Adds the candidate image; size problems are rejected here, content problems when read.
  void add_image(PlannedExam& e, const fs::path& path, const std::string& relative) {
    std::error_code ec;
    const auto status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
      reject(e.id, path.string(),
             fs::is_symlink(fs::symlink_status(path, ec)) ? "unreadable (link to a missing file)"
                                                          : "missing file");
      return;
    }
    if (!fs::is_regular_file(status)) {
      reject(e.id, path.string(), "not a regular file");
      return;
    }
    const auto size = static_cast<std::int64_t>(fs::file_size(path, ec));
    if (ec) {
      reject(e.id, path.string(), "cannot read: " + ec.message());
    } else if (size == 0) {
      reject(e.id, path.string(), "zero-byte file");
    } else if (static_cast<double>(size) > opt.max_image_mb * 1024 * 1024) {
      reject(e.id, path.string(),
             "file too large (" + std::to_string(size) +
                 " bytes, over max_image_mb=" + std::to_string(opt.max_image_mb) + ")");
    } else {
      e.images.push_back({path.string(), relative, size});
    }
  }

  void keep(PlannedExam e, const std::string& where) {
    if (e.images.empty()) {
      reject(e.id, where, "no images");
      return;
    }
    plan.exams.push_back(std::move(e));
  }

  void folders() {
    ENDOKED_CHECK(!opt.images_dir.empty() && fs::is_directory(opt.images_dir),
                  "ingest.images_dir '", opt.images_dir, "' is not a directory");
    ENDOKED_CHECK(!opt.reports.empty() && fs::is_regular_file(opt.reports), "ingest.reports '",
                  opt.reports, "' is not a file");
    char delim = 0;
    if (opt.delimiter == "comma")
      delim = ',';
    else if (opt.delimiter == "tab")
      delim = '\t';
    else
      ENDOKED_CHECK(opt.delimiter == "auto", "ingest.delimiter must be auto, comma or tab, got '",
                    opt.delimiter, "'");
    CsvTable table = read_csv(opt.reports, delim);
    // Column names are names: decoded like the text, else escaped (and counted), never fatal.
    for (auto& h : table.header) h = name(h, "column_name");
    auto require = [&](const std::string& key, const std::string& name) {
      const int c = table.column(name);
      if (c < 0) {
        std::string cols;
        for (const auto& h : table.header) cols += (cols.empty() ? "" : ", ") + h;
        ENDOKED_FAIL(opt.reports, ": no column '", name, "' (ingest.", key, "); columns: ", cols);
      }
      return c;
    };
    const int id_col = require("id_column", opt.id_column);
    const int report_col = require("report_column", opt.report_column);
    const int centre_col =
        opt.centre_column.empty() ? -1 : require("centre_column", opt.centre_column);
    plan.source = "folders: " + opt.images_dir + " + " + opt.reports;

    // Exam folders on disk (names may be GB18030 bytes from Windows exports, or bytes of no
    // encoding at all: then the name is kept escaped, and the raw bytes in the exam's record).
    std::map<std::string, fs::path> folders;
    json folder_source = json::object();
    for (const auto& entry : fs::directory_iterator(opt.images_dir)) {
      const std::string raw = entry.path().filename().string();
      if (raw.empty() || raw[0] == '.') continue;
      std::error_code ec;
      const bool dir = entry.is_directory(ec);  // a looping link is an error, not a crash
      if (ec) {
        reject("", entry.path().string(), "unreadable entry in images_dir (" + ec.message() + ")");
        continue;
      }
      if (!dir) {  // exams are folders: a file here belongs to no exam
        reject("", entry.path().string(), "a file at the top of images_dir (not an exam folder)");
        continue;
      }
      const std::string id = name(raw, "folder_name", &folder_source);
      if (!folders.emplace(id, entry.path()).second)
        reject(id, entry.path().string(), "two exam folders with the same name once decoded");
    }

    if (table.unterminated_line > 0)
      reject("", opt.reports + ":" + std::to_string(table.unterminated_line),
             "unterminated quoted field: the table from this line to its end was not read");
    std::set<std::string> with_report;
    Progress progress("ingest: listing exams", static_cast<std::int64_t>(table.rows.size()),
                      "exams");
    for (const auto& row : table.rows) {
      progress.add();
      const std::string where = opt.reports + ":" + std::to_string(row.line);
      if (row.fields.size() != table.header.size()) {
        reject("", where,
               "malformed row (" + std::to_string(row.fields.size()) + " fields, header has " +
                   std::to_string(table.header.size()) + ")");
        continue;
      }
      PlannedExam e;
      e.id = name(text::trim(row.fields[id_col]), "exam_id");
      if (!check_id(e.id, where)) continue;
      with_report.insert(e.id);
      if (!check_report(e, row.fields[report_col], where)) continue;
      e.centre = opt.centre;
      json meta = json::object();
      bool ok = true;
      for (std::size_t c = 0; c < row.fields.size() && ok; ++c) {
        if (static_cast<int>(c) == id_col || static_cast<int>(c) == report_col) continue;
        std::string value;
        ok = to_utf8(row.fields[c], value, "metadata", e.id, where);
        if (static_cast<int>(c) == centre_col) {
          if (!value.empty()) e.centre = value;
        } else {
          meta[table.header[c]] = value;
        }
      }
      if (!ok) continue;
      auto folder = folders.find(e.id);
      if (folder == folders.end()) {
        reject(e.id, where, "no images (no folder " + opt.images_dir + "/" + e.id + ")");
        continue;
      }
      // The source record: how the report was decoded, the raw bytes of names that were not
      // UTF-8 (the folder's and its files').
      if (!e.report_encoding.empty()) meta["source_report_encoding"] = e.report_encoding;
      if (folder_source.contains(e.id)) meta["source_folder_name"] = folder_source[e.id];
      json file_source = json::object();
      std::vector<fs::path> paths;
      std::error_code ec;
      for (fs::directory_iterator it(folder->second, ec), end; !ec && it != end;
           it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.empty() || name[0] == '.') continue;
        std::error_code dec;
        if (it->is_directory(dec)) {
          reject(e.id, it->path().string(), "a directory where an image was expected");
          continue;
        }
        paths.push_back(it->path());  // links that lead nowhere are rejected when read
      }
      if (ec) {
        reject(e.id, folder->second.string(), "cannot list the exam folder (" + ec.message() + ")");
        continue;
      }
      std::sort(paths.begin(), paths.end());
      for (const auto& p : paths)
        add_image(e, p, e.id + "/" + name(p.filename().string(), "file_name", &file_source));
      if (!file_source.empty()) meta["source_file_names"] = std::move(file_source);
      e.metadata = meta.dump();
      keep(std::move(e), folder->second.string());
    }
    for (const auto& [id, path] : folders)
      if (!with_report.count(id)) reject(id, path.string(), "missing report (no row in the table)");
  }

  void jsonl() {
    ENDOKED_CHECK(!opt.manifest.empty() && fs::is_regular_file(opt.manifest), "ingest.manifest '",
                  opt.manifest, "' is not a file");
    plan.source = "jsonl: " + opt.manifest;
    const fs::path base = fs::path(opt.manifest).parent_path();
    std::ifstream in(opt.manifest, std::ios::binary);
    std::string line;
    int n = 0;
    Progress progress("ingest: listing exams", 0, "lines");
    while (std::getline(in, line)) {
      progress.add();
      ++n;
      const std::string where = opt.manifest + ":" + std::to_string(n);
      if (text::trim(line).empty()) continue;
      // A line that is not UTF-8 is decoded first (ingest.report_encoding; auto: GB18030 when
      // it reads as Chinese): nlohmann::json refuses invalid UTF-8.
      std::string decoded_line;
      text::Encoding used = text::Encoding::kUtf8;
      if (!to_utf8(line, decoded_line, "jsonl_line", "", where, &used)) continue;
      json j;
      try {
        j = json::parse(decoded_line);
      } catch (const json::exception& e) {
        reject("", where, std::string("invalid JSON: ") + e.what());
        continue;
      }
      if (!j.is_object() || !j.contains("exam_id") || !j["exam_id"].is_string()) {
        reject("", where, "missing 'exam_id'");
        continue;
      }
      PlannedExam e;
      e.id = text::trim(j["exam_id"].get<std::string>());
      if (!check_id(e.id, where)) continue;
      if (!j.contains("report") || !j["report"].is_string()) {
        reject(e.id, where, "missing report");
        continue;
      }
      if (!check_report(e, j["report"].get<std::string>(), where)) continue;
      // Optional fields: absent or null take the default; any other type is a reject.
      if (j.contains("centre") && !j["centre"].is_null() && !j["centre"].is_string()) {
        reject(e.id, where, std::string("'centre' must be a string, got ") + j["centre"].type_name());
        continue;
      }
      if (j.contains("metadata") && !j["metadata"].is_null() && !j["metadata"].is_object()) {
        reject(e.id, where,
               std::string("'metadata' must be an object, got ") + j["metadata"].type_name());
        continue;
      }
      e.centre = j.contains("centre") && j["centre"].is_string() ? j["centre"].get<std::string>()
                                                                 : opt.centre;
      json meta = j.contains("metadata") && j["metadata"].is_object() ? j["metadata"] : json::object();
      if (used != text::Encoding::kUtf8) meta["source_report_encoding"] = text::encoding_name(used);
      e.metadata = meta.dump();
      if (!j.contains("images") || !j["images"].is_array()) {
        reject(e.id, where, "no images ('images' missing or not a list)");
        continue;
      }
      for (const auto& p : j["images"]) {
        if (!p.is_string()) {
          reject(e.id, where, "image path is not a string");
          continue;
        }
        const fs::path rel = p.get<std::string>();
        add_image(e, rel.is_absolute() ? rel : base / rel, rel.string());
      }
      keep(std::move(e), where);
    }
  }

  void cut_shards() {
    std::sort(plan.exams.begin(), plan.exams.end(),
              [](const PlannedExam& a, const PlannedExam& b) { return a.id < b.id; });
    const auto target =
        std::max<std::int64_t>(1, static_cast<std::int64_t>(opt.shard_size_mb * 1024 * 1024));
    std::int64_t bytes = 0;
    for (std::size_t i = 0; i < plan.exams.size(); ++i) {
      if (plan.shards.empty() || bytes >= target) {
        plan.shards.emplace_back();
        bytes = 0;
      }
      plan.shards.back().push_back(static_cast<std::int64_t>(i));
      for (const auto& im : plan.exams[i].images) bytes += im.size;
    }
  }
};

}  // namespace

IngestPlan plan_ingest(const IngestOptions& options) {
  ENDOKED_CHECK(options.check == "decode" || options.check == "header",
                "ingest.check must be 'decode' or 'header', got '", options.check, "'");
  // Values that would make no sense, or take the machine down, are refused before any work.
  ENDOKED_CHECK(options.threads >= 1 && options.threads <= 1024,
                "ingest.threads must be in [1, 1024], got ", options.threads);
  ENDOKED_CHECK(options.shard_size_mb > 0 && options.shard_size_mb <= 1024 * 1024,
                "ingest.shard_size_mb must be in (0, 1048576], got ", options.shard_size_mb);
  ENDOKED_CHECK(options.max_image_mb > 0, "ingest.max_image_mb must be > 0, got ",
                options.max_image_mb);
  ENDOKED_CHECK(options.max_pixels > 0, "ingest.max_pixels must be > 0, got ", options.max_pixels);
  Planner p{options, text::parse_encoding(options.report_encoding, "ingest.report_encoding"), {},
            {}};
  if (options.layout == "folders") {
    p.folders();
  } else if (options.layout == "jsonl") {
    p.jsonl();
  } else {
    ENDOKED_FAIL("ingest.layout must be 'folders' or 'jsonl', got '", options.layout, "'");
  }
  p.cut_shards();
  return std::move(p.plan);
}

ShardOutcome ingest_shard(const IngestPlan& plan, int index, const std::string& dir,
                          const IngestOptions& options, const std::function<void()>& on_image) {
  ENDOKED_CHECK(index >= 0 && index < static_cast<int>(plan.shards.size()), "shard ", index,
                " outside the plan of ", plan.shards.size());
  ShardOutcome out;
  ShardWriter writer(dir, index, "records");
  const auto& exam_ids = plan.shards[index];
  const bool decode = options.check == "decode";
  // Read and check a batch of exams in parallel; write them in order on this thread (HDF5 is
  // not thread-safe).
  constexpr std::size_t kBatch = 32;
  for (std::size_t b = 0; b < exam_ids.size(); b += kBatch) {
    const std::size_t end = std::min(exam_ids.size(), b + kBatch);
    struct Item {
      const PlannedExam* exam;
      const PlannedImage* image;
      ImageRecord record;
      std::string error;
    };
    std::vector<Item> items;
    for (std::size_t k = b; k < end; ++k) {
      const PlannedExam& e = plan.exams[static_cast<std::size_t>(exam_ids[k])];
      for (const auto& im : e.images) items.push_back({&e, &im, {}, {}});
    }
    parallel_for(static_cast<std::int64_t>(items.size()), options.threads, [&](std::int64_t i) {
      Item& it = items[static_cast<std::size_t>(i)];
      try {
        std::string bytes = files::read_all(it.image->path);
        if (bytes.empty()) ENDOKED_FAIL("zero-byte file");
        // The header's size first: a forged or huge image must not allocate gigabytes.
        const ImageInfo head = read_image_info(bytes);
        const std::int64_t pixels = static_cast<std::int64_t>(head.width) * head.height;
        if (pixels > options.max_pixels)
          ENDOKED_FAIL("image too large (", head.width, "x", head.height, " = ", pixels,
                       " pixels, over max_pixels=", options.max_pixels, ")");
        const ImageInfo info = decode ? check_decodes(bytes) : head;
        it.record.bytes = std::move(bytes);
        it.record.format = format_name(info.format);
        it.record.width = info.width;
        it.record.height = info.height;
        it.record.source_path = it.image->relative;
      } catch (const Error& e) {
        it.error = e.reason();
      }
    });
    std::size_t at = 0;
    for (std::size_t k = b; k < end; ++k) {
      const PlannedExam& e = plan.exams[static_cast<std::size_t>(exam_ids[k])];
      std::vector<ImageRecord> images;
      for (std::size_t m = 0; m < e.images.size(); ++m, ++at) {
        Item& it = items[at];
        if (!it.error.empty()) {
          out.rejects.push_back(Reject::make(e.id, it.image->path, it.error));
        } else {
          out.bytes_read += static_cast<std::int64_t>(it.record.bytes.size());
          images.push_back(std::move(it.record));
        }
      }
      if (images.empty()) {
        out.rejects.push_back(Reject::make(e.id, e.id, "no readable images"));
      } else {
        add_exam(writer, ExamRecord{e.id, e.centre, e.report, e.metadata, 0, 0}, images);
      }
      if (on_image)
        for (std::size_t m = 0; m < e.images.size(); ++m) on_image();
    }
  }
  out.info = writer.close();
  return out;
}

}  // namespace endoked::data
