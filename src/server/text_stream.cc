#include "server/text_stream.h"

#include <algorithm>

namespace kvc {

TextStream::TextStream(const Tokenizer& tok, std::vector<std::string> stop, int32_t prev)
    : tok_(tok), stop_(std::move(stop)), prev_(prev) {
  for (const auto& s : stop_) hold_ = std::max(hold_, s.size() - 1);
}

std::string TextStream::Push(int32_t token) {
  if (stopped_) return "";
  pending_ += utf8_.Push(tok_.DecodeToken(prev_, token));
  prev_ = token;
  size_t cut = std::string::npos;
  for (const auto& s : stop_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    return out;
  }
  if (pending_.size() <= hold_) return "";
  size_t emit = pending_.size() - hold_;
  // Never split a UTF-8 character: back up to a lead byte.
  while (emit > 0 && emit < pending_.size() && (static_cast<unsigned char>(pending_[emit]) & 0xC0) == 0x80) --emit;
  std::string out = pending_.substr(0, emit);
  pending_.erase(0, emit);
  return out;
}

std::string TextStream::Finish() {
  if (stopped_) return "";
  std::string out = pending_ + utf8_.Flush();
  pending_.clear();
  return out;
}

}  // namespace kvc
