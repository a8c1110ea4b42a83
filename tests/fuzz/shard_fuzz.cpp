// The shard reader (RecordStore, ShardReader, store verify) over shards whose index columns and
// blob offsets come from the fuzz input.
//
// The input does not become the HDF5 file's bytes: HDF5's own parser of malformed files is not
// ours to fix, and a store's shards are checked against the SHA-256 in its manifest before use.
// What the reader must survive is a well-formed file whose *content* lies — first_image /
// image_count / images.exam that disagree, blob offsets and lengths outside the blob, negative
// sizes, columns missing or of another type, a manifest that disagrees with the shard — and
// that is what this target builds: a small valid shard, then columns replaced by fuzzed ones,
// then a manifest with the file's true checksum.
// Properties: no crash or sanitizer report; every failure is an endoked::Error naming the shard.
#include <hdf5.h>

#include <cstdint>
#include <fuzzer/FuzzedDataProvider.h>
#include <string>

#include "data/src/h5.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/sha256.h"
#include "endoked/data/store.h"
#include "tests/fuzz/fuzz_util.h"

using namespace endoked;

namespace {

// Text columns hold no NUL (the writer refuses one, as ingest does).
std::string text(FuzzedDataProvider& in, std::size_t max) {
  std::string s = in.ConsumeRandomLengthString(max);
  for (char& c : s)
    if (c == '\0') c = ' ';
  return s;
}

std::vector<std::int64_t> fuzzed_ints(FuzzedDataProvider& in, std::int64_t near) {
  std::vector<std::int64_t> v(in.ConsumeIntegralInRange<std::size_t>(0, 12));
  for (auto& x : v)
    x = in.ConsumeBool() ? in.ConsumeIntegralInRange<std::int64_t>(-2, near + 2)
                         : in.ConsumeIntegral<std::int64_t>();
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const std::string dir = fuzz::scratch_dir("shard") + "/store";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  data::h5::quiet();
  // A valid shard: a few exams with a few images each (image bytes from the input).
  data::ShardInfo info;
  {
    data::ShardWriter w(dir, 0, "records");
    const int exams = in.ConsumeIntegralInRange<int>(0, 4);
    for (int e = 0; e < exams; ++e) {
      std::vector<data::ImageRecord> images(in.ConsumeIntegralInRange<std::size_t>(0, 3));
      for (auto& im : images) {
        im.bytes = in.ConsumeRandomLengthString(64);
        im.format = "jpeg";
        im.width = in.ConsumeIntegral<std::int32_t>();
        im.height = in.ConsumeIntegral<std::int32_t>();
        im.source_path = text(in, 16);
      }
      data::add_exam(w, data::ExamRecord{"E" + std::to_string(e), "c",
                                         text(in, 32), "{}", 0, 0},
                     images);
    }
    info = w.close();
  }
  // Replace some columns with fuzzed ones (or delete them).
  const std::string path = dir + "/" + info.file;
  {
    static const char* kColumns[] = {"exams/first_image", "exams/image_count", "images/exam",
                                     "images/bytes_offset", "images/bytes_length",
                                     "images/width", "images/height", "exams/id"};
    const int edits = in.ConsumeIntegralInRange<int>(0, 4);
    hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    if (file < 0) std::abort();
    for (int k = 0; k < edits; ++k) {
      const std::string col = kColumns[in.ConsumeIntegralInRange<int>(0, 7)];
      if (H5Lexists(file, col.c_str(), H5P_DEFAULT) > 0) H5Ldelete(file, col.c_str(), H5P_DEFAULT);
      const auto slash = col.find('/');
      hid_t group = H5Gopen2(file, col.substr(0, slash).c_str(), H5P_DEFAULT);
      if (group < 0) continue;
      const std::string name = col.substr(slash + 1);
      switch (in.ConsumeIntegralInRange<int>(0, 2)) {
        case 0: data::h5::write_i64(group, name, fuzzed_ints(in, 64), path); break;
        case 1: data::h5::write_strings(group, name, {text(in, 8)}, path); break;
        default: break;  // deleted
      }
      H5Gclose(group);
    }
    H5Fclose(file);
  }
  // The manifest, with the file's true checksum and size; the counts possibly lying.
  data::Manifest m;
  m.kind = "records";
  info.sha256 = sha256_file(path);
  info.bytes = static_cast<std::int64_t>(std::filesystem::file_size(path));
  if (in.ConsumeBool()) info.exams = in.ConsumeIntegralInRange<std::int64_t>(-1, 6);
  if (in.ConsumeBool()) info.images = in.ConsumeIntegralInRange<std::int64_t>(-1, 14);
  m.shards = {info};
  m.image_columns = {"images/bytes"};
  files::write_file(dir + "/manifest.json", m.to_json().dump(2));

  try {
    data::VerifyOptions deep;
    deep.deep = true;
    data::verify_store(dir, deep);
  } catch (const Error&) {
  }
  try {
    data::RecordStore store(dir);
    for (std::int64_t e = 0; e < store.exam_count(); ++e) store.exam(e);
    for (std::int64_t i = 0; i < store.image_count(); ++i) store.image(i);
    store.exam_spans();
    store.scan([](const data::ExamRecord&, const std::vector<data::ImageRecord>&) {});
  } catch (const Error&) {
  }
  return 0;
}
