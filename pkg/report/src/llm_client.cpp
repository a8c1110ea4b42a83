#include "endoked/report/llm_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "endoked/core/error.h"
#include "endoked/core/text.h"
#include "endoked/core/files.h"
#include "endoked/core/log.h"
#include "endoked/core/sha256.h"

using nlohmann::json;
namespace fs = std::filesystem;

namespace endoked::report {

const std::vector<std::pair<std::string, std::string>>& embedded_guideline();

namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// The conventions of recipes/label/GUIDELINE.md (between its prompt markers), embedded at build
// time, framed by what the reply must be.
const std::string& guideline_prompt() {
  static const std::string prompt = [] {
    const std::string& doc = embedded_guideline().front().second;
    const std::string open = "<!-- prompt -->", close = "<!-- /prompt -->";
    const auto a = doc.find(open), b = doc.find(close);
    ENDOKED_CHECK(a != std::string::npos && b != std::string::npos && a < b,
                  "GUIDELINE.md (embedded) lacks its prompt markers");
    return "You label colonoscopy and pathology reports for a research dataset. Read the report "
           "and answer with one JSON object that follows the schema exactly (no prose, no "
           "markdown).\n" +
           doc.substr(a + open.size(), b - a - open.size()) +
           "\nReply fields:\n"
           "- polyp_present, polyp_count (count_exact false for an at-least count), polyps (with "
           "quantity, -1 for an unknown number) as above; morphology, Paris type and dysplasia "
           "grade when stated, else null.\n"
           "- history_of_polypectomy, bowel_prep, caecum_reached: as stated, null when not "
           "stated.\n"
           "- evidence: short exact quotes copied from the report that support each answer.\n"
           "- confidence: your probability that polyp_present is right.\n";
  }();
  return prompt;
}

json enum_or_null(const std::vector<std::string>& values) {
  json e = json::array();
  for (const auto& v : values) e.push_back(v);
  e.push_back(nullptr);
  return {{"type", {"string", "null"}}, {"enum", e}};
}

json strings() {
  return {{"type", "array"}, {"items", {{"type", "string"}}}};
}

std::string strip_fences(std::string s) {
  const auto a = s.find('{'), b = s.rfind('}');
  if (a == std::string::npos || b == std::string::npos || b < a) return s;
  return s.substr(a, b - a + 1);
}

// Error text when `v` is not one of `allowed` (or null when `nullable`).
std::string check_enum(const json& v, const std::vector<std::string>& allowed, bool nullable,
                       const std::string& key) {
  if (v.is_null()) return nullable ? "" : key + " must not be null";
  if (!v.is_string()) return key + " must be a string";
  if (std::find(allowed.begin(), allowed.end(), v.get<std::string>()) == allowed.end())
    return key + " has the value '" + v.get<std::string>() + "', not one of the allowed values";
  return "";
}

std::string check_keys(const json& o, const std::vector<std::string>& keys,
                       const std::string& where) {
  if (!o.is_object()) return where + " must be an object";
  for (const auto& k : keys)
    if (!o.contains(k)) return where + " lacks the required key '" + k + "'";
  for (const auto& [k, v] : o.items())
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      return where + " has the unknown key '" + k + "'";
  return "";
}

std::string check_strings(const json& v, const std::string& key) {
  if (!v.is_array()) return key + " must be an array of strings";
  for (const auto& s : v)
    if (!s.is_string()) return key + " must be an array of strings";
  return "";
}

// The reply's keys: every field the schema asks for (labels.h), plus the reply's own.
std::vector<std::string> reply_keys(bool polyp) {
  std::vector<std::string> keys;
  const auto add = [&](const report::FieldSpec& s, const auto&) {
    if (s.asked) keys.push_back(s.key);
  };
  if (polyp) {
    report::PolypLabel p;
    report::visit_fields(p, add);
    keys.insert(keys.end(), {"quantity", "evidence"});
  } else {
    report::ExamLabels l;
    report::visit_fields(l, add);
    keys.insert(keys.end(), {"count_exact", "polyps", "confidence", "evidence"});
  }
  return keys;
}

// The JSON schema of one field's value, from its type and spec.
template <typename T>
json value_schema(const report::FieldSpec& s) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (!s.nullable) return {{"type", "string"}, {"enum", *s.allowed}};
    return enum_or_null(*s.allowed);
  } else if constexpr (std::is_same_v<T, bool>) {
    return {{"type", {"boolean", "null"}}};
  } else if constexpr (std::is_integral_v<T>) {
    return {{"type", {"integer", "null"}}};
  } else {
    return {{"type", {"number", "null"}}};
  }
}

