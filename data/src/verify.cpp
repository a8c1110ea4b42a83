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
      if (!fs::exists(path)) {
        problem("missing");
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
    } catch (const Error& e) {
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
