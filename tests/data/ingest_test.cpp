#include "endoked/data/ingest.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>

#include "../common/test_util.h"
#include "endoked/core/error.h"
#include "endoked/core/files.h"
#include "endoked/core/run_dir.h"
#include "endoked/core/text.h"
#include "endoked/distributed/communicator.h"
#include "ingest_stage.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace endoked::data {
namespace {

std::string png_bytes() {
  cv::Mat m(30, 40, CV_8UC3, cv::Scalar(10, 200, 30));
  std::vector<std::uint8_t> out;
  cv::imencode(".png", m, out);
  return {out.begin(), out.end()};
}

// The hospital layout with one of every kind of bad input.
void make_folder_source(const testing::TempDir& t) {
  const std::string im = t / "images";
  auto jpeg = [](int seed) { return testing::make_jpeg(48, 40, static_cast<std::uint64_t>(seed)); };
  const std::string whole = jpeg(99);
  const std::string truncated = whole.substr(0, whole.size() * 2 / 3);  // header intact, scan cut
  testing::write_file(im + "/E001/0.jpg", jpeg(1));
  testing::write_file(im + "/E001/1.jpg", jpeg(2));
  fs::create_symlink(t / "nowhere.jpg", im + "/E001/2.jpg");
  testing::write_file(im + "/E002/0.jpg", jpeg(3));
  testing::write_file(im + "/E002/empty.jpg", "");
  testing::write_file(im + "/E002/notes.txt", "operator notes, not an image");
  testing::write_file(im + "/E002/trunc.jpg", truncated);
  testing::write_file(im + "/E002/.DS_Store", "hidden files are skipped");
  testing::write_file(im + "/E003/1.png", png_bytes());
  testing::write_file(im + "/E003/big.jpg", testing::make_jpeg(400, 300, 5, 100));
  fs::create_directories(im + "/E004");
  testing::write_file(im + "/E005/0.jpg", jpeg(6));
  testing::write_file(im + "/E006/0.jpg", jpeg(7));
  testing::write_file(im + "/E007/0.jpg", jpeg(8));
  testing::write_file(im + "/E008/trunc.jpg", truncated);
  testing::write_file(im + "/E009/0.jpg", jpeg(9));
  testing::write_file(im + "/E010/0.jpg", jpeg(10));
  const std::string gb = text::utf8_to_gb18030("横结肠见一枚0.6cm广基息肉，予切除。");
  std::string table = "exam_id,centre,report,age\n";
  table += "E001,north,\"A 6 mm polyp in the sigmoid colon.\nRemoved.\",61\n";
  table += "E002,north,结肠镜检查未见异常。,55\n";
  table += "E003,south,No polyps were found.,70\n";
  table += "E004,south,No polyps.,40\n";
  table += "E006,south," + gb + ",66\n";
  table += "E007,south,\x81\x20\xFF broken,50\n";
  table += "E008,north,Polyp removed.,45\n";
  table += "E009,north,First E009 row.,45\n";
  table += "E009,north,Second E009 row.,45\n";
  table += "E010,north,   ,45\n";
  table += "E011,north,Report without images.,45\n";
  table += "E012,too,many,fields,here\n";
  testing::write_file(t / "reports.csv", table);
}

IngestOptions folder_options(const testing::TempDir& t) {
  IngestOptions o;
  o.layout = "folders";
  o.images_dir = t / "images";
  o.reports = t / "reports.csv";
  o.centre_column = "centre";
  o.output = t / "store";
  o.shard_size_mb = 1;
  o.max_image_mb = 0.02;  // the 400x300 quality-100 JPEG is larger
  o.threads = 2;
  return o;
}

IngestOptions jsonl_options(const std::string& manifest, const std::string& output) {
  IngestOptions o;
  o.layout = "jsonl";
  o.manifest = manifest;
  o.output = output;
  return o;
}

std::map<std::string, std::vector<std::string>> rejects_by_exam(const std::string& store) {
  std::map<std::string, std::vector<std::string>> out;
  std::istringstream in(files::read_all(store + "/rejects.jsonl"));
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line);
    out[j["exam_id"].get<std::string>()].push_back(j["reason"].get<std::string>() + " @ " +
                                                   j["path"].get<std::string>());
  }
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& needle) {
  for (const auto& s : v)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

TEST(Ingest, FolderLayoutWithEveryKindOfBadInput) {
  testing::TempDir t;
  make_folder_source(t);
  auto comm = dist::make_local_communicator();
  RunDir run(t / "run", true);
  const IngestOptions opt = folder_options(t);
  const auto summary = recipes::run_ingest(*comm, opt, run);

  EXPECT_EQ(summary.exams, 5);   // E001 E002 E003 E006 E009
  EXPECT_EQ(summary.images, 6);  // 2 + 1 + 1 (png) + 1 + 1
  EXPECT_EQ(summary.rejects, 14) << files::read_all(opt.output + "/rejects.jsonl");

  const auto rejects = rejects_by_exam(opt.output);
  EXPECT_TRUE(has(rejects.at("E001"),
                  "unreadable (link to a missing file) @ " + (t / "images/E001/2.jpg")));
  EXPECT_TRUE(has(rejects.at("E002"), "zero-byte file @ " + (t / "images/E002/empty.jpg")));
  EXPECT_TRUE(has(rejects.at("E002"),
                  "not an image (unknown signature) @ " + (t / "images/E002/notes.txt")));
  EXPECT_TRUE(has(rejects.at("E002"), "corrupt JPEG"));
  EXPECT_TRUE(has(rejects.at("E003"), "file too large"));
  EXPECT_TRUE(has(rejects.at("E004"), "no images"));
  EXPECT_TRUE(has(rejects.at("E005"), "missing report (no row in the table)"));
  EXPECT_TRUE(has(rejects.at("E007"), "report is neither UTF-8 nor GB18030"));
  EXPECT_TRUE(has(rejects.at("E007"), "@ " + (t / "reports.csv") + ":8"));
  EXPECT_TRUE(has(rejects.at("E008"), "no readable images"));
  EXPECT_TRUE(
      has(rejects.at("E009"), "duplicate exam id (first at " + (t / "reports.csv") + ":10)"));
  EXPECT_TRUE(has(rejects.at("E010"), "missing report (empty text)"));
  EXPECT_TRUE(has(rejects.at("E011"), "no images (no folder"));
  EXPECT_TRUE(has(rejects.at(""),
                  "malformed row (5 fields, header has 4) @ " + (t / "reports.csv") + ":14"));
  EXPECT_EQ(summary.json["converted"]["report_converted_gb18030"], 1);

  RecordStore store(opt.output);
  ASSERT_EQ(store.exam_count(), 5);
  const ExamRecord e1 = store.exam(0);
  EXPECT_EQ(e1.id, "E001");
  EXPECT_EQ(e1.centre, "north");
  EXPECT_EQ(e1.report, "A 6 mm polyp in the sigmoid colon.\nRemoved.");
  EXPECT_EQ(json::parse(e1.metadata)["age"], "61");
  EXPECT_EQ(store.image(0).bytes, files::read_all(t / "images/E001/0.jpg"));
  EXPECT_EQ(store.image(0).source_path, "E001/0.jpg");
  const ExamRecord e3 = store.exam(2);
  EXPECT_EQ(e3.id, "E003");
  EXPECT_EQ(store.image(e3.first_image).format, "png");
  EXPECT_EQ(store.image(e3.first_image).width, 40);
  const ExamRecord e6 = store.exam(3);
  EXPECT_EQ(e6.report, "横结肠见一枚0.6cm广基息肉，予切除。");
  EXPECT_TRUE(verify_store(opt.output, VerifyOptions{true}).ok());
  EXPECT_TRUE(fs::exists(t / "run/metrics.jsonl"));
}

TEST(Ingest, SourceIsNeverModified) {
  testing::TempDir t;
  make_folder_source(t);
  const std::string images = testing::tree_hash(t / "images");
  const std::string table = files::read_all(t / "reports.csv");
  auto comm = dist::make_local_communicator();
  recipes::run_ingest(*comm, folder_options(t), RunDir(t / "run", true));
  EXPECT_EQ(testing::tree_hash(t / "images"), images);
  EXPECT_EQ(files::read_all(t / "reports.csv"), table);
}

TEST(Ingest, ConfigurationErrorsNameTheFileAndKey) {
  testing::TempDir t;
  make_folder_source(t);
  IngestOptions o = folder_options(t);
  o.report_column = "text";
  try {
    plan_ingest(o);
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("no column 'text' (ingest.report_column)"), std::string::npos) << m;
    EXPECT_NE(m.find("exam_id, centre, report, age"), std::string::npos) << m;
  }
  o = folder_options(t);
  o.images_dir = t / "nowhere";
  EXPECT_THROW(plan_ingest(o), Error);
  o = folder_options(t);
  o.layout = "zip";
  EXPECT_THROW(plan_ingest(o), Error);
  // Values that make no sense are refused before any work, naming the key and the value.
  o = folder_options(t);
  o.threads = -1;
  EXPECT_THROW_MSG(plan_ingest(o), "ingest.threads must be in [1, 1024], got -1");
  o = folder_options(t);
  o.shard_size_mb = 0;
  EXPECT_THROW_MSG(plan_ingest(o), "ingest.shard_size_mb must be in (0, 1048576], got 0");
  o = folder_options(t);
  o.max_pixels = -5;
  EXPECT_THROW_MSG(plan_ingest(o), "ingest.max_pixels must be > 0, got -5");
}