// Error text when a reply's value breaks its field's spec ("" when it is fine).
template <typename T>
std::string check_value(const json& v, const report::FieldSpec& s, const std::string& key) {
  if constexpr (std::is_same_v<T, std::string>) {
    return check_enum(v, *s.allowed, s.nullable, key);
  } else {
    if (v.is_null()) return s.nullable ? "" : key + " must not be null";
    if constexpr (std::is_same_v<T, bool>) {
      return v.is_boolean() ? "" : key + " must be a boolean or null";
    } else if constexpr (std::is_integral_v<T>) {
      if (!v.is_number_integer() || (s.positive && v.get<std::int64_t>() < 0))
        return key + " must be a non-negative integer or null";
      return "";
    } else {
      if (!v.is_number() || (s.positive && v.get<double>() <= 0))
        return key + " must be a positive number or null";
      return "";
    }
  }
}

size_t on_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

size_t on_header(char* data, size_t size, size_t n, void* out) {
  std::string line(data, size * n);
  const std::string lower = text::lower(line);
  if (lower.rfind("retry-after:", 0) == 0) {
    std::string v = line.substr(12);
    v.erase(0, v.find_first_not_of(" \t"));
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' ')) v.pop_back();
    *static_cast<std::string*>(out) = v;
  }
  return size * n;
}

report::ExamLabels failed_labels(const std::string& version, const std::string& why) {
  report::ExamLabels l;
  l.labeller = "llm";
  l.version = version;
  l.polyp_present.value = "uncertain";
  l.polyp_present.confidence = 0;
  l.notes.push_back(why);
  return l;
}

}  // namespace

LlmOptions::LlmOptions()
    : base_url(env_or("ENDOKED_LLM_BASE_URL", "http://127.0.0.1:8000/v1")),
      model(env_or("ENDOKED_LLM_MODEL", "")) {}

json LlmStats::to_json() const {
  return {{"requests", requests.load()},
          {"cache_hits", cache_hits.load()},
          {"retries", retries.load()},
          {"invalid_replies", invalid.load()},
          {"failed", failed.load()}};
}

const json& llm_reply_schema() {
  static const json schema = [] {
    const auto properties = [](auto& labels) {
      json props = json::object();
      report::visit_fields(labels, [&](const report::FieldSpec& s, const auto& f) {
        using T = typename std::decay_t<decltype(f.value)>::value_type;
        if (s.asked) props[s.key] = value_schema<T>(s);
      });
      return props;
    };
    report::PolypLabel p;
    json polyp_props = properties(p);
    polyp_props["quantity"] = {{"type", "integer"}};
    polyp_props["evidence"] = strings();
    const json polyp = {{"type", "object"},
                        {"additionalProperties", false},
                        {"required", reply_keys(true)},
                        {"properties", polyp_props}};
    report::ExamLabels l;
    json props = properties(l);
    props["count_exact"] = {{"type", "boolean"}};
    props["polyps"] = {{"type", "array"}, {"items", polyp}};
    props["confidence"] = {{"type", "number"}, {"minimum", 0}, {"maximum", 1}};
    props["evidence"] = strings();
    return json{{"type", "object"},
                {"additionalProperties", false},
                {"required", reply_keys(false)},
                {"properties", props}};
  }();
  return schema;
}

std::string validate_llm_reply(const json& r) {
  static const std::vector<std::string> kReplyKeys = reply_keys(false), kPolypKeys = reply_keys(true);
  std::string e = check_keys(r, kReplyKeys, "reply");
  if (!e.empty()) return e;
  const auto check_fields = [&](auto& labels, const json& reply, const std::string& prefix) {
    std::string err;
    report::visit_fields(labels, [&](const report::FieldSpec& s, const auto& f) {
      using T = typename std::decay_t<decltype(f.value)>::value_type;
      if (s.asked && err.empty()) err = check_value<T>(reply[s.key], s, prefix + s.key);
    });
    return err;
  };
  report::ExamLabels exam;
  if (!(e = check_fields(exam, r, "")).empty()) return e;
  if (!r["count_exact"].is_boolean()) return "count_exact must be a boolean";
  if (!r["polyps"].is_array()) return "polyps must be an array";
  for (std::size_t i = 0; i < r["polyps"].size(); ++i) {
    const json& p = r["polyps"][i];
    const std::string w = "polyps[" + std::to_string(i) + "]";
    if (!(e = check_keys(p, kPolypKeys, w)).empty()) return e;
    report::PolypLabel polyp;
    if (!(e = check_fields(polyp, p, w + ".")).empty()) return e;
    if (!p["quantity"].is_number_integer() ||
        (p["quantity"].get<int>() < 1 && p["quantity"].get<int>() != -1))
      return w + ".quantity must be an integer ≥ 1, or -1";
    if (!(e = check_strings(p["evidence"], w + ".evidence")).empty()) return e;
  }
  if (!r["confidence"].is_number() || r["confidence"].get<double>() < 0 ||
      r["confidence"].get<double>() > 1)
    return "confidence must be a number in [0, 1]";
  return check_strings(r["evidence"], "evidence");
}

