// The OpenAI-compatible HTTP front end over an Engine. HTTP worker threads parse, validate and
// tokenize, submit to the engine's queue, and turn the tokens they receive into text (whole
// responses or server-sent events); the engine thread alone runs the model. Endpoints:
// POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics,
// GET /v1/cache (the pool block by block) and GET / (a page that shows it live).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "core/status.h"
#include "engine/engine.h"
#include "server/chat_template.h"
#include "server/metrics.h"
#include "tokenizer/tokenizer.h"

namespace httplib {
class Server;
}

namespace kvc {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (see HttpServer::port)
  std::string model_id = "kvcache";  // the name /v1/models lists and requests must use
  size_t max_body_bytes = 1 << 20;  // larger bodies get 413
  int http_threads = 32;            // concurrent connections served
  int32_t default_max_tokens = 256;  // when a request gives none (capped by the context)
  ChatFormat chat_format = ChatFormat::kPlain;
};

class HttpServer {
 public:
  // `engine` (started by the caller) and `tokenizer` must outlive the server.
  HttpServer(Engine& engine, const Tokenizer& tokenizer, const ServerOptions& options);
  ~HttpServer();

  // Binds and serves on a background thread. Fails when the address cannot be bound.
  Status Start();
  int port() const { return port_; }
  // Stops accepting and waits for the listener to finish.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace kvc
