// The LLM client against a real local HTTP server (cpp-httplib) speaking the chat-completions
// shape: good replies, invalid JSON, schema violations, 429 then success, 500s, timeouts, a slow
// server, a response_format downgrade, a configuration error, and the cache.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "../common/test_util.h"
#include "../common/chat_server.h"
#include "endoked/core/error.h"
#include "endoked/report/llm_client.h"

namespace endoked::report {
namespace {

using testing::ChatServer;
using testing::envelope;
using testing::reply_ok;
using nlohmann::json;

using nlohmann::json;
using testing::TempDir;

const char* kReport = "Findings: A 6 mm sessile polyp in the sigmoid colon. Removed by cold snare.";

json good_reply() {
  return {{"polyp_present", "positive"},
          {"polyp_count", 1},
          {"count_exact", true},
          {"polyps",
           {{{"segment", "sigmoid"},
             {"size_mm", 6},
             {"morphology", "sessile"},
             {"paris", nullptr},
             {"removal", "cold_snare"},
             {"histology", nullptr},
             {"dysplasia", nullptr},
             {"quantity", 1},
             {"evidence", {"6 mm sessile polyp in the sigmoid colon"}}}}},
          {"history_of_polypectomy", false},
          {"bowel_prep", nullptr},
          {"caecum_reached", nullptr},
          {"confidence", 0.93},
          {"evidence", {"A 6 mm sessile polyp", "not in the report"}}};
}

LlmOptions options(const ChatServer& s, const std::string& cache) {
  LlmOptions o;
  o.base_url = s.url();
  o.model = "test-model";
  o.api_key = "";
  o.cache_dir = cache;
  o.backoff_s = 0.01;
  o.backoff_max_s = 0.05;
  o.timeout_s = 5;
  return o;
}

TEST(LlmClient, GoodReplyThenCacheHit) {
  TempDir dir;
  ChatServer s([](int, const json& req, httplib::Response& res) {
    EXPECT_EQ(req["model"], "test-model");
    EXPECT_EQ(req["response_format"]["type"], "json_schema");
    EXPECT_EQ(req["messages"][1]["content"].get<std::string>().find("Report:"), 0u);
    // The system prompt carries recipes/label/GUIDELINE.md's conventions word for word.
    const std::string system = req["messages"][0]["content"].get<std::string>();
    EXPECT_NE(system.find("未见糜烂、溃疡、息肉及新生物"), std::string::npos);
    EXPECT_NE(
        system.find("Diverticula, haemorrhoids, angioectasias and\n   ulcers are never polyps"),
        std::string::npos);
    EXPECT_EQ(system.find("<!--"), std::string::npos);
    reply_ok(res, "```json\n" + good_reply().dump() + "\n```");
  });
  LlmClient c(options(s, dir.path() + "/cache"));
  const auto l = c.label(kReport);
  EXPECT_EQ(*l.polyp_present.value, "positive");
  EXPECT_DOUBLE_EQ(l.polyp_present.confidence, 0.93);
  ASSERT_EQ(l.polyps.size(), 1u);
  EXPECT_EQ(*l.polyps[0].segment.value, "sigmoid");
  EXPECT_EQ(*l.polyps[0].size_class.value, "small");
  ASSERT_EQ(l.polyp_present.evidence.size(), 1u);  // the made-up quote is dropped and noted
  EXPECT_EQ(l.polyp_present.evidence[0].begin, 10);
  EXPECT_EQ(l.notes.size(), 1u);
  EXPECT_EQ(s.requests(), 1);
  // A rerun (a new client, as in a new process) sends nothing.
  LlmClient again(options(s, dir.path() + "/cache"));
  EXPECT_EQ(*again.label(kReport).polyp_present.value, "positive");
  EXPECT_EQ(s.requests(), 1);
  EXPECT_EQ(again.stats().cache_hits.load(), 1);
  // Another sample is another cache key. The key comes from the environment when the
  // config has none.
  ::setenv("ENDOKED_LLM_API_KEY", "sekret", 1);
  LlmClient keyed(options(s, dir.path() + "/cache"));
  ::unsetenv("ENDOKED_LLM_API_KEY");
  keyed.label(kReport, 1);
  EXPECT_EQ(s.requests(), 2);
  EXPECT_EQ(s.last_authorization(), "Bearer sekret");
}

TEST(LlmClient, InvalidJsonAndSchemaViolationsAreRetriedThenUncertain) {
  TempDir dir;
  ChatServer s([](int n, const json&, httplib::Response& res) {
    if (n == 0) return reply_ok(res, "{not json");
    json bad = good_reply();
    bad["polyp_present"] = "maybe";
    if (n == 1) return reply_ok(res, bad.dump());
    bad = good_reply();
    bad["extra"] = 1;
    reply_ok(res, bad.dump());
  });
  auto o = options(s, dir.path() + "/cache");
  o.invalid_retries = 2;
  LlmClient c(o);
  const auto l = c.label(kReport);
  EXPECT_EQ(*l.polyp_present.value, "uncertain");
  ASSERT_EQ(l.notes.size(), 1u);
  EXPECT_NE(l.notes[0].find("unknown key 'extra'"), std::string::npos) << l.notes[0];
  EXPECT_EQ(s.requests(), 3);
  EXPECT_EQ(c.stats().invalid.load(), 3);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/cache"));  // nothing invalid is cached
}

TEST(LlmClient, SchemaViolationThenGoodReply) {
  TempDir dir;
  ChatServer s([](int n, const json&, httplib::Response& res) {
    json r = good_reply();
    if (n == 0) r["polyps"][0]["size_mm"] = "six";
    reply_ok(res, r.dump());
  });
  LlmClient c(options(s, dir.path() + "/cache"));
  EXPECT_EQ(*c.label(kReport).polyp_present.value, "positive");
  EXPECT_EQ(s.requests(), 2);
}

TEST(LlmClient, TooManyRequestsThenSuccess) {
  TempDir dir;
  ChatServer s([](int n, const json&, httplib::Response& res) {
    if (n < 2) {
      res.status = 429;
      res.set_header("Retry-After", "0.02");
      res.set_content("{\"error\": \"rate limited\"}", "application/json");
      return;
    }
    reply_ok(res, good_reply().dump());
  });
  LlmClient c(options(s, dir.path() + "/cache"));
  EXPECT_EQ(*c.label(kReport).polyp_present.value, "positive");
  EXPECT_EQ(s.requests(), 3);
  EXPECT_EQ(c.stats().retries.load(), 2);
}

TEST(LlmClient, ServerErrorsExhaustRetries) {
  TempDir dir;
  ChatServer s([](int, const json&, httplib::Response& res) {
    res.status = 500;
    res.set_content("boom", "text/plain");
  });
  auto o = options(s, dir.path() + "/cache");
  o.max_retries = 3;
  LlmClient c(o);
  const auto l = c.label(kReport);
  EXPECT_EQ(*l.polyp_present.value, "uncertain");
  EXPECT_NE(l.notes.at(0).find("HTTP 500"), std::string::npos);
  EXPECT_EQ(s.requests(), 4);
  EXPECT_EQ(c.stats().failed.load(), 1);
}

TEST(LlmClient, TimeoutsAndASlowServer) {
  TempDir dir;
  ChatServer s([](int n, const json&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(n < 2 ? 1500 : 400));
    reply_ok(res, good_reply().dump());
  });
  auto o = options(s, dir.path() + "/cache");
  o.timeout_s = 0.3;
  o.max_retries = 1;
  LlmClient c(o);
  const auto t0 = std::chrono::steady_clock::now();
  const auto l = c.label(kReport);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(*l.polyp_present.value, "uncertain");
  EXPECT_NE(l.notes.at(0).find("imeout"), std::string::npos) << l.notes.at(0);
  EXPECT_LT(took, 1.4);  // two 0.3 s timeouts and a short backoff, not the server's 1.5 s
  // A slow but answering server within the timeout is fine.
  o.timeout_s = 3;
  o.cache_dir = dir.path() + "/cache2";
  LlmClient patient(o);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // let the timed-out handlers end
  EXPECT_EQ(*patient.label(kReport).polyp_present.value, "positive");
}

TEST(LlmClient, ResponseFormatDowngradeAndConfigurationErrors) {
  TempDir dir;
  ChatServer s([](int, const json& req, httplib::Response& res) {
    if (req.contains("response_format") && req["response_format"]["type"] == "json_schema") {
      res.status = 400;
      res.set_content("{\"error\": \"response_format json_schema is not supported\"}",
                      "application/json");
      return;
    }
    reply_ok(res, good_reply().dump());
  });
  LlmClient c(options(s, dir.path() + "/cache"));
  EXPECT_EQ(*c.label(kReport).polyp_present.value, "positive");
  EXPECT_NE(s.last_request().find("json_object"), std::string::npos);

  ChatServer denied([](int, const json&, httplib::Response& res) {
    res.status = 401;
    res.set_content("{\"error\": \"invalid api key\"}", "application/json");
  });
  LlmClient d(options(denied, dir.path() + "/cache3"));
  try {
    d.label(kReport);
    FAIL() << "401 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 401"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("invalid api key"), std::string::npos);
  }
  auto o = options(s, "");
  o.model = "";
  EXPECT_THROW(LlmClient{o}, Error);
}