report::ExamLabels llm_reply_to_labels(const json& r, const std::string& text,
                                       const std::string& version) {
  report::ExamLabels l;
  l.labeller = "llm";
  l.version = version;
  const double conf = r["confidence"].get<double>();
  auto locate = [&](const json& quotes, std::vector<report::Span>& out) {
    for (const auto& q : quotes) {
      const std::string s = q.get<std::string>();
      if (s.empty()) continue;
      const auto at = text.find(s);
      if (at == std::string::npos) {
        l.notes.push_back("evidence quote not found in the report: '" + s + "'");
        continue;
      }
      out.push_back({static_cast<std::int64_t>(at), static_cast<std::int64_t>(at + s.size())});
    }
  };
  // Every asked field: its value when not null, at the reply's confidence.
  const auto take = [&](const json& reply) {
    return [&reply, conf](const report::FieldSpec& s, auto& f) {
      using T = typename std::decay_t<decltype(f.value)>::value_type;
      if (!s.asked || reply[s.key].is_null()) return;
      f.value = reply[s.key].get<T>();
      f.confidence = conf;
    };
  };
  report::visit_fields(l, take(r));
  locate(r["evidence"], l.polyp_present.evidence);
  l.count_exact = r["count_exact"].get<bool>();
  for (const auto& p : r["polyps"]) {
    report::PolypLabel pl;
    report::visit_fields(pl, take(p));
    // Derived fields (not asked of the model).
    if (pl.size_mm.value) {
      pl.size_class.value = report::size_class(*pl.size_mm.value);
      pl.size_class.confidence = conf;
    }
    if (pl.histology.value)
      if (auto g = report::pathology_group(*pl.histology.value))
        pl.group.value = *g, pl.group.confidence = conf;
    pl.quantity = p["quantity"].get<int>();
    locate(p["evidence"], pl.evidence);
    l.polyps.push_back(std::move(pl));
  }
  return l;
}

LlmClient::LlmClient(LlmOptions options)
    : options_(std::move(options)), format_(options_.response_format) {
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
  ENDOKED_CHECK(init == CURLE_OK, "llm: libcurl failed to initialise");
  ENDOKED_CHECK(format_ == "json_schema" || format_ == "json_object" || format_ == "none",
                "label.llm.response_format must be json_schema, json_object or none, got '",
                format_, "'");
  ENDOKED_CHECK(!options_.model.empty(),
                "label.llm.model is empty: name the served model (or set ENDOKED_LLM_MODEL)");
  ENDOKED_CHECK(options_.concurrency >= 1, "label.llm.concurrency must be ≥ 1, got ", options_.concurrency);
  while (!options_.base_url.empty() && options_.base_url.back() == '/')
    options_.base_url.pop_back();
  if (options_.api_key.empty())
    options_.api_key = env_or("ENDOKED_LLM_API_KEY", env_or("OPENAI_API_KEY", ""));
}

LlmClient::~LlmClient() = default;

std::string LlmClient::version() const {
  return std::string("llm-1/") + options_.model + "/" + kPromptVersion;
}

std::string LlmClient::request_body(const std::string& report, int sample,
                                    const std::string& format) const {
  const std::string system = guideline_prompt() + "Schema:\n" + llm_reply_schema().dump();
  json body = {{"model", options_.model},
               {"temperature", sample == 0 ? options_.temperature : options_.sample_temperature},
               {"max_tokens", options_.max_tokens},
               {"seed", sample},
               {"messages",
                {{{"role", "system"}, {"content", system}},
                 {{"role", "user"}, {"content", "Report:\n" + report}}}}};
  if (format == "json_schema")
    body["response_format"] = {
        {"type", "json_schema"},
        {"json_schema",
         {{"name", "exam_labels"}, {"strict", true}, {"schema", llm_reply_schema()}}}};
  else if (format == "json_object")
    body["response_format"] = {{"type", "json_object"}};
  return body.dump();
}

