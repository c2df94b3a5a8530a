#include "server/load_client.h"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace kvc {
namespace {

using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

double Since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

// Deterministic pseudo-random numbers (splitmix64): the workload is the same on every run.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Plain words (TinyStories-like), so that small real vocabularies tokenize them compactly.
constexpr const char* kWords[] = {
    "the", "little", "girl", "boy", "dog", "cat", "bird", "tree", "park", "ball", "sun", "sky",
    "happy", "sad", "big", "small", "red", "blue", "green", "went", "saw", "played", "found",
    "wanted", "said", "mom", "dad", "friend", "house", "garden", "flower", "water", "cake", "toy",
    "box", "car", "fish", "bear", "jump", "run", "sing", "walk", "look", "day", "night", "home",
    "school", "book", "hat", "shoe", "apple", "tiny", "kind", "brave", "funny", "soft", "warm"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

std::string Words(uint64_t seed, int32_t n) {
  std::string out;
  for (int32_t i = 0; i < n; ++i) {
    const char* w = kWords[Mix(seed * 1000003ull + static_cast<uint64_t>(i)) % kNumWords];
    if (i > 0) out += (i % 9 == 0) ? ". " : " ";
    out += w;
  }
  return out + ".";
}

std::string Question(uint64_t seed) {
  const uint64_t a = Mix(seed), b = Mix(seed + 1);
  return "Tell me a story about the " + std::string(kWords[a % kNumWords]) + " and the " +
         std::string(kWords[b % kNumWords]) + " (story " + std::to_string(seed % 100000) + ").";
}

// Feeds SSE bytes and interprets each complete event of the OpenAI stream.
class SseParser {
 public:
  SseParser(bool chat, SteadyClock::time_point t0, StreamedResponse* out)
      : chat_(chat), t0_(t0), out_(out) {}

  void Feed(const char* data, size_t n) {
    buf_.append(data, n);
    size_t end;
    while ((end = buf_.find("\n\n")) != std::string::npos) {
      Event(buf_.substr(0, end));
      buf_.erase(0, end + 2);
    }
  }
  bool done() const { return done_; }

 private:
  void Event(const std::string& ev) {
    if (ev.rfind("data: ", 0) != 0) return;
    const std::string payload = ev.substr(6);
    if (payload == "[DONE]") {
      done_ = true;
      return;
    }
    json j = json::parse(payload, nullptr, false);
    if (!j.is_object()) {
      if (out_->error.empty()) out_->error = "unparsable stream event: " + payload.substr(0, 200);
      return;
    }
    if (j.contains("error")) {
      if (out_->error.empty()) out_->error = j["error"].value("message", std::string("error"));
      return;
    }
    if (const auto u = j.find("usage"); u != j.end() && u->is_object()) {
      out_->prompt_tokens = u->value("prompt_tokens", -1);
      out_->completion_tokens = u->value("completion_tokens", -1);
      if (const auto d = u->find("prompt_tokens_details"); d != u->end() && d->is_object()) {
        out_->cached_tokens = d->value("cached_tokens", -1);
      }
    }
    const auto choices = j.find("choices");
    if (choices == j.end() || !choices->is_array() || choices->empty()) return;
    const json& c = (*choices)[0];
    std::string piece;
    if (chat_) {
      if (const auto d = c.find("delta"); d != c.end() && d->is_object()) {
        if (const auto t = d->find("content"); t != d->end() && t->is_string()) piece = t->get<std::string>();
      }
    } else if (const auto t = c.find("text"); t != c.end() && t->is_string()) {
      piece = t->get<std::string>();
    }
    if (const auto f = c.find("finish_reason"); f != c.end() && f->is_string()) {
      out_->finish_reason = f->get<std::string>();
    }
    if (piece.empty()) return;
    const double now = Since(t0_);
    if (out_->chunks == 0) {
      out_->ttft_seconds = now;
    } else {
      out_->gaps_seconds.push_back(now - last_);
    }
    last_ = now;
    ++out_->chunks;
    out_->text += piece;
  }

  bool chat_;
  SteadyClock::time_point t0_;
  StreamedResponse* out_;
  std::string buf_;
  double last_ = 0;
  bool done_ = false;
};

// The value of a metric in a scrape, or -1.
double MetricOr(const std::map<std::string, double>& m, const char* name) {
  auto it = m.find(name);
  return it == m.end() ? -1 : it->second;
}

}  // namespace

Result<ServerAddress> ParseServerUrl(const std::string& url) {
  std::string rest = url;
  if (rest.rfind("https://", 0) == 0) return InvalidArgument("https is not supported: " + url);
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  rest = rest.substr(0, rest.find('/'));
  const size_t colon = rest.rfind(':');
  ServerAddress a;
  a.host = colon == std::string::npos ? rest : rest.substr(0, colon);
  if (a.host.empty()) return InvalidArgument("no host in the URL '" + url + "'");
  if (colon == std::string::npos) {
    a.port = 80;
    return a;
  }
  const std::string port = rest.substr(colon + 1);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return InvalidArgument("bad port in the URL '" + url + "'");
  }
  a.port = std::stoi(port);
  return a;
}

