// Chat messages to prompt text. GGUF files carry a Jinja template (tokenizer.chat_template); we
// do not run Jinja, we recognize the common families by their markers and render them natively.
// Anything else (or no template) gets the documented plain fallback (docs/SERVING.md):
//   "<role>: <content>\n" per message, then "assistant:".
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace kvc {

struct ChatMessage {
  std::string role;     // "system" | "user" | "assistant"
  std::string content;
};

enum class ChatFormat {
  kPlain,   // fallback
  kChatML,  // <|im_start|>role\n...<|im_end|>  (Qwen, many fine-tunes)
  kLlama3,  // <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
  kLlama2,  // [INST] ... [/INST] with <<SYS>> (Llama 2, Mistral)
  kZephyr,  // <|user|>\n...</s>  (TinyLlama chat, Zephyr)
};

// The format a Jinja template describes; kPlain when empty or unrecognized.
ChatFormat DetectChatFormat(std::string_view jinja);
const char* ChatFormatName(ChatFormat f);

// Prompt text for `messages`, ending where the assistant's reply begins. BOS is left to the
// tokenizer (Encode with add_bos).
std::string RenderChat(ChatFormat format, const std::vector<ChatMessage>& messages);

}  // namespace kvc