TEST(Ingest, ExistingOutputIsRefusedAndKept) {
  testing::TempDir t;
  make_folder_source(t);
  auto comm = dist::make_local_communicator();
  const IngestOptions opt = folder_options(t);
  const auto first = recipes::run_ingest(*comm, opt, RunDir(t / "run", true));
  EXPECT_THROW(recipes::run_ingest(*comm, opt, RunDir(t / "run", true)), Error);
  EXPECT_EQ(Manifest::load(opt.output).content_sha256(), first.content_sha256);
  IngestOptions again = opt;
  again.overwrite = true;
  EXPECT_EQ(recipes::run_ingest(*comm, again, RunDir(t / "run", true)).content_sha256,
            first.content_sha256);
}

TEST(Ingest, JsonlManifest) {
  testing::TempDir t;
  testing::write_file(t / "src/a/0.jpg", testing::make_jpeg(32, 32, 1));
  testing::write_file(t / "src/a/1.jpg", testing::make_jpeg(32, 32, 2));
  testing::write_file(t / "src/b/0.jpg", testing::make_jpeg(32, 32, 3));
  testing::write_file(t / "src/c/0.jpg", "");
  std::string lines;
  lines +=
      R"({"exam_id": "B", "report": "No polyps.", "images": ["b/0.jpg"], "centre": "x", "metadata": {"sex": "F"}})"
      "\n";
  lines +=
      R"({"exam_id": "A", "report": "Two polyps removed.", "images": ["a/0.jpg", "a/1.jpg", "a/missing.jpg"]})"
      "\n";
  lines += "{not json\n";
  lines += R"({"exam_id": "C", "report": "x", "images": ["c/0.jpg"]})"
           "\n";
  lines += R"({"exam_id": "D", "images": ["a/0.jpg"]})"
           "\n";
  lines += R"({"exam_id": "A", "report": "again", "images": ["a/0.jpg"]})"
           "\n";
  lines += R"({"exam_id": "E", "report": "no list", "images": "a/0.jpg"})"
           "\n";
  lines += "{\"exam_id\": \"G\", \"report\": \"" + text::utf8_to_gb18030("未见息肉") +
           "\", \"images\": [\"b/0.jpg\"]}\n";
  testing::write_file(t / "src/manifest.jsonl", lines);
  const IngestOptions o = jsonl_options(t / "src/manifest.jsonl", t / "store");
  auto comm = dist::make_local_communicator();
  const auto s = recipes::run_ingest(*comm, o, RunDir(t / "run", true));
  EXPECT_EQ(s.exams, 3);  // A, B, G (sorted by id)
  EXPECT_EQ(s.images, 4);
  const auto rejects = rejects_by_exam(o.output);
  EXPECT_TRUE(has(rejects.at("A"), "missing file"));
  EXPECT_TRUE(has(rejects.at("A"), "duplicate exam id"));
  EXPECT_TRUE(has(rejects.at(""), "invalid JSON"));
  EXPECT_TRUE(has(rejects.at(""), " @ " + (t / "src/manifest.jsonl") + ":3"));
  EXPECT_TRUE(has(rejects.at("C"), "zero-byte file"));
  EXPECT_TRUE(has(rejects.at("C"), "no images"));
  EXPECT_TRUE(has(rejects.at("D"), "missing report"));
  EXPECT_TRUE(has(rejects.at("E"), "not a list"));
  RecordStore store(o.output);
  EXPECT_EQ(store.exam(0).id, "A");
  EXPECT_EQ(store.exam(1).centre, "x");
  EXPECT_EQ(json::parse(store.exam(1).metadata)["sex"], "F");
  EXPECT_EQ(store.exam(2).report, "未见息肉");
}