LoadClient::LoadClient(ServerAddress address, double timeout_seconds)
    : address_(std::move(address)), timeout_seconds_(timeout_seconds) {}

StreamedResponse LoadClient::Stream(const std::string& path, const std::string& body, bool chat) const {
  StreamedResponse out;
  httplib::Client cli(address_.host, address_.port);
  const auto secs = static_cast<time_t>(timeout_seconds_);
  cli.set_connection_timeout(10, 0);
  cli.set_read_timeout(secs, 0);
  cli.set_write_timeout(secs, 0);
  std::string raw;  // the body, kept for error responses
  const SteadyClock::time_point t0 = SteadyClock::now();
  SseParser parser(chat, t0, &out);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.set_header("Accept", "text/event-stream");
  int status = 0;
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (status == 200) {
      parser.Feed(data, n);
    } else if (raw.size() < (64 << 10)) {
      raw.append(data, n);
    }
    return true;
  };
  httplib::Result res = cli.send(req);
  out.total_seconds = Since(t0);
  if (!res) {
    out.error = "request failed: " + httplib::to_string(res.error());
    return out;
  }
  out.http_status = res->status;
  if (out.http_status != 200) {
    json j = json::parse(raw, nullptr, false);
    std::string msg = raw.substr(0, 300);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      msg = j["error"].value("message", msg);
    }
    out.error = "HTTP " + std::to_string(out.http_status) + ": " + msg;
  } else if (out.error.empty() && !parser.done()) {
    out.error = "the stream ended without [DONE]";
  }
  return out;
}

