#include "server/http_server.h"

#include <sys/socket.h>

#include <chrono>
#include <httplib.h>

#include "server/openai_api.h"
#include "server/text_stream.h"
#include "server/web_page.h"

namespace kvc {
namespace {

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch()).count();
}

ApiError FromStatus(const Status& s) {
  ApiError e;
  e.message = s.message();
  switch (s.code()) {
    case StatusCode::kOutOfRange: e.code = "context_length_exceeded"; break;
    case StatusCode::kOutOfMemory: e.code = "kv_cache_too_small"; break;
    case StatusCode::kInvalidArgument: break;
    default:
      e.http_status = 500;
      e.type = "server_error";
  }
  return e;
}

// One completion in flight: the engine's stream plus what turns its tokens into text.
struct Job {
  Endpoint endpoint;
  CompletionHeader header;
  std::shared_ptr<RequestStream> stream;
  TextStream text;
  bool include_usage = false;
  bool finished = false;
  bool role_sent = false;

  Job(Endpoint ep, CompletionHeader h, std::shared_ptr<RequestStream> s, TextStream t)
      : endpoint(ep), header(std::move(h)), stream(std::move(s)), text(std::move(t)) {}
};

const char* Finish(const Job& job, const TokenEvent& e) {
  if (job.text.stopped() || e.finish == FinishReason::kStop) return "stop";
  return "length";
}

}  // namespace

struct HttpServer::Impl {
  Engine& engine;
  const Tokenizer& tok;
  ServerOptions options;
  httplib::Server http;
  std::atomic<int64_t> next_id{1};
  std::atomic<int64_t> requests{0}, errors{0};
  int64_t created = UnixNow();

  Impl(Engine& e, const Tokenizer& t, const ServerOptions& o) : engine(e), tok(t), options(o) {}

  void SendError(httplib::Response& res, const ApiError& e) {
    ++errors;
    res.status = e.http_status;
    res.set_content(ErrorJson(e), "application/json");
  }

  void Completion(const httplib::Request& req, httplib::Response& res, Endpoint ep);
  void Routes();
};

void HttpServer::Impl::Completion(const httplib::Request& req, httplib::Response& res, Endpoint ep) {
  ++requests;
  auto parsed = ParseCompletionRequest(req.body, ep);
  if (auto* e = std::get_if<ApiError>(&parsed)) return SendError(res, *e);
  CompletionRequest& r = std::get<CompletionRequest>(parsed);
  if (!r.model.empty() && r.model != options.model_id) {
    ApiError e;
    e.http_status = 404;
    e.message = "the model '" + r.model + "' does not exist; this server serves '" + options.model_id + "'";
    e.param = "model";
    e.code = "model_not_found";
    return SendError(res, e);
  }
  std::vector<int32_t> prompt;
  if (r.prompt_tokens) {
    prompt = *r.prompt_tokens;
  } else {
    const std::string text = ep == Endpoint::kChat ? RenderChat(options.chat_format, r.messages) : r.prompt;
    prompt = tok.Encode(text, /*add_bos=*/true);
  }
  const int32_t ctx = engine.limits().context_length;
  const int32_t n_prompt = static_cast<int32_t>(prompt.size());
  const int32_t last_prompt = prompt.empty() ? -1 : prompt.back();  // detokenizer context
  RequestOptions ro;
  if (r.max_tokens) {
    ro.max_tokens = *r.max_tokens;
  } else {
    ro.max_tokens = std::min(options.default_max_tokens, ctx - n_prompt);
    if (ro.max_tokens < 1) ro.max_tokens = options.default_max_tokens;  // Submit reports overflow
  }
  ro.eos_token = tok.eos();
  ro.sampling.temperature = r.temperature;
  ro.sampling.top_p = r.top_p;
  ro.sampling.top_k = r.top_k;
  ro.sampling.seed = r.seed.value_or(static_cast<uint64_t>(next_id.load()));
  auto submitted = engine.Submit(std::move(prompt), ro);
  if (!submitted.ok()) return SendError(res, FromStatus(submitted.status()));

  const int64_t id = next_id++;
  CompletionHeader h{(ep == Endpoint::kChat ? "chatcmpl-" : "cmpl-") + std::to_string(id), UnixNow(),
                     options.model_id};
  auto job = std::make_shared<Job>(ep, h, submitted.value(), TextStream(tok, r.stop, last_prompt));
  job->include_usage = r.include_usage;

  if (!r.stream) {
    std::string text;
    for (;;) {
      TokenEvent e = job->stream->Next();
      if (!e.done) {
        text += job->text.Push(e.token);
        if (job->text.stopped()) job->stream->Cancel();  // the engine frees it at its next step
        continue;
      }
      if (e.finish == FinishReason::kError) return SendError(res, FromStatus(e.status));
      text += job->text.Finish();
      res.set_content(CompletionJson(ep, h, text, Finish(*job, e), e.stats), "application/json");
      return;
    }
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [job](size_t, httplib::DataSink& sink) {
        auto send = [&](const std::string& payload) {
          const std::string ev = "data: " + payload + "\n\n";
          return sink.write(ev.data(), ev.size());
        };
        if (job->endpoint == Endpoint::kChat && !job->role_sent) {
          job->role_sent = true;
          return send(ChunkJson(job->endpoint, job->header, "", true, nullptr));
        }
        TokenEvent e = job->stream->Next();
        if (!e.done) {
          const std::string piece = job->text.Push(e.token);
          if (job->text.stopped()) job->stream->Cancel();
          return piece.empty() ? true : send(ChunkJson(job->endpoint, job->header, piece, false, nullptr));
        }
        job->finished = true;
        bool ok = true;
        if (e.finish == FinishReason::kError) {
          ApiError err = FromStatus(e.status);
          ok = send(ErrorJson(err));
        } else {
          const std::string rest = job->text.Finish();
          if (!rest.empty()) ok = send(ChunkJson(job->endpoint, job->header, rest, false, nullptr));
          ok = ok && send(ChunkJson(job->endpoint, job->header, "", false, Finish(*job, e)));
          if (job->include_usage) ok = ok && send(UsageChunkJson(job->endpoint, job->header, e.stats));
        }
        ok = ok && send("[DONE]");
        sink.done();
        return ok;
      },
      [job](bool) {
        if (!job->finished) job->stream->Cancel();  // client went away mid-stream
      });
}

