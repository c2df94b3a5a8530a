#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace kvc {

std::string Utf8Stream::Push(std::string_view bytes) {
  pending_.append(bytes);
  // Hold back a trailing lead byte whose sequence is not complete yet. Only the last 3 bytes can
  // start such a sequence; stray continuation or invalid bytes are passed through, since waiting
  // would never complete them.
  size_t keep_from = pending_.size();
  const size_t n = pending_.size();
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<uint8_t>(pending_[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back for its lead
    const int need = Utf8SeqLen(c);
    if (need > static_cast<int>(back)) keep_from = n - back;  // incomplete: wait for the rest
    break;
  }
  std::string out = pending_.substr(0, keep_from);
  pending_.erase(0, keep_from);
  return out;
}

std::string Utf8Stream::Flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace kvc
