// Generated tokens to response text on the HTTP thread: whole UTF-8 characters only, and stop
// strings cut the text where they begin. Text that could be the start of a stop string is held
// back until it is known not to be, so a streamed reply never shows part of a stop string.
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace kvc {

class TextStream {
 public:
  // `tok` must outlive the stream. `prev` is the token before the first generated one.
  TextStream(const Tokenizer& tok, std::vector<std::string> stop, int32_t prev);

  // Appends a generated token; returns the text now safe to emit.
  std::string Push(int32_t token);
  // True once a stop string appeared (later tokens are ignored).
  bool stopped() const { return stopped_; }
  // The rest of the text at the end of generation.
  std::string Finish();

 private:
  const Tokenizer& tok_;
  std::vector<std::string> stop_;
  size_t hold_ = 0;  // longest stop string - 1
  int32_t prev_;
  Utf8Stream utf8_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace kvc