void HttpServer::Impl::Routes() {
  http.Post("/v1/completions", [this](const httplib::Request& q, httplib::Response& s) {
    Completion(q, s, Endpoint::kCompletions);
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& q, httplib::Response& s) {
    Completion(q, s, Endpoint::kChat);
  });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& s) {
    s.set_content(ModelsJson(options.model_id, created), "application/json");
  });
  http.Get("/health", [](const httplib::Request&, httplib::Response& s) {
    s.set_content("{\"status\":\"ok\"}", "application/json");
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& s) {
    s.set_content(PrometheusText(engine.Metrics(), {requests.load(), errors.load()}),
                  "text/plain; version=0.0.4");
  });
  // The live KV cache page and the snapshot it polls (src/server/web_page.h).
  http.Get("/", [](const httplib::Request&, httplib::Response& s) {
    s.set_content(std::string(CachePageHtml()), "text/html; charset=utf-8");
  });
  http.Get("/v1/cache", [this](const httplib::Request&, httplib::Response& s) {
    s.set_header("Cache-Control", "no-store");
    s.set_content(CacheJson(engine.Snapshot(), options.model_id), "application/json");
  });
  // Anything httplib rejects itself (unknown route, oversized body) still gets an error object.
  http.set_error_handler([this](const httplib::Request& q, httplib::Response& s) {
    if (!s.body.empty()) return;
    ApiError e;
    e.http_status = s.status;
    if (s.status == 413) {
      e.message = "the request body exceeds the limit of " + std::to_string(options.max_body_bytes) + " bytes";
    } else if (s.status == 404) {
      e.message = "unknown endpoint " + q.method + " " + q.path;
    } else {
      e.message = "HTTP error " + std::to_string(s.status);
    }
    s.set_content(ErrorJson(e), "application/json");
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& s, std::exception_ptr) {
    ApiError e;
    e.http_status = 500;
    e.type = "server_error";
    e.message = "internal error";
    s.status = 500;
    s.set_content(ErrorJson(e), "application/json");
  });
}

HttpServer::HttpServer(Engine& engine, const Tokenizer& tokenizer, const ServerOptions& options)
    : impl_(std::make_unique<Impl>(engine, tokenizer, options)) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  httplib::Server& http = impl_->http;
  const int threads = impl_->options.http_threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(impl_->options.max_body_bytes);
  // cpp-httplib listens with a backlog of 5: a burst of clients overflows it and the kernel drops
  // their SYNs (they retry after a second). Remember the socket to listen again with a deep queue.
  int listen_fd = -1;
  http.set_socket_options([&listen_fd](socket_t fd) {
    httplib::default_socket_options(fd);
    listen_fd = fd;
  });
  impl_->Routes();
  const std::string& host = impl_->options.host;
  if (impl_->options.port == 0) {
    port_ = http.bind_to_any_port(host);
  } else {
    port_ = http.bind_to_port(host, impl_->options.port) ? impl_->options.port : -1;
  }
  if (port_ <= 0) {
    return IoError("cannot listen on " + host + ":" + std::to_string(impl_->options.port));
  }
  if (listen_fd >= 0) ::listen(listen_fd, SOMAXCONN);  // Linux raises the backlog of a listening socket
  http.set_socket_options(httplib::default_socket_options);
  thread_ = std::thread([this] { impl_->http.listen_after_bind(); });
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  impl_->http.stop();
  thread_.join();
}

}  // namespace kvc
