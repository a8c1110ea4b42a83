// Seeding, hashing, text encodings, CSV, parallel_for, error messages.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <set>

#include "../common/test_util.h"
#include "endoked/core/error.h"
#include "endoked/core/parallel.h"
#include "endoked/core/seed.h"
#include "endoked/core/sha256.h"
#include "endoked/core/text.h"
#include "endoked/data/csv.h"

namespace endoked {
namespace {

TEST(Seed, DerivedSeedsDependOnEveryPart) {
  const auto a = derive_seed(1, "synth.exam", 0);
  EXPECT_EQ(a, derive_seed(1, "synth.exam", 0));
  EXPECT_NE(a, derive_seed(2, "synth.exam", 0));
  EXPECT_NE(a, derive_seed(1, "synth.frame", 0));
  EXPECT_NE(a, derive_seed(1, "synth.exam", 1));
  std::set<std::uint64_t> seen;
  for (std::uint64_t i = 0; i < 10000; ++i) seen.insert(derive_seed(7, "x", i));
  EXPECT_EQ(seen.size(), 10000u);
}

TEST(Seed, StreamIsFixedAcrossBuilds) {
  // Golden values: a change here changes every synthetic corpus.
  Rng r(42);
  EXPECT_EQ(r.next(), 1546998764402558742ULL);
  Rng s(1, "synth.exam", 3);
  const double u = s.uniform();
  Rng s2(1, "synth.exam", 3);
  EXPECT_EQ(u, s2.uniform());
}

TEST(Seed, DistributionsHaveTheirMoments) {
  Rng r(123);
  const int n = 200000;
  double sum = 0, sum2 = 0, usum = 0;
  std::int64_t lo = 100, hi = -100;
  for (int i = 0; i < n; ++i) {
    const double z = r.normal(2.0, 3.0);
    sum += z;
    sum2 += z * z;
    usum += r.uniform();
    const auto k = r.randint(-3, 5);
    lo = std::min(lo, k);
    hi = std::max(hi, k);
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 2.0, 0.03);
  EXPECT_NEAR(std::sqrt(var), 3.0, 0.03);
  EXPECT_NEAR(usum / n, 0.5, 0.005);
  EXPECT_EQ(lo, -3);
  EXPECT_EQ(hi, 5);
  std::vector<int> counts(3);
  for (int i = 0; i < 30000; ++i) ++counts[r.categorical({1, 2, 7})];
  EXPECT_NEAR(counts[2] / 30000.0, 0.7, 0.015);
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(million),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  Sha256 split;
  split.update("a");
  split.update("bc");
  EXPECT_EQ(split.hex(), sha256_hex("abc"));
}

TEST(Text, Utf8Validation) {
  EXPECT_TRUE(text::is_valid_utf8("plain ascii"));
  EXPECT_TRUE(text::is_valid_utf8("未见息肉"));
  EXPECT_FALSE(text::is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(text::is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(text::is_valid_utf8("abc\xE6\x9C"));       // truncated
  EXPECT_FALSE(text::is_valid_utf8("\xF5\x80\x80\x80"));  // beyond U+10FFFF
}

TEST(Text, Gb18030IsDetectedAndConverted) {
  const std::string utf8 = "结肠息肉，未见异常。";
  const std::string gb = text::utf8_to_gb18030(utf8);
  EXPECT_NE(gb, utf8);
  EXPECT_FALSE(text::is_valid_utf8(gb));
  const auto d = text::to_utf8(gb);
  EXPECT_EQ(d.source, text::Encoding::kGb18030);
  EXPECT_EQ(d.utf8, utf8);
  EXPECT_EQ(text::to_utf8(utf8).source, text::Encoding::kUtf8);
  EXPECT_EQ(text::to_utf8("\x81\x20\xFF").source, text::Encoding::kInvalid);
}

TEST(Text, Latin1ThatDecodesAsGb18030IsNotConverted) {
  // Latin-1 bytes that are valid GB18030: "Größe" (F6 DF is a GB2312 pair between letters),
  // "Résection" (E9 73: an accented letter and the ASCII letter after it), "Älter" (C4 6C).
  for (const std::string& latin1 :
       {std::string("Polyp entfernt, Gr\xF6\xDF" "e 5 mm."), std::string("R\xE9section du polype"),
        std::string("\xC4lter"), std::string("M\xFCller"), std::string("caf\xE9s")}) {
    ASSERT_TRUE(text::gb18030_to_utf8(latin1).has_value()) << latin1;
    const auto d = text::to_utf8(latin1);
    EXPECT_EQ(d.source, text::Encoding::kInvalid) << d.utf8;
    EXPECT_NE(d.why.find("does not read as Chinese"), std::string::npos) << d.why;
  }
  // Chinese text, also mixed with Latin abbreviations and numbers, still converts.
  // (also GBK characters whose second byte is ASCII: 黃 FC 53, 華 C8 41, 镕 E9 46)
  for (const char* utf8 : {"结肠息肉，未见异常。", "NBI模式下见0.5cm息肉（Ⅱ型）", "张三", "乙状结肠", "黃志明",
                           "劉德華", "朱镕基", "黃", "結腸鏡檢查：乙狀結腸見一息肉"}) {
    const auto d = text::to_utf8(text::utf8_to_gb18030(utf8));
    EXPECT_EQ(d.source, text::Encoding::kGb18030) << utf8 << " " << d.why;
    EXPECT_EQ(d.utf8, utf8);
  }
  // A forced encoding decodes as told.
  const auto l = text::to_utf8("Gr\xF6\xDF" "e", text::Encoding::kLatin1);
  EXPECT_EQ(l.source, text::Encoding::kLatin1);
  EXPECT_EQ(l.utf8, "Größe");
  EXPECT_EQ(text::to_utf8("\x93quoted\x94", text::Encoding::kCp1252).utf8, "“quoted”");
  const auto bad = text::to_utf8("\xFF", text::Encoding::kUtf8);
  EXPECT_EQ(bad.source, text::Encoding::kInvalid);
  EXPECT_EQ(bad.why, "not valid utf-8");
  EXPECT_EQ(text::parse_encoding("AUTO", "k"), std::nullopt);
  EXPECT_EQ(text::parse_encoding("GBK", "k"), text::Encoding::kGb18030);
  EXPECT_EQ(text::parse_encoding("iso-8859-1", "k"), text::Encoding::kLatin1);
  EXPECT_THROW_MSG(text::parse_encoding("ebcdic", "ingest.report_encoding"),
                   "ingest.report_encoding must be auto, utf-8, gb18030, latin-1 or cp1252");
}

TEST(Text, EscapeAndHexAreLossless) {
  const std::string raw = "E\xFF" "01/\xE5\xBC\xA0/img\xFE.jpg";
  EXPECT_EQ(text::escape_invalid_utf8(raw), "E\\xFF01/张/img\\xFE.jpg");
  EXPECT_TRUE(text::is_valid_utf8(text::escape_invalid_utf8(raw)));
  EXPECT_EQ(text::escape_invalid_utf8("plain ascii"), "plain ascii");
  EXPECT_EQ(text::hex("\x00\xFF" "a"), "");  // a literal with an embedded NUL ends at it
  EXPECT_EQ(text::hex(std::string("\x00\xFF" "a", 3)), "00ff61");
  EXPECT_EQ(text::unhex(text::hex(raw)), raw);
  EXPECT_THROW_MSG(text::unhex("abc"), "odd length");
  EXPECT_THROW_MSG(text::unhex("zz"), "not a hex string");
}

TEST(Csv, QuotesNewlinesCrlfAndBom) {
  const std::string text =
      "\xEF\xBB\xBFid,report,extra\r\n"
      "A1,\"two\nlines, with comma\",x\r\n"
      "\r\n"
      "A2,\"say \"\"hi\"\"\",y\n"
      "A3,short\n";
  const auto t = data::parse_csv(text, ',', "t.csv");
  ASSERT_EQ(t.header.size(), 3u);
  EXPECT_EQ(t.header[0], "id");
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_EQ(t.rows[0].fields[1], "two\nlines, with comma");
  EXPECT_EQ(t.rows[1].fields[1], "say \"hi\"");
  EXPECT_EQ(t.rows[1].line, 5);
  EXPECT_EQ(t.rows[2].fields.size(), 2u);  // kept; the caller rejects it with its line
  EXPECT_EQ(t.column("extra"), 2);
  // An unterminated quote in a row ends the table there (the caller rejects the rest and says
  // so); in the header it is an error.
  const auto open = data::parse_csv("a,b\nA,1\n\"open,1\nB,2\n", ',', "bad.csv");
  EXPECT_EQ(open.rows.size(), 1u);
  EXPECT_EQ(open.unterminated_line, 3);
  EXPECT_THROW(data::parse_csv("\"a,b\nA,1\n", ',', "bad.csv"), Error);
  const auto tsv = data::parse_csv("id\treport\nB\tx, y\n", '\t', "t.tsv");
  EXPECT_EQ(tsv.rows[0].fields[1], "x, y");
  EXPECT_EQ(data::csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
}

TEST(Parallel, RunsEveryItemOnceAndRethrows) {
  std::vector<std::atomic<int>> hits(1000);
  parallel_for(1000, 4, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  EXPECT_THROW(parallel_for(100, 3,
                            [](std::int64_t i) {
                              if (i == 57) ENDOKED_FAIL("item ", i);
                            }),
               Error);
}

TEST(Error, MessageCarriesLocationAndValues) {
  try {
    const int rows = 12, expected = 13;
    ENDOKED_CHECK_EQ(rows, expected, "shard-00003.h5 /images/offset");
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("tests/core/base_test.cpp:"), std::string::npos) << m;
    EXPECT_NE(m.find("rows == expected (12 vs 13)"), std::string::npos) << m;
    EXPECT_NE(m.find("shard-00003.h5"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace endoked
