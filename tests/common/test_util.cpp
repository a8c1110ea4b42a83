#include "test_util.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include <opencv2/core.hpp>

#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/seed.h"
#include "endoked/core/sha256.h"
#include "endoked/data/image_codec.h"
#include "endoked/data/store.h"

namespace fs = std::filesystem;

namespace endoked::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/endoked-test-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  ENDOKED_CHECK(::mkdtemp(buf.data()) != nullptr, "mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  files::write_file(path, bytes);
}

std::string make_jpeg(int width, int height, std::uint64_t seed, int quality) {
  Rng r(seed);
  std::vector<std::uint8_t> rgb(static_cast<std::size_t>(width) * height * 3);
  const double fx = r.uniform(0.02, 0.2), fy = r.uniform(0.02, 0.2), ph = r.uniform(0, 6.28);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c)
        rgb[(static_cast<std::size_t>(y) * width + x) * 3 + c] = static_cast<std::uint8_t>(
            127 + 100 * std::sin(fx * x + fy * y * (c + 1) + ph) + r.uniform(-20, 20));
  return data::encode_jpeg_rgb(rgb.data(), width, height, quality);
}

std::int64_t make_labelled_store(const std::string& dir, const std::string& labels_dir, int exams,
                                 int images_per_exam, int width, int height,
                                 int exams_per_shard) {
  data::begin_store(dir, true);
  data::begin_store(labels_dir, true);
  data::Manifest records, labels;
  records.kind = "records";
  records.image_columns = {"images/bytes"};
  labels.kind = "labels";
  std::int64_t images = 0;
  for (int first = 0, s = 0; first < exams; first += exams_per_shard, ++s) {
    data::ShardWriter rw(data::partial_dir(dir), s, "records");
    data::ShardWriter lw(data::partial_dir(labels_dir), s, "labels");
    for (int e = first; e < std::min(exams, first + exams_per_shard); ++e) {
      data::ExamRecord exam;
      exam.id = fmt::format("E{:04d}", e);
      exam.report = "report " + exam.id;
      exam.metadata = "{}";
      std::vector<data::ImageRecord> imgs;
      lw.add_string("exams", "id", exam.id);
      lw.add_int("exams", "first_image", lw.rows("images"));
      lw.add_int("exams", "image_count", images_per_exam);
      for (int k = 0; k < images_per_exam; ++k) {
        data::ImageRecord im;
        im.bytes = make_jpeg(width, height, static_cast<std::uint64_t>(1000 + e * 31 + k));
        im.format = "jpeg";
        im.width = width;
        im.height = height;
        im.source_path = fmt::format("{}/{:03d}.jpg", exam.id, k);
        const cv::Mat rgb = data::decode_rgb(im.bytes, 0, 0);
        const cv::Scalar mean = cv::mean(rgb);
        lw.add_int("images", "label", mean[0] > mean[2] ? 1 : 0);
        imgs.push_back(std::move(im));
        ++images;
      }
      data::add_exam(rw, exam, imgs);
    }
    records.shards.push_back(rw.close());
    labels.shards.push_back(lw.close());
  }
  data::commit_store(dir, records);
  data::commit_store(labels_dir, labels);
  return images;
}

std::string tree_hash(const std::string& dir) {
  std::vector<std::string> paths;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) paths.push_back(fs::relative(e.path(), dir).string());
  std::sort(paths.begin(), paths.end());
  Sha256 h;
  for (const auto& p : paths) {
    h.update_field(p);
    h.update_field(files::read_all(dir + "/" + p));
  }
  return h.hex();
}

int run_shell(const std::string& command, std::string* output) {
  std::FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  ENDOKED_CHECK(pipe != nullptr, "popen failed for: ", command);
  std::array<char, 4096> buf{};
  std::string out;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace endoked::testing
