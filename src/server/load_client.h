// A load generator for an OpenAI-compatible server (kvcache serve or any other): N concurrent
// clients send streamed (SSE) chat completions that share a long system prompt and differ in the
// user question, and it measures what a user feels: time to first token (TTFT), the gaps between
// tokens (inter-token latency, ITL), throughput, and the server's prefix-cache hit rate (from
// /metrics when it has kvcache's). A multi-turn scenario measures the TTFT of a conversation's
// second turn (turn 1's messages + its answer + a new question), where prefix reuse pays most.
// Used by `kvcache bench-serve` (src/cli/bench_serve_cmd.cc).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "server/chat_template.h"

namespace kvc {

// "http://host:port[/...]" (or "host:port"): the host and port.
struct ServerAddress {
  std::string host;
  int port = 0;
};
Result<ServerAddress> ParseServerUrl(const std::string& url);

// One streamed request as the client saw it.
struct StreamedResponse {
  int http_status = 0;         // 0: no HTTP response (connection failed)
  std::string error;           // transport error, error body or in-stream error; empty when ok
  std::string text;            // the deltas concatenated
  std::string finish_reason;
  int32_t prompt_tokens = -1;  // from the usage chunk; -1 when the server sent none
  int32_t completion_tokens = -1;
  int32_t cached_tokens = -1;
  int32_t chunks = 0;          // chunks that carried text
  double ttft_seconds = -1;    // request sent -> first chunk with text
  std::vector<double> gaps_seconds;  // between successive chunks with text
  double total_seconds = 0;

  bool ok() const { return http_status == 200 && error.empty(); }
};

// A thin HTTP client of one server; each request opens its own connection, so any number of
// threads may use one LoadClient at once.
class LoadClient {
 public:
  explicit LoadClient(ServerAddress address, double timeout_seconds = 600);

  // POSTs `messages` to /v1/chat/completions with "stream": true and usage in the stream.
  StreamedResponse StreamChat(const std::string& model, const std::vector<ChatMessage>& messages,
                              int32_t max_tokens) const;
  // POSTs a text prompt to /v1/completions (streamed the same way).
  StreamedResponse StreamCompletion(const std::string& model, const std::string& prompt,
                                    int32_t max_tokens) const;
  // The first model id of GET /v1/models.
  Result<std::string> FirstModelId() const;
  // GET /metrics as name -> value (Prometheus text; labels are kept as part of the name).
  Result<std::map<std::string, double>> Metrics() const;

  const ServerAddress& address() const { return address_; }

 private:
  StreamedResponse Stream(const std::string& path, const std::string& body, bool chat) const;

  ServerAddress address_;
  double timeout_seconds_;
};

// p50/p90/p99 (linear interpolation between order statistics) and the mean; zeros when empty.
struct Percentiles {
  int64_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};
Percentiles SummarizeLatencies(std::vector<double> values);

struct LoadOptions {
  std::string model;              // sent as "model"; empty: omitted
  int32_t system_tokens = 256;    // length of the shared system prompt (calibrated by Prepare)
  int32_t max_tokens = 32;        // per request; greedy (temperature 0)
  int32_t requests = 0;           // per concurrency level; 0: max(8, 4 x clients)
  int32_t conversations = 8;      // of the multi-turn scenario (run one after another)
};

// One concurrency level of the shared-system-prompt workload.
struct LoadLevelResult {
  int32_t clients = 0;
  int32_t requests = 0;
  int32_t errors = 0;
  std::string first_error;
  double seconds = 0;              // wall time of the whole level
  int64_t prompt_tokens = 0;       // sums over the successful requests (usage)
  int64_t cached_tokens = 0;
  int64_t generated_tokens = 0;
  Percentiles ttft;                // seconds
  Percentiles itl;                 // seconds, over every gap of every request
  double prefix_hit_rate = -1;     // from the server's /metrics over this level; -1: unavailable

  double RequestsPerSecond() const { return seconds > 0 ? (requests - errors) / seconds : 0; }
  double TokensPerSecond() const { return seconds > 0 ? generated_tokens / seconds : 0; }
};

struct MultiTurnResult {
  int32_t conversations = 0;
  int32_t errors = 0;
  std::string first_error;
  Percentiles turn1_ttft;          // seconds
  Percentiles turn2_ttft;
  double turn2_prompt_tokens = 0;  // means over the conversations
  double turn2_cached_tokens = 0;
};

class LoadGenerator {
 public:
  LoadGenerator(const LoadClient& client, LoadOptions options);

  // Sizes the system prompt to about `system_tokens` tokens with probe requests to
  // /v1/completions (a different token sequence from the chat prompts: nothing of the workload
  // gets cached by it).
  Status Prepare();

  // `clients` threads send `requests` (see LoadOptions) between them. Every level uses its own
  // system prompt, so each starts with a cold prefix cache.
  LoadLevelResult RunLevel(int32_t clients, int32_t level_index);
  // Conversations one after another: turn 1, then turn 2 with the answer, streamed. When turn 2
  // would not fit the context, the conversations' system prompt is halved until it does.
  MultiTurnResult RunMultiTurn();

  int32_t system_words() const { return system_words_; }
  // The chat messages of request `i` of level `level` (for tests and documentation).
  std::vector<ChatMessage> Messages(int32_t level, int32_t i) const;

 private:
  // `words` words after a fixed opening (0: system_words_).
  std::string SystemPrompt(uint64_t seed, int32_t words = 0) const;

  const LoadClient& client_;
  LoadOptions options_;
  int32_t system_words_ = 0;
};

}  // namespace kvc