LlmClient::Reply LlmClient::post(const std::string& body) const {
  Reply r;
  // One handle per thread, reset per request: its connection (and TLS session) to the server is
  // reused instead of reconnecting for every report.
  struct Handle {
    CURL* h = curl_easy_init();
    ~Handle() {
      if (h) curl_easy_cleanup(h);
    }
  };
  thread_local Handle handle;
  CURL* h = handle.h;
  ENDOKED_CHECK(h, "llm: curl_easy_init failed");
  curl_easy_reset(h);
  const std::string url = options_.base_url + "/chat/completions";
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  if (!options_.api_key.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + options_.api_key).c_str());
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &r.retry_after);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_s * 1000));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout_s * 1000));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (options_.insecure_tls) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK)
    r.error = curl_easy_strerror(rc);
  else
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  return r;
}

std::string LlmClient::cache_path(const std::string& report, int sample) const {
  if (options_.cache_dir.empty()) return {};
  const std::string key = sha256_hex(report + '\0' + options_.model + '\0' + kPromptVersion + '\0' +
                                     std::to_string(sample));
  return options_.cache_dir + "/" + key.substr(0, 2) + "/" + key + ".json";
}

report::ExamLabels LlmClient::label(const std::string& report, int sample) {
  const std::string ver = version();
  const std::string cached = cache_path(report, sample);
  if (!cached.empty() && fs::exists(cached)) {
    try {
      const json reply = json::parse(files::read_all(cached));
      if (validate_llm_reply(reply).empty()) {
        ++stats_.cache_hits;
        return llm_reply_to_labels(reply, report, ver);
      }
    } catch (const std::exception&) {
      // A damaged cache entry is asked again and overwritten.
    }
  }
  int transport_tries = 0, invalid_tries = 0;
  std::string last_problem;
  while (true) {
    std::string format;
    {
      std::lock_guard<std::mutex> lock(format_mutex_);
      format = format_;
    }
    const Reply r = post(request_body(report, sample, format));
    ++stats_.requests;
    const bool transient = r.status == 0 || r.status == 429 || r.status >= 500;
    if (transient) {
      last_problem = r.status == 0 ? r.error : "HTTP " + std::to_string(r.status);
      if (transport_tries >= options_.max_retries) {
        ++stats_.failed;
        return failed_labels(ver, "llm server failed after " + std::to_string(transport_tries + 1) +
                                      " tries: " + last_problem);
      }
      double wait =
          std::min(options_.backoff_max_s, options_.backoff_s * std::pow(2.0, transport_tries));
      if (!r.retry_after.empty()) {
        const double ra = std::atof(r.retry_after.c_str());
        if (ra > 0) wait = std::min(options_.backoff_max_s, ra);
      }
      ++transport_tries;
      ++stats_.retries;
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
      continue;
    }
    if (r.status == 400 && format != "none" &&
        (r.body.find("response_format") != std::string::npos ||
         r.body.find("json_schema") != std::string::npos)) {
      std::lock_guard<std::mutex> lock(format_mutex_);
      if (format_ == format) {
        format_ = format == "json_schema" ? "json_object" : "none";
        log::warn("llm: the server refused response_format {}; using {}", format, format_);
      }
      continue;
    }
    if (r.status != 200)
      ENDOKED_FAIL("llm: ", options_.base_url, "/chat/completions answered HTTP ", r.status, ": ",
                   r.body.substr(0, 300));
    std::string problem;
    json reply;
    try {
      const json envelope = json::parse(r.body);
      const std::string content =
          envelope.at("choices").at(0).at("message").at("content").get<std::string>();
      reply = json::parse(strip_fences(content));
      problem = validate_llm_reply(reply);
    } catch (const std::exception& e) {
      problem = std::string("not JSON of the expected shape: ") + e.what();
    }
    if (!problem.empty()) {
      ++stats_.invalid;
      if (invalid_tries >= options_.invalid_retries)
        return failed_labels(ver, "invalid llm reply after " + std::to_string(invalid_tries + 1) +
                                      " tries: " + problem);
      ++invalid_tries;
      continue;
    }
    if (!cached.empty()) {
      std::error_code ec;  // another thread may create it at the same moment
      fs::create_directories(fs::path(cached).parent_path(), ec);
      files::atomic_write(cached, reply.dump());
    }
    return llm_reply_to_labels(reply, report, ver);
  }
}

}  // namespace endoked::report
