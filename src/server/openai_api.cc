#include "server/openai_api.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace kvc {
namespace {

using json = nlohmann::json;

ApiError Bad(const std::string& param, const std::string& message) {
  ApiError e;
  e.message = message;
  e.param = param;
  return e;
}

// Reads an optional number in [lo, hi]; integral when `integer`.
std::optional<ApiError> GetNumber(const json& j, const char* key, double lo, double hi,
                                  bool integer, std::optional<double>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number() || (integer && !it->is_number_integer())) {
    return Bad(key, std::string("'") + key + "' must be " + (integer ? "an integer" : "a number"));
  }
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return Bad(key, std::string("'") + key + "' must be between " + json(lo).dump() + " and " +
                        json(hi).dump() + ", got " + it->dump());
  }
  *out = v;
  return std::nullopt;
}

std::optional<ApiError> GetBool(const json& j, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return Bad(key, std::string("'") + key + "' must be a boolean");
  *out = it->get<bool>();
  return std::nullopt;
}

// Message content: a string, or an array of {"type": "text", "text": ...} parts.
std::optional<ApiError> GetContent(const json& c, std::string* out) {
  if (c.is_string()) {
    *out = c.get<std::string>();
    return std::nullopt;
  }
  if (c.is_array()) {
    for (const json& part : c) {
      if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
          !part["text"].is_string()) {
        return Bad("messages", "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported");
      }
      *out += part["text"].get<std::string>();
    }
    return std::nullopt;
  }
  return Bad("messages", "message 'content' must be a string or an array of text parts");
}

}  // namespace

std::string ErrorJson(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}};
  err["param"] = e.param.empty() ? json() : json(e.param);
  err["code"] = e.code.empty() ? json() : json(e.code);
  return json{{"error", err}}.dump();
}

std::variant<CompletionRequest, ApiError> ParseCompletionRequest(std::string_view body,
                                                                 Endpoint endpoint) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("", "the request body is not valid JSON");
  if (!j.is_object()) return Bad("", "the request body must be a JSON object");
  CompletionRequest r;
  r.endpoint = endpoint;
  if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return Bad("model", "'model' must be a string");
    r.model = it->get<std::string>();
  }
  if (endpoint == Endpoint::kCompletions) {
    auto it = j.find("prompt");
    if (it == j.end() || it->is_null()) return Bad("prompt", "'prompt' is required");
    if (it->is_string()) {
      r.prompt = it->get<std::string>();
    } else if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) {
      std::vector<int32_t> ids;
      for (const json& t : *it) {
        if (!t.is_number_integer() || t.get<double>() < 0 || t.get<double>() > INT32_MAX) {
          return Bad("prompt", "a token prompt must be an array of non-negative integers");
        }
        ids.push_back(t.get<int32_t>());
      }
      r.prompt_tokens = std::move(ids);
    } else if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
      r.prompt = (*it)[0].get<std::string>();
    } else {
      return Bad("prompt", "'prompt' must be a string or an array of token ids (one prompt per request)");
    }
  } else {
    auto it = j.find("messages");
    if (it == j.end() || !it->is_array() || it->empty()) {
      return Bad("messages", "'messages' must be a non-empty array");
    }
    for (const json& m : *it) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        return Bad("messages", "each message needs a string 'role'");
      }
      ChatMessage msg;
      msg.role = m["role"].get<std::string>();
      if (msg.role != "system" && msg.role != "user" && msg.role != "assistant" && msg.role != "developer") {
        return Bad("messages", "unknown message role '" + msg.role + "'");
      }
      if (msg.role == "developer") msg.role = "system";
      if (!m.contains("content")) return Bad("messages", "each message needs 'content'");
      if (auto e = GetContent(m["content"], &msg.content)) return *e;
      r.messages.push_back(std::move(msg));
    }
  }
  std::optional<double> v;
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    v.reset();
    if (auto e = GetNumber(j, key, 1, 9e18, true, &v)) return *e;
    if (v) {
      if (*v > std::numeric_limits<int32_t>::max()) {
        ApiError e = Bad(key, "'" + std::string(key) + "' is larger than any context");
        e.code = "context_length_exceeded";
        return e;
      }
      r.max_tokens = static_cast<int32_t>(*v);
    }
  }
  v.reset();
  if (auto e = GetNumber(j, "temperature", 0, 2, false, &v)) return *e;
  if (v) r.temperature = static_cast<float>(*v);
  v.reset();
  if (auto e = GetNumber(j, "top_p", 0, 1, false, &v)) return *e;
  if (v) r.top_p = static_cast<float>(*v);
  v.reset();
  if (auto e = GetNumber(j, "top_k", 0, 1e9, true, &v)) return *e;
  if (v) r.top_k = static_cast<int32_t>(*v);
  v.reset();
  if (auto e = GetNumber(j, "seed", -9.2e18, 1.8e19, true, &v)) return *e;
  if (v) r.seed = j["seed"].is_number_unsigned() ? j["seed"].get<uint64_t>()
                                                 : static_cast<uint64_t>(j["seed"].get<int64_t>());
  v.reset();
  if (auto e = GetNumber(j, "n", 1, 1, true, &v)) return Bad("n", "only n = 1 is supported");
  if (auto e = GetBool(j, "stream", &r.stream)) return *e;
  if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("stream_options", "'stream_options' must be an object");
    if (auto e = GetBool(*it, "include_usage", &r.include_usage)) return *e;
  }
  if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      r.stop.push_back(it->get<std::string>());
    } else if (it->is_array() && it->size() <= 4) {
      for (const json& s : *it) {
        if (!s.is_string()) return Bad("stop", "'stop' must be a string or an array of strings");
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      return Bad("stop", "'stop' must be a string or an array of up to 4 strings");
    }
    for (const auto& s : r.stop)
      if (s.empty()) return Bad("stop", "stop strings must not be empty");
  }
  return r;
}