StreamedResponse LoadClient::StreamChat(const std::string& model, const std::vector<ChatMessage>& messages,
                                        int32_t max_tokens) const {
  json msgs = json::array();
  for (const ChatMessage& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  json body = {{"messages", msgs}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (!model.empty()) body["model"] = model;
  return Stream("/v1/chat/completions", body.dump(-1, ' ', false, json::error_handler_t::replace), true);
}

StreamedResponse LoadClient::StreamCompletion(const std::string& model, const std::string& prompt,
                                              int32_t max_tokens) const {
  json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (!model.empty()) body["model"] = model;
  return Stream("/v1/completions", body.dump(-1, ' ', false, json::error_handler_t::replace), false);
}

Result<std::string> LoadClient::FirstModelId() const {
  httplib::Client cli(address_.host, address_.port);
  cli.set_connection_timeout(10, 0);
  cli.set_read_timeout(60, 0);
  auto r = cli.Get("/v1/models");
  if (!r) return IoError("GET /v1/models failed: " + httplib::to_string(r.error()));
  if (r->status != 200) return IoError("GET /v1/models: HTTP " + std::to_string(r->status));
  json j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty() ||
      !j["data"][0].is_object() || !j["data"][0].contains("id") || !j["data"][0]["id"].is_string()) {
    return IoError("GET /v1/models: no model listed");
  }
  return j["data"][0]["id"].get<std::string>();
}

Result<std::map<std::string, double>> LoadClient::Metrics() const {
  httplib::Client cli(address_.host, address_.port);
  cli.set_connection_timeout(10, 0);
  cli.set_read_timeout(60, 0);
  auto r = cli.Get("/metrics");
  if (!r) return IoError("GET /metrics failed: " + httplib::to_string(r.error()));
  if (r->status != 200) return IoError("GET /metrics: HTTP " + std::to_string(r->status));
  std::map<std::string, double> out;
  std::istringstream in(r->body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    char* end = nullptr;
    const double v = std::strtod(line.c_str() + sp + 1, &end);
    if (end == line.c_str() + sp + 1) continue;
    out[line.substr(0, sp)] = v;
  }
  return out;
}

Percentiles SummarizeLatencies(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  p.count = static_cast<int64_t>(v.size());
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / v.size();
  auto at = [&](double q) {
    const double pos = q * (v.size() - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - lo) * (v[hi] - v[lo]);
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  return p;
}

LoadGenerator::LoadGenerator(const LoadClient& client, LoadOptions options)
    : client_(client), options_(std::move(options)) {
  system_words_ = std::max(1, options_.system_tokens);
}

std::string LoadGenerator::SystemPrompt(uint64_t seed, int32_t words) const {
  return "You are a storyteller. Remember these words: " + Words(seed, words > 0 ? words : system_words_);
}

Status LoadGenerator::Prepare() {
  // Probes: the system prompt alone as a plain completion (BOS + text; a different token
  // sequence from any chat prompt, so nothing it caches is a hit later). The words-per-token
  // ratio converges in a step or two.
  const int32_t target = std::max(1, options_.system_tokens);
  system_words_ = std::min(target, 32);  // a first probe small enough for any context
  for (int probe = 0; probe < 5; ++probe) {
    const StreamedResponse r = client_.StreamCompletion(options_.model, SystemPrompt(~0ull - probe), 1);
    if (!r.ok() && probe > 0 && system_words_ > 1) {  // overshot the context: back off
      system_words_ /= 2;
      continue;
    }
    if (!r.ok()) return IoError("probe request: " + r.error);
    if (r.prompt_tokens <= 0) return IoError("probe request: the server reported no usage");
    const int32_t got = r.prompt_tokens;
    if (std::abs(got - target) <= std::max(2, target / 20)) break;
    const double words_per_token = static_cast<double>(system_words_) / got;
    system_words_ = std::max(1, static_cast<int32_t>(std::lround(target * words_per_token)));
  }
  return Status::Ok();
}

std::vector<ChatMessage> LoadGenerator::Messages(int32_t level, int32_t i) const {
  return {{"system", SystemPrompt(static_cast<uint64_t>(level) + 1)},
          {"user", Question(static_cast<uint64_t>(level) * 7919 + static_cast<uint64_t>(i))}};
}

LoadLevelResult LoadGenerator::RunLevel(int32_t clients, int32_t level_index) {
  LoadLevelResult res;
  res.clients = std::max(1, clients);
  res.requests = options_.requests > 0 ? options_.requests : std::max(8, 4 * res.clients);
  auto before = client_.Metrics();

  std::atomic<int32_t> next{0};
  std::mutex mu;
  std::vector<double> ttft, gaps;
  const SteadyClock::time_point t0 = SteadyClock::now();
  std::vector<std::thread> threads;
  for (int32_t c = 0; c < res.clients; ++c) {
    threads.emplace_back([&] {
      for (int32_t i; (i = next++) < res.requests;) {
        StreamedResponse r = client_.StreamChat(options_.model, Messages(level_index, i), options_.max_tokens);
        std::lock_guard<std::mutex> lock(mu);
        if (!r.ok()) {
          ++res.errors;
          if (res.first_error.empty()) res.first_error = r.error;
          continue;
        }
        if (r.ttft_seconds >= 0) ttft.push_back(r.ttft_seconds);
        gaps.insert(gaps.end(), r.gaps_seconds.begin(), r.gaps_seconds.end());
        res.prompt_tokens += std::max(0, r.prompt_tokens);
        res.cached_tokens += std::max(0, r.cached_tokens);
        res.generated_tokens += r.completion_tokens >= 0 ? r.completion_tokens : r.chunks;
      }
    });
  }
  for (auto& t : threads) t.join();
  res.seconds = Since(t0);
  res.ttft = SummarizeLatencies(std::move(ttft));
  res.itl = SummarizeLatencies(std::move(gaps));

  // kvcache publishes its counters at the end of each engine step, just after the last tokens
  // went out: wait until a scrape shows the engine idle.
  if (before.ok() && MetricOr(before.value(), "kvcache_prompt_tokens_total") >= 0) {
    for (int i = 0; i < 200; ++i) {
      auto after = client_.Metrics();
      if (!after.ok()) break;
      const auto& a = after.value();
      if ((MetricOr(a, "kvcache_requests_running") == 0 && MetricOr(a, "kvcache_queue_length") == 0) ||
          i == 199) {
        const double prompt = MetricOr(a, "kvcache_prompt_tokens_total") -
                              MetricOr(before.value(), "kvcache_prompt_tokens_total");
        const double hits = MetricOr(a, "kvcache_prefix_hit_tokens_total") -
                            MetricOr(before.value(), "kvcache_prefix_hit_tokens_total");
        res.prefix_hit_rate = prompt > 0 ? hits / prompt : 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return res;
}

MultiTurnResult LoadGenerator::RunMultiTurn() {
  MultiTurnResult res;
  res.conversations = std::max(0, options_.conversations);
  std::vector<double> t1, t2;
  double prompt2 = 0, cached2 = 0;
  // Turn 2 holds turn 1's prompt, its answer (re-tokenized from text: with a synthetic model's
  // random text, often more tokens than were generated) and a new question. When that exceeds
  // the context the system prompt is halved and the conversation starts over.
  int32_t words = system_words_;
  auto too_long = [](const StreamedResponse& r) {
    return r.http_status == 400 && r.error.find("context") != std::string::npos;
  };
  for (int32_t c = 0; c < res.conversations; ++c) {
    for (int attempt = 0;; ++attempt) {
      // A system prompt of its own (seeds far from the levels'): turn 1 starts cold, so turn 2
      // can only gain from what turn 1 left in the cache.
      const uint64_t seed = 1000000 + 1000 * static_cast<uint64_t>(attempt) + static_cast<uint64_t>(c);
      std::vector<ChatMessage> msgs = {{"system", SystemPrompt(seed, words)},
                                       {"user", Question(5000000 + static_cast<uint64_t>(c))}};
      StreamedResponse first = client_.StreamChat(options_.model, msgs, options_.max_tokens);
      StreamedResponse second;
      if (first.ok()) {
        msgs.push_back({"assistant", first.text});
        msgs.push_back({"user", "And then what happened? " + Question(6000000 + static_cast<uint64_t>(c))});
        second = client_.StreamChat(options_.model, msgs, options_.max_tokens);
      }
      const StreamedResponse& failed = !first.ok() ? first : second;
      if (!failed.ok() && too_long(failed) && words > 1 && attempt < 8) {
        words = std::max(1, words / 2);
        continue;
      }
      if (!failed.ok()) {
        ++res.errors;
        if (res.first_error.empty()) res.first_error = failed.error;
        break;
      }
      if (first.ttft_seconds >= 0) t1.push_back(first.ttft_seconds);
      if (second.ttft_seconds >= 0) t2.push_back(second.ttft_seconds);
      prompt2 += std::max(0, second.prompt_tokens);
      cached2 += std::max(0, second.cached_tokens);
      break;
    }
  }
  const int32_t ok = res.conversations - res.errors;
  res.turn1_ttft = SummarizeLatencies(std::move(t1));
  res.turn2_ttft = SummarizeLatencies(std::move(t2));
  if (ok > 0) {
    res.turn2_prompt_tokens = prompt2 / ok;
    res.turn2_cached_tokens = cached2 / ok;
  }
  return res;
}

}  // namespace kvc
