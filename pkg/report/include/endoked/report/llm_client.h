#pragma once
// The `llm` labelling backend: a client for an OpenAI-compatible chat-completions server
// (vLLM, llama.cpp server, Ollama, or a hosted API) through libcurl (TLS included).
//
// One request per report (and per sample when k > 1): a system prompt with the annotation
// guideline and the reply schema, the report as the user message, temperature 0 for sample 0;
// `response_format` asks for the JSON schema where the server supports it (a 400 that names
// response_format downgrades to json_object, then to none, once per client).
// Every reply is validated strictly against the schema (types, enums, no unknown keys); an
// invalid one is asked again up to `invalid_retries` times, then the exam is labelled
// `uncertain` with the reason in `notes`. 429, 5xx, timeouts and connection errors are retried
// up to `max_retries` times with exponential backoff (Retry-After honoured); other 4xx are
// configuration errors and fail the run with the server's message.
// Valid replies are cached on disk under cache_dir, keyed by SHA-256(report, model, prompt
// version, sample), so a rerun sends nothing.
// Thread safety: label() may be called from `concurrency` threads at once.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "endoked/report/labels.h"

namespace endoked::report {

struct LlmOptions {
  std::string base_url;  // default: $ENDOKED_LLM_BASE_URL, else http://127.0.0.1:8000/v1
  std::string model;     // default: $ENDOKED_LLM_MODEL
  std::string api_key;   // empty: $ENDOKED_LLM_API_KEY, else $OPENAI_API_KEY, read when the
                         // client starts (so the secret never lands in a saved config)
  std::string response_format = "json_schema";  // json_schema | json_object | none
  double temperature = 0.0;                     // sample 0
  double sample_temperature = 0.7;              // samples 1…k−1
  int max_tokens = 1024;
  double timeout_s = 120;
  double connect_timeout_s = 10;
  int max_retries = 5;
  int invalid_retries = 2;
  double backoff_s = 0.5;
  double backoff_max_s = 30;
  int concurrency = 4;
  std::string cache_dir = "llm-cache";
  bool insecure_tls = false;

  LlmOptions();
  template <class V>
  void visit(V& v) {
    v("base_url", base_url, "server base URL up to /v1 (default $ENDOKED_LLM_BASE_URL)");
    v("model", model, "model name sent to the server (default $ENDOKED_LLM_MODEL)");
    v("api_key", api_key,
      "bearer token; empty: $ENDOKED_LLM_API_KEY or $OPENAI_API_KEY (preferred: a key written "
      "here is saved in the run's config.yaml)");
    v("response_format", response_format, "json_schema | json_object | none");
    v("temperature", temperature, "temperature of the first sample");
    v("sample_temperature", sample_temperature, "temperature of further samples (ensemble)");
    v("max_tokens", max_tokens, "reply token limit");
    v("timeout_s", timeout_s, "whole-request timeout in seconds");
    v("connect_timeout_s", connect_timeout_s, "connection timeout in seconds");
    v("max_retries", max_retries, "retries after 429, 5xx, timeouts and connection errors");
    v("invalid_retries", invalid_retries, "retries after a reply that breaks the schema");
    v("backoff_s", backoff_s, "first retry delay; doubles per retry");
    v("backoff_max_s", backoff_max_s, "longest retry delay");
    v("concurrency", concurrency, "requests in flight per rank");
    v("cache_dir", cache_dir, "reply cache directory (empty: no cache)");
    v("insecure_tls", insecure_tls, "skip TLS certificate checks (self-signed test servers)");
  }
};

/// The reply schema the model must follow (JSON Schema, draft 2020-12 subset).
const nlohmann::json& llm_reply_schema();
/// Checks a reply against llm_reply_schema(); returns "" when valid, else the first problem.
std::string validate_llm_reply(const nlohmann::json& reply);
/// Turns a valid reply into labels; evidence quotes are located in `report` (a quote that is
/// not found is dropped and noted).
report::ExamLabels llm_reply_to_labels(const nlohmann::json& reply, const std::string& report,
                                       const std::string& version);

struct LlmStats {
  std::atomic<std::int64_t> requests{0}, cache_hits{0}, retries{0}, invalid{0}, failed{0};
  nlohmann::json to_json() const;
};

class LlmClient {
 public:
  explicit LlmClient(LlmOptions options);
  ~LlmClient();
  /// Labels one report (sample index `sample`); never throws for a bad reply or an
  /// unreachable server (the labels say uncertain and why), throws endoked::Error for a
  /// configuration error (401, 404, …) naming the URL and the server's message.
  report::ExamLabels label(const std::string& report, int sample = 0);
  const LlmStats& stats() const { return stats_; }
  std::string version() const;
  static constexpr const char* kPromptVersion = "p2";  // GUIDELINE.md conventions

 private:
  struct Reply {
    long status = 0;
    std::string body, error, retry_after;
  };
  Reply post(const std::string& body) const;
  std::string request_body(const std::string& report, int sample, const std::string& format) const;
  std::string cache_path(const std::string& report, int sample) const;

  LlmOptions options_;
  mutable std::mutex format_mutex_;
  std::string format_;  // current response_format after downgrades
  LlmStats stats_;
};

}  // namespace endoked::report
