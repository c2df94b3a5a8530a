// The OpenAI-compatible wire format: request parsing with type and range checks, response and
// stream-chunk bodies, and error objects. The only code that knows JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "engine/sequence.h"
#include "server/chat_template.h"

namespace kvc {

// {"error": {"message", "type", "param", "code"}} with its HTTP status.
struct ApiError {
  int http_status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // empty: null
  std::string code;   // empty: null
};
std::string ErrorJson(const ApiError& e);

enum class Endpoint { kCompletions, kChat };

struct CompletionRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;                   // as sent; empty when absent
  std::string prompt;                  // completions: text prompt
  std::optional<std::vector<int32_t>> prompt_tokens;  // completions: a prompt given as token ids
  std::vector<ChatMessage> messages;   // chat
  std::optional<int32_t> max_tokens;   // absent: the server's default
  float temperature = 1.0f;
  float top_p = 1.0f;
  int32_t top_k = 0;                   // extension; 0: off
  std::optional<uint64_t> seed;
  bool stream = false;
  bool include_usage = false;          // stream_options.include_usage
  std::vector<std::string> stop;
};

// Parses a request body. Errors are 400s that name the offending parameter.
std::variant<CompletionRequest, ApiError> ParseCompletionRequest(std::string_view body,
                                                                 Endpoint endpoint);

// What the server knows once a request finished (or at each stream chunk).
struct CompletionHeader {
  std::string id;       // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;  // unix seconds
  std::string model;
};

// The whole (non-streamed) response.
std::string CompletionJson(Endpoint endpoint, const CompletionHeader& h, const std::string& text,
                           const char* finish_reason, const RequestStats& stats);
// One server-sent-event payload (without "data: "): `text` as the delta; `role` adds the
// assistant role (first chat chunk); `finish_reason` may be null.
std::string ChunkJson(Endpoint endpoint, const CompletionHeader& h, std::string_view text,
                      bool role, const char* finish_reason);
// The final usage-only chunk (stream_options.include_usage).
std::string UsageChunkJson(Endpoint endpoint, const CompletionHeader& h, const RequestStats& stats);

std::string ModelsJson(const std::string& model_id, int64_t created);
std::string ModelJson(const std::string& model_id, int64_t created);

}  // namespace kvc