TEST(Ingest, HeaderCheckIsFasterButDecodeCheckCatchesTruncation) {
  testing::TempDir t;
  const std::string jpeg = testing::make_jpeg(64, 64, 4);
  testing::write_file(t / "images/X/0.jpg", jpeg.substr(0, jpeg.size() * 2 / 3));
  testing::write_file(t / "reports.csv", "exam_id,report\nX,text\n");
  IngestOptions o;
  o.images_dir = t / "images";
  o.reports = t / "reports.csv";
  o.output = t / "decode";
  const IngestPlan plan = plan_ingest(o);
  ASSERT_EQ(plan.exams.size(), 1u);
  fs::create_directories(t / "p1");
  EXPECT_EQ(ingest_shard(plan, 0, t / "p1", o).info.images, 0);
  o.check = "header";
  fs::create_directories(t / "p2");
  EXPECT_EQ(ingest_shard(plan, 0, t / "p2", o).info.images, 1);
}

// Hostile inputs become counted rejects that name the file and line, never a stopped run: a
// control character in an exam id, JSONL fields of the wrong type, a stray file at the top of
// images_dir, a directory named like an image, and a symbolic link that loops.
TEST(Ingest, HostileNamesAndFieldsAreCountedRejects) {
  testing::TempDir t;
  testing::write_file(t / "src/a/0.jpg", testing::make_jpeg(32, 32, 1));
  testing::write_file(t / "src/b/0.jpg", testing::make_jpeg(32, 32, 2));
  std::string lines;
  lines += R"({"exam_id": "A", "report": "fine", "images": ["a/0.jpg"]})" "\n";
  lines += R"({"exam_id": "B", "report": "x", "images": ["b/0.jpg"], "centre": 5})" "\n";
  lines += R"({"exam_id": "C", "report": "x", "images": ["b/0.jpg"], "metadata": [1]})" "\n";
  lines += R"({"exam_id": "D\u0000E", "report": "x", "images": ["b/0.jpg"]})" "\n";
  lines += R"({"exam_id": "F", "report": "x", "images": ["b/0.jpg"], "centre": null})" "\n";
  testing::write_file(t / "src/manifest.jsonl", lines);
  const IngestOptions o = jsonl_options(t / "src/manifest.jsonl", t / "store");
  auto comm = dist::make_local_communicator();
  const auto s = recipes::run_ingest(*comm, o, RunDir(t / "run", true));
  EXPECT_EQ(s.exams, 2);  // A and F
  const auto rejects = rejects_by_exam(o.output);
  EXPECT_TRUE(has(rejects.at("B"), "'centre' must be a string, got number @ " +
                                       (t / "src/manifest.jsonl") + ":2"));
  EXPECT_TRUE(has(rejects.at("C"), "'metadata' must be an object, got array"));
  EXPECT_TRUE(has(rejects.at("D?E"), "control character (byte 0x00)"));

  // An image whose header declares more pixels than max_pixels is rejected before decoding.
  IngestOptions small = o;
  small.output = t / "store-small";
  small.max_pixels = 32 * 32 - 1;
  const auto ss = recipes::run_ingest(*comm, small, RunDir(t / "run-small", true));
  EXPECT_EQ(ss.exams, 0);
  EXPECT_TRUE(has(rejects_by_exam(t / "run-small").at("A"),
                  "image too large (32x32 = 1024 pixels, over max_pixels=1023)"));

  // Folders: a stray file at the top, a directory named like an image, a looping link.
  make_folder_source(t);
  testing::write_file(t / "images/stray.jpg", testing::make_jpeg(16, 16, 3));
  fs::create_directories(t / "images/E001/7.jpg");
  fs::create_symlink(t / "images/loop", t / "images/loop");
  IngestOptions f = folder_options(t);
  f.output = t / "store2";
  const auto sf = recipes::run_ingest(*comm, f, RunDir(t / "run2", true));
  EXPECT_EQ(sf.exams, 5);
  const auto fr = rejects_by_exam(f.output);
  EXPECT_TRUE(has(fr.at(""), "a file at the top of images_dir (not an exam folder) @ " +
                                 (t / "images/stray.jpg")));
  EXPECT_TRUE(has(fr.at(""), "unreadable entry in images_dir"));
  EXPECT_TRUE(has(fr.at("E001"), "a directory where an image was expected @ " +
                                     (t / "images/E001/7.jpg")));

  // A quote that never closes: the rows before it are ingested, the rest is one reject.
  std::string table = files::read_all(t / "reports.csv");
  const auto cut = table.find("E006,");
  ASSERT_NE(cut, std::string::npos);
  table.insert(cut, "E0055,north,\"this quote never closes,1\n");
  testing::write_file(t / "reports2.csv", table);
  IngestOptions q = folder_options(t);
  q.reports = t / "reports2.csv";
  q.output = t / "store3";
  const auto sq = recipes::run_ingest(*comm, q, RunDir(t / "run3", true));
  EXPECT_EQ(sq.exams, 3);  // E001 E002 E003: the rows above the open quote
  EXPECT_TRUE(has(rejects_by_exam(q.output).at(""),
                  "unterminated quoted field: the table from this line to its end was not read"));
}

