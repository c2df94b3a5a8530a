#include "server/chat_template.h"

namespace kvc {

ChatFormat DetectChatFormat(std::string_view t) {
  auto has = [&](std::string_view s) { return t.find(s) != std::string_view::npos; };
  if (has("<|im_start|>")) return ChatFormat::kChatML;
  if (has("<|start_header_id|>")) return ChatFormat::kLlama3;
  if (has("[INST]")) return ChatFormat::kLlama2;
  if (has("<|user|>")) return ChatFormat::kZephyr;
  return ChatFormat::kPlain;
}

const char* ChatFormatName(ChatFormat f) {
  switch (f) {
    case ChatFormat::kPlain: return "plain";
    case ChatFormat::kChatML: return "chatml";
    case ChatFormat::kLlama3: return "llama3";
    case ChatFormat::kLlama2: return "llama2";
    case ChatFormat::kZephyr: return "zephyr";
  }
  return "plain";
}

std::string RenderChat(ChatFormat format, const std::vector<ChatMessage>& messages) {
  std::string out;
  switch (format) {
    case ChatFormat::kChatML:
      for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      return out + "<|im_start|>assistant\n";
    case ChatFormat::kLlama3:
      for (const auto& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
      }
      return out + "<|start_header_id|>assistant<|end_header_id|>\n\n";
    case ChatFormat::kZephyr:
      for (const auto& m : messages) out += "<|" + m.role + "|>\n" + m.content + "</s>\n";
      return out + "<|assistant|>\n";
    case ChatFormat::kLlama2: {
      std::string system;
      bool open = false;
      for (const auto& m : messages) {
        if (m.role == "system") {
          system += m.content;
        } else if (m.role == "user") {
          out += "[INST] ";
          if (!system.empty()) out += "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
          system.clear();
          out += m.content + " [/INST]";
          open = true;
        } else {
          out += " " + m.content + " </s><s>";
          open = false;
        }
      }
      (void)open;
      return out;
    }
    case ChatFormat::kPlain:
      break;
  }
  for (const auto& m : messages) out += m.role + ": " + m.content + "\n";
  return out + "assistant:";
}

}  // namespace kvc
