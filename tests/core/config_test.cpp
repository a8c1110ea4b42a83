#include "endoked/core/config.h"

#include <gtest/gtest.h>

#include "../common/test_util.h"

namespace endoked {
namespace {

struct Inner {
  int count = 3;
  double ratio = 0.5;
  std::vector<std::string> names = {"a"};
  template <class V>
  void visit(V& v) {
    v("count", count, "how many");
    v("ratio", ratio);
    v("names", names);
  }
};

struct Root {
  std::string output = "out";
  bool strict = false;
  std::int64_t big = 1;
  Inner inner;
  template <class V>
  void visit(V& v) {
    v("output", output, "where");
    v("strict", strict);
    v("big", big);
    v("inner", inner);
  }
};

Root decode_text(const std::string& text) {
  config::Tree t;
  t.merge_text(text, "test.yaml");
  Root r;
  config::decode(t.root(), r);
  return r;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Config, DefaultsAndValues) {
  const Root r = decode_text("output: dir\ninner:\n  count: 7\n  names: [x, y]\n");
  EXPECT_EQ(r.output, "dir");
  EXPECT_FALSE(r.strict);
  EXPECT_EQ(r.inner.count, 7);
  EXPECT_DOUBLE_EQ(r.inner.ratio, 0.5);
  EXPECT_EQ(r.inner.names, (std::vector<std::string>{"x", "y"}));
}

TEST(Config, UnknownKeyNamesFileLineColumn) {
  const std::string e = error_of([] { decode_text("output: dir\ninner:\n  cuont: 7\n"); });
  EXPECT_NE(e.find("unknown key 'inner.cuont'"), std::string::npos) << e;
  EXPECT_NE(e.find("test.yaml:3:3"), std::string::npos) << e;
}

TEST(Config, WrongTypeNamesKeyAndOrigin) {
  const std::string e = error_of([] { decode_text("inner:\n  count: many\n"); });
  EXPECT_NE(e.find("inner.count"), std::string::npos) << e;
  EXPECT_NE(e.find("test.yaml:2:10"), std::string::npos) << e;
  EXPECT_NE(e.find("expected an integer"), std::string::npos) << e;
  EXPECT_NE(error_of([] { decode_text("strict: perhaps\n"); }).find("true or false"),
            std::string::npos);
  EXPECT_NE(error_of([] { decode_text("big: 99999999999999999999999\n"); }).find("big"),
            std::string::npos);
  EXPECT_NE(error_of([] { decode_text("inner: 5\n"); }).find("expected a map"), std::string::npos);
}

TEST(Config, DuplicateKeyIsAnError) {
  const std::string e = error_of([] { decode_text("output: a\noutput: b\n"); });
  EXPECT_NE(e.find("duplicate key 'output'"), std::string::npos) << e;
}

TEST(Config, ParseErrorNamesLine) {
  const std::string e = error_of([] { decode_text("output: [unclosed\nbig: 2\n"); });
  EXPECT_NE(e.find("cannot parse test.yaml:"), std::string::npos) << e;
}

TEST(Config, OverlaysAndSetInOrder) {
  testing::TempDir dir;
  testing::write_file(dir / "base.yaml", "output: base\ninner:\n  count: 1\n  ratio: 0.25\n");
  testing::write_file(dir / "overlay.yaml", "inner:\n  count: 2\n");
  config::Tree t;
  t.merge_file(dir / "base.yaml");
  t.merge_file(dir / "overlay.yaml");
  t.set("inner.names=[p, q, r]");
  t.set("big=12345678901");
  t.set("output=");
  Root r;
  config::decode(t.root(), r);
  EXPECT_EQ(r.inner.count, 2);            // overlay wins
  EXPECT_DOUBLE_EQ(r.inner.ratio, 0.25);  // base kept where the overlay is silent
  EXPECT_EQ(r.inner.names.size(), 3u);
  EXPECT_EQ(r.big, 12345678901LL);
  EXPECT_EQ(r.output, "");
  // --set errors name the assignment
  config::Tree bad;
  bad.set("inner.count=lots");
  const std::string e = error_of([&] {
    Root x;
    config::decode(bad.root(), x);
  });
  EXPECT_NE(e.find("--set inner.count=lots"), std::string::npos) << e;
  EXPECT_NE(error_of([] {
              config::Tree x;
              x.set("novalue");
            }).find("key=value"),
            std::string::npos);
}

TEST(Config, ResolvedYamlRoundTrips) {
  Root a =
      decode_text("output: \"with: colon\"\nstrict: true\ninner:\n  names: [u]\n  ratio: 0.125\n");
  const std::string yaml = config::to_yaml(a);
  const Root b = decode_text(yaml);
  EXPECT_EQ(b.output, "with: colon");
  EXPECT_TRUE(b.strict);
  EXPECT_EQ(b.inner.names, a.inner.names);
  EXPECT_DOUBLE_EQ(b.inner.ratio, 0.125);
  EXPECT_EQ(b.inner.count, 3);
}

TEST(Config, IgnoredSectionsAreSkippedButOwnSectionsDecoded) {
  config::Tree t;
  t.merge_text("output: x\nlabel:\n  anything: 1\n", "p.yaml");
  Root r;
  config::decode(t.root(), r, {"label", "inner"});
  EXPECT_EQ(r.output, "x");
  t.set("inner.count=9");
  config::decode(t.root(), r, {"label", "inner"});
  EXPECT_EQ(r.inner.count, 9);
}

TEST(Config, HelpListsKeysWithDefaultsAndDocs) {
  const std::string h = config::help_text(Root{});
  EXPECT_NE(h.find("inner.count = 3"), std::string::npos) << h;
  EXPECT_NE(h.find("how many"), std::string::npos) << h;
}

// A directory given as --config, and an alias bomb, are refused with the path named.
TEST(Config, DirectoryAndAliasBombAreRefused) {
  config::Tree t;
  try {
    t.merge_file("/tmp");
    FAIL() << "a directory was read as an empty config";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'/tmp' is a directory"), std::string::npos) << e.what();
  }
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'h'; ++c)
    bomb += std::string(1, c) + ": &" + c + " [*" + char(c - 1) + ", *" + char(c - 1) + ", *" +
            char(c - 1) + ", *" + char(c - 1) + ", *" + char(c - 1) + ", *" + char(c - 1) +
            ", *" + char(c - 1) + ", *" + char(c - 1) + ", *" + char(c - 1) + ", *" +
            char(c - 1) + "]\n";  // 10^8 leaves
  config::Tree u;
  try {
    u.merge_text(bomb, "bomb.yaml");
    FAIL() << "an alias bomb was expanded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bomb.yaml expands to more than"), std::string::npos)
        << e.what();
  }
  // An alias inside its own anchor is a cycle (found by the config fuzzer: a stack overflow).
  config::Tree w;
  EXPECT_THROW_MSG(w.merge_text("a: 1\nb: &b [x, *b]\n", "cycle.yaml"),
                   "nests deeper than 64 levels (a YAML alias inside its own anchor?)");
  std::string deep = "a: " + std::string(100, '[') + std::string(100, ']') + "\n";
  EXPECT_THROW_MSG(w.merge_text(deep, "deep.yaml"), "deep.yaml:1:");
}

}  // namespace
}  // namespace endoked