namespace {

json Usage(const RequestStats& s) {
  return {{"prompt_tokens", s.prompt_tokens},
          {"completion_tokens", s.generated_tokens},
          {"total_tokens", s.prompt_tokens + s.generated_tokens},
          {"prompt_tokens_details", {{"cached_tokens", s.cached_tokens}}}};
}

json Head(Endpoint ep, const CompletionHeader& h, bool chunk) {
  const char* object = ep == Endpoint::kChat ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                             : "text_completion";
  return {{"id", h.id}, {"object", object}, {"created", h.created}, {"model", h.model}};
}

json Reason(const char* r) { return r ? json(r) : json(); }

}  // namespace

std::string CompletionJson(Endpoint ep, const CompletionHeader& h, const std::string& text,
                           const char* finish_reason, const RequestStats& stats) {
  json out = Head(ep, h, false);
  json choice = {{"index", 0}, {"finish_reason", Reason(finish_reason)}, {"logprobs", nullptr}};
  if (ep == Endpoint::kChat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  out["choices"] = json::array({choice});
  out["usage"] = Usage(stats);
  // Invalid UTF-8 (a model may emit partial characters) is replaced rather than failing.
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ChunkJson(Endpoint ep, const CompletionHeader& h, std::string_view text, bool role,
                      const char* finish_reason) {
  json out = Head(ep, h, true);
  json choice = {{"index", 0}, {"finish_reason", Reason(finish_reason)}, {"logprobs", nullptr}};
  if (ep == Endpoint::kChat) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (!text.empty() || role) delta["content"] = std::string(text);
    choice["delta"] = delta;
  } else {
    choice["text"] = std::string(text);
  }
  out["choices"] = json::array({choice});
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string UsageChunkJson(Endpoint ep, const CompletionHeader& h, const RequestStats& stats) {
  json out = Head(ep, h, true);
  out["choices"] = json::array();
  out["usage"] = Usage(stats);
  return out.dump();
}

std::string ModelJson(const std::string& model_id, int64_t created) {
  return json{{"id", model_id}, {"object", "model"}, {"created", created}, {"owned_by", "kvcache"}}.dump();
}

std::string ModelsJson(const std::string& model_id, int64_t created) {
  return json{{"object", "list"}, {"data", json::array({json::parse(ModelJson(model_id, created))})}}.dump();
}

}  // namespace kvc