TEST(LlmClient, ValidatorChecksEveryField) {
  EXPECT_EQ(validate_llm_reply(good_reply()), "");
  json r = good_reply();
  r.erase("confidence");
  EXPECT_NE(validate_llm_reply(r).find("confidence"), std::string::npos);
  r = good_reply();
  r["polyps"][0]["segment"] = "appendix";
  EXPECT_NE(validate_llm_reply(r).find("segment"), std::string::npos);
  r = good_reply();
  r["polyps"][0]["quantity"] = 0;
  EXPECT_NE(validate_llm_reply(r).find("quantity"), std::string::npos);
  r = good_reply();
  r["confidence"] = 1.5;
  EXPECT_NE(validate_llm_reply(r), "");
  EXPECT_EQ(llm_reply_schema()["properties"]["polyps"]["items"]["required"].size(), 9u);
}

// The label fields are declared once (labels.h): the reply schema, the validator and the JSON
// form all follow the declaration — every asked field is in the schema and checked, every
// derived one is absent from it, and every field survives the JSON round trip.
TEST(LlmClient, SchemaValidatorAndJsonFollowTheFieldDeclaration) {
  const json& schema = llm_reply_schema();
  const json& exam_props = schema["properties"];
  const json& polyp_props = exam_props["polyps"]["items"]["properties"];
  ExamLabels l;
  l.polyps.emplace_back();
  int asked = 0, derived = 0;
  const auto check = [&](const json& props) {
    return [&](const FieldSpec& s, auto& f) {
      using T = typename std::decay_t<decltype(f.value)>::value_type;
      EXPECT_EQ(props.contains(s.key), s.asked) << s.key;
      (s.asked ? asked : derived)++;
      // Give every field a value and evidence for the round trip.
      if constexpr (std::is_same_v<T, std::string>) {
        f.set(s.allowed->back(), 0.5, {1, 3});
      } else if constexpr (std::is_same_v<T, bool>) {
        f.set(true, 0.5, {1, 3});
      } else {
        f.set(T(7), 0.5, {1, 3});
      }
    };
  };
  visit_fields(l, check(exam_props));
  visit_fields(l.polyps[0], check(polyp_props));
  EXPECT_EQ(asked, 12);
  EXPECT_EQ(derived, 2);  // size_class and pathology_group follow from size and histology
  const ExamLabels back = labels_from_json(labels_to_json(l));
  ASSERT_EQ(back.polyps.size(), 1u);
  visit_fields(l, [&](const FieldSpec& s, const auto& f) {
    visit_fields(back, [&](const FieldSpec& t, const auto& g) {
      if constexpr (std::is_same_v<decltype(f.value), decltype(g.value)>)
        if (std::string(s.key) == t.key) {
          EXPECT_EQ(f.value, g.value) << s.key;
          EXPECT_EQ(g.evidence.size(), 1u) << s.key;
        }
    });
  });
  // A value outside a field's allowed set is refused for every asked enum field.
  json reply = {{"polyp_present", "positive"}, {"polyp_count", 1}, {"count_exact", true},
                {"history_of_polypectomy", nullptr}, {"bowel_prep", nullptr},
                {"caecum_reached", nullptr}, {"confidence", 0.9}, {"evidence", json::array()}};
  json polyp = {{"quantity", 1}, {"evidence", json::array()}};
  report::PolypLabel p0;
  visit_fields(p0, [&](const FieldSpec& s, const auto&) {
    if (s.asked) polyp[s.key] = nullptr;
  });
  reply["polyps"] = json::array({polyp});
  EXPECT_EQ(validate_llm_reply(reply), "");
  visit_fields(p0, [&](const FieldSpec& s, const auto&) {
    if (!s.asked || !s.allowed) return;
    json bad = reply;
    bad["polyps"][0][s.key] = "nonsense";
    EXPECT_NE(validate_llm_reply(bad).find(std::string("polyps[0].") + s.key), std::string::npos)
        << s.key;
  });
}

}  // namespace
}  // namespace endoked::report
