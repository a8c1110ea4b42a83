#pragma once
// A local OpenAI-compatible chat-completions server (cpp-httplib) for the LLM client tests.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace endoked::testing {

using nlohmann::json;

inline std::string envelope(const std::string& content) {
  return json{
      {"id", "x"},
      {"object", "chat.completion"},
      {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", content}}}}}}}
      .dump();
}

inline void reply_ok(httplib::Response& res, const std::string& content) {
  res.set_content(envelope(content), "application/json");
}

// A real HTTP server on 127.0.0.1 that speaks the chat-completions shape; its answer to request n
// (0-based) is decided by `answer` (the test scripts good replies, errors and delays).
class ChatServer {
 public:
  using Answer = std::function<void(int n, const json& request, httplib::Response&)>;
  explicit ChatServer(Answer answer) : answer_(std::move(answer)) {
    server_.Post(
        "/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
          const int n = requests_++;
          {
            std::lock_guard<std::mutex> lock(mutex_);  // handlers run on the server's thread pool
            last_request_ = req.body;
            last_authorization_ = req.get_header_value("Authorization");
          }
          answer_(n, json::parse(req.body), res);
        });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~ChatServer() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }
  int requests() const { return requests_; }
  std::string last_authorization() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_authorization_;
  }
  std::string last_request() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return last_request_;
  }

 private:
  Answer answer_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::string last_request_, last_authorization_;
};

}  // namespace endoked::testing
