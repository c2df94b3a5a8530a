// A request as the engine sees it: what the client asked for, the channel its tokens travel on,
// and the engine-side sequence state (tokens, sampler, cache). Only the engine thread touches a
// Sequence; a RequestStream is shared with one client thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "core/status.h"
#include "kvcache/paged_kv_cache.h"
#include "sampling/sampler.h"

namespace kvc {

struct RequestOptions {
  int32_t max_tokens = 16;   // tokens to generate at most
  int32_t eos_token = -1;    // generation stops (without emitting it) when sampled; -1: never
  SamplingParams sampling;
};

enum class FinishReason { kNone, kLength, kStop, kCancelled, kError };
const char* FinishReasonName(FinishReason r);  // "length", "stop", ...

struct RequestStats {
  int32_t prompt_tokens = 0;
  int32_t cached_tokens = 0;     // prompt tokens served from the prefix cache (first admission)
  int32_t generated_tokens = 0;
  int32_t preemptions = 0;
  double queue_seconds = 0;      // submission to first admission
  double first_token_seconds = 0;  // submission to the first sampled token
};

struct TokenEvent {
  int32_t token = -1;                       // a generated token, unless `done`
  bool done = false;
  FinishReason finish = FinishReason::kNone;  // when done
  Status status;                            // when finish == kError
  RequestStats stats;                       // when done
};

// One request's event channel: the engine pushes, the client pops. Thread-safe.
class RequestStream {
 public:
  void Push(TokenEvent e);
  // Blocks until an event is there.
  TokenEvent Next();
  // Waits up to `timeout`; false when nothing came.
  bool NextFor(std::chrono::milliseconds timeout, TokenEvent* out);

  // The client gave up (disconnected): the engine drops the request at its next step.
  void Cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TokenEvent> events_;
  std::atomic<bool> cancelled_{false};
};

using Clock = std::chrono::steady_clock;

struct Sequence {
  Sequence(int64_t id, std::vector<int32_t> prompt, const RequestOptions& options,
           std::shared_ptr<RequestStream> stream);

  int32_t computed() const { return cache ? cache->size() : 0; }
  // Tokens still to run through the model before the next token can be sampled.
  int32_t pending() const { return static_cast<int32_t>(tokens.size()) - computed(); }

  int64_t id;
  std::vector<int32_t> tokens;   // prompt, then every generated token
  int32_t prompt_len;
  RequestOptions options;
  Sampler sampler;
  std::shared_ptr<RequestStream> stream;
  std::unique_ptr<PagedKVCache> cache;  // null while waiting (or preempted)
  std::vector<uint64_t> hashes;         // chained hashes of the cache's leading full blocks
  RequestStats stats;
  bool admitted_once = false;
  Clock::time_point arrival;
};

}  // namespace kvc
