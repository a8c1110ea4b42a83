#include <filesystem>

#include "endoked/core/error.h"
#include "endoked/core/progress.h"
#include "endoked/core/sha256.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/store.h"

namespace fs = std::filesystem;

namespace endoked::data {

VerifyResult verify_store(const std::string& dir, const VerifyOptions& options) {
  VerifyResult result;
  Manifest manifest;
  try {
    manifest = Manifest::load(dir);
  } catch (const Error& e) {
    result.problems.push_back(e.what());
    return result;
  }
  std::int64_t total_images = manifest.image_count();
  Progress progress(options.deep ? "verify (deep)" : "verify", options.deep ? total_images : 0,
                    options.deep ? "images" : "shards");
  for (const auto& s : manifest.shards) {
    const std::string path = dir + "/" + s.file;
    auto problem = [&](const std::string& what) {
      result.problems.push_back(s.file + ": " + what);
    };
    try {
      std::error_code ec;
      const fs::file_status st = fs::status(path, ec);  // follows symbolic links
      if (ec && ec != std::errc::no_such_file_or_directory) {
        problem(ec == std::errc::too_many_symbolic_link_levels
                    ? "a symbolic link loop"
                    : "cannot be examined: " + ec.message());
        continue;
      }
      if (!fs::exists(st)) {
        problem("missing");
        continue;
      }
      if (!fs::is_regular_file(st)) {
        problem("is not a regular file (a directory or a device)");
        continue;
      }
      const auto size = static_cast<std::int64_t>(fs::file_size(path));
      if (size != s.bytes) {
        problem("size " + std::to_string(size) + " bytes, manifest says " +
                std::to_string(s.bytes) + " (truncated or replaced)");
        continue;
      }
      if (sha256_file(path) != s.sha256) {
        problem("SHA-256 differs from the manifest (file changed or corrupted)");
        continue;
      }
      ShardReader r(path);
      const std::int64_t exams = r.rows("exams"), images = r.rows("images");
      if (exams != s.exams)
        problem("exams table has " + std::to_string(exams) + " rows, manifest " +
                std::to_string(s.exams));
      if (images != s.images)
        problem("images table has " + std::to_string(images) + " rows, manifest " +
                std::to_string(s.images));
      result.exams += exams;
      result.images += images;
      const std::string columns = record_columns_problem(r, s);
      if (!columns.empty()) {
        problem(columns);
        continue;  // the checks below index the columns by row
      }
      // The exam ↔ image index must agree: each exam's images are the rows naming it.
      if (r.has("exams", "first_image") && r.has("exams", "image_count") &&
          r.has("images", "exam")) {
        const auto& first = r.ints("exams", "first_image");
        const auto& count = r.ints("exams", "image_count");
        const auto& exam_of = r.ints("images", "exam");
        std::int64_t next = 0;
        for (std::size_t e = 0; e < first.size(); ++e) {
          // (first[e] == next ≤ exam_of.size() before the sum: it cannot overflow)
          bool bad = first.size() != count.size() || first[e] != next || count[e] < 0 ||
                     count[e] > static_cast<std::int64_t>(exam_of.size()) - first[e];
          for (std::int64_t k = 0; !bad && k < count[e]; ++k)
            bad = exam_of[static_cast<std::size_t>(first[e] + k)] != static_cast<std::int64_t>(e);
          if (bad) {
            problem("exam row " + std::to_string(e) +
                    ": first_image/image_count do not match images/exam");
            break;
          }
          next = first[e] + count[e];
        }
      }
      for (const std::string& col_path : manifest.image_columns) {
        const auto slash = col_path.find('/');
        const std::string table = col_path.substr(0, slash), column = col_path.substr(slash + 1);
        const auto& off = r.ints(table, column + "_offset");
        const auto& len = r.ints(table, column + "_length");
        for (std::size_t i = 0; i < off.size(); ++i) {
          if (off[i] < 0 || len[i] < 0)
            problem(col_path + " row " + std::to_string(i) + ": negative offset/length");
        }
        if (!options.deep) continue;
        for (std::size_t i = 0; i < off.size(); ++i) {
          try {
            check_decodes(r.blob(table, column, static_cast<std::int64_t>(i)));
            ++result.decoded;
          } catch (const Error& e) {
            std::string src;
            if (r.has(table, "source_path")) src = " (" + r.strings(table, "source_path")[i] + ")";
            problem(col_path + " row " + std::to_string(i) + src + ": " + e.what());
          }
          progress.add();
        }
      }
      if (!options.deep) progress.add();
    } catch (const std::exception& e) {  // endoked::Error, or the file system's own
      problem(e.what());
    }
  }
  progress.finish();
  if (result.ok()) {
    if (result.exams != manifest.exam_count())
      result.problems.push_back("exam count differs from the manifest");
    if (result.images != manifest.image_count())
      result.problems.push_back("image count differs from the manifest");
  }
  return result;
}

}  // namespace endoked::data