TEST(Ingest, NamesThatAreNotUtf8AreKeptLosslessly) {
  testing::TempDir t;
  const std::string im = t / "images";
  const std::string gb_name = text::utf8_to_gb18030("张三");  // a GB18030 folder name
  const std::string ff_name = "E\xFF" "01";                  // bytes of no encoding
  testing::write_file(im + "/" + gb_name + "/0.jpg", testing::make_jpeg(32, 32, 1));
  testing::write_file(im + "/" + ff_name + "/img\xFE.jpg", testing::make_jpeg(32, 32, 2));
  testing::write_file(im + "/" + ff_name + "/empty\xFA.jpg", "");
  testing::write_file(im + "/M\xFCller/0.jpg", testing::make_jpeg(32, 32, 3));  // Latin-1
  // The table: UTF-8, with the raw ids of the last two folders, and a Latin-1 column name.
  std::string table = "exam_id,report,\xC4lter\n";
  table += "张三,未见息肉。,50\n";
  table += ff_name + ",No polyps.,61\n";
  table += "M\xFCller,Polyp removed.,70\n";
  testing::write_file(t / "reports.csv", table);
  IngestOptions o;
  o.images_dir = im;
  o.reports = t / "reports.csv";
  o.output = t / "store";
  auto comm = dist::make_local_communicator();
  const auto s = recipes::run_ingest(*comm, o, RunDir(t / "run", true));
  EXPECT_EQ(s.exams, 3);
  EXPECT_EQ(s.images, 3);
  EXPECT_EQ(s.rejects, 1);
  EXPECT_EQ(s.json["converted"]["folder_name_converted_gb18030"], 1);
  EXPECT_EQ(s.json["converted"]["folder_name_escaped"], 2);
  EXPECT_EQ(s.json["converted"]["exam_id_escaped"], 2);
  EXPECT_EQ(s.json["converted"]["file_name_escaped"], 2);
  EXPECT_EQ(s.json["converted"]["column_name_escaped"], 1);

  // Every line of rejects.jsonl is JSON; the path is escaped and its raw bytes kept in hex.
  const std::string raw_path = im + "/" + ff_name + "/empty\xFA.jpg";
  const json reject = json::parse(files::read_all(o.output + "/rejects.jsonl"));
  EXPECT_EQ(reject["exam_id"], "E\\xFF01");
  EXPECT_EQ(reject["path"], im + "/E\\xFF01/empty\\xFA.jpg");
  EXPECT_EQ(reject["path_hex"], text::hex(raw_path));
  EXPECT_EQ(text::unhex(reject["path_hex"].get<std::string>()), raw_path);
  EXPECT_EQ(reject["reason"], "zero-byte file");

  RecordStore store(o.output);
  ASSERT_EQ(store.exam_count(), 3);
  // Sorted by id: "E\xFF01" < "M\xFCller" < "张三".
  const ExamRecord escaped = store.exam(0);
  EXPECT_EQ(escaped.id, "E\\xFF01");
  const json em = json::parse(escaped.metadata);
  EXPECT_EQ(em["\\xC4lter"], "61");
  EXPECT_EQ(em["source_folder_name"]["hex"], text::hex(ff_name));
  EXPECT_EQ(em["source_folder_name"]["decoded_as"], "escaped");
  EXPECT_EQ(em["source_file_names"]["img\\xFE.jpg"]["hex"], text::hex("img\xFE.jpg"));
  EXPECT_EQ(store.image(escaped.first_image).source_path, "E\\xFF01/img\\xFE.jpg");
  EXPECT_EQ(store.image(escaped.first_image).bytes,
            files::read_all(im + "/" + ff_name + "/img\xFE.jpg"));
  // Latin-1 that would decode as GB18030 is not turned into Chinese: it is escaped.
  EXPECT_EQ(store.exam(1).id, "M\\xFCller");
  const ExamRecord chinese = store.exam(2);
  EXPECT_EQ(chinese.id, "张三");
  EXPECT_EQ(json::parse(chinese.metadata)["source_folder_name"]["hex"], text::hex(gb_name));
  EXPECT_EQ(json::parse(chinese.metadata)["source_folder_name"]["decoded_as"], "gb18030");

  // Forcing the encoding: the same export read as Latin-1 gets its names and column decoded.
  IngestOptions l = o;
  l.output = t / "store-latin1";
  l.report_encoding = "latin-1";
  const auto sl = recipes::run_ingest(*comm, l, RunDir(t / "run-latin1", true));
  EXPECT_EQ(sl.exams, 2);  // the GB18030 folder is now "Õ\u0085Èý", no table row matches it
  RecordStore ls(l.output);
  EXPECT_EQ(ls.exam(1).id, "Müller");
  EXPECT_EQ(json::parse(ls.exam(1).metadata)["Älter"], "70");
  EXPECT_THROW_MSG(
      [&] {
        IngestOptions bad = o;
        bad.report_encoding = "ebcdic";
        plan_ingest(bad);
      }(),
      "ingest.report_encoding must be auto");
}

TEST(Ingest, Latin1ReportsAreRejectedUnlessTheEncodingIsSet) {
  testing::TempDir t;
  testing::write_file(t / "images/A/0.jpg", testing::make_jpeg(32, 32, 1));
  testing::write_file(t / "images/B/0.jpg", testing::make_jpeg(32, 32, 2));
  // Latin-1 reports that are also valid GB18030 byte sequences.
  testing::write_file(t / "reports.csv",
                      "exam_id,report\nA,Polyp entfernt; Gr\xF6\xDF" "e 5 mm.\n"
                      "B,R\xE9section d'un polype.\n");
  IngestOptions o;
  o.images_dir = t / "images";
  o.reports = t / "reports.csv";
  o.output = t / "auto";
  auto comm = dist::make_local_communicator();
  const auto s = recipes::run_ingest(*comm, o, RunDir(t / "run", true));
  EXPECT_EQ(s.exams, 0);
  const auto rejects = rejects_by_exam(t / "run");
  EXPECT_TRUE(has(rejects.at("A"), "does not read as Chinese"));
  EXPECT_TRUE(has(rejects.at("B"), "ingest.report_encoding=auto"));
  o.report_encoding = "latin-1";
  o.output = t / "latin1";
  const auto sl = recipes::run_ingest(*comm, o, RunDir(t / "run-l", true));
  ASSERT_EQ(sl.exams, 2);
  EXPECT_EQ(sl.json["converted"]["report_converted_latin-1"], 2);
  RecordStore store(o.output);
  EXPECT_EQ(store.exam(0).report, "Polyp entfernt; Größe 5 mm.");
  EXPECT_EQ(store.exam(1).report, "Résection d'un polype.");
  EXPECT_EQ(json::parse(store.exam(1).metadata)["source_report_encoding"], "latin-1");

  // A forced encoding decodes what is not UTF-8 once: a GB18030 JSONL line read with
  // report_encoding gb18030 keeps its Chinese report, and a UTF-8 line beside it is untouched.
  testing::write_file(t / "j/a.jpg", testing::make_jpeg(32, 32, 3));
  testing::write_file(t / "j/m.jsonl",
                      text::utf8_to_gb18030(R"({"exam_id": "G", "report": "胃镜息肉", "images": ["a.jpg"]})") +
                          "\n" + R"({"exam_id": "U", "report": "Größe 5 mm", "images": ["a.jpg"]})" + "\n");
  IngestOptions j = jsonl_options(t / "j/m.jsonl", t / "jsonl");
  j.report_encoding = "gb18030";
  const auto sj = recipes::run_ingest(*comm, j, RunDir(t / "run-j", true));
  ASSERT_EQ(sj.exams, 2);
  RecordStore js(j.output);
  EXPECT_EQ(js.exam(0).report, "胃镜息肉");
  EXPECT_EQ(js.exam(1).report, "Größe 5 mm");
}

}  // namespace
}  // namespace endoked::data
