// Text <-> token ids. Implementations: SentencePiece-style BPE with byte fallback (GGUF
// tokenizer.ggml.model = "llama", and llama2.c tokenizer files) and GPT-2 byte-level BPE ("gpt2").
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kvc {

class GgufFile;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Token ids for `text`; BOS is prepended only when add_bos (and the vocab has one).
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_bos) const = 0;

  // Raw bytes that token `id` contributes to the output text when it follows `prev` (the previous
  // token, or -1 at the start). May be part of a multi-byte UTF-8 character; see Utf8Stream.
  // Control tokens (BOS/EOS) decode to nothing.
  virtual std::string DecodeToken(int32_t prev, int32_t id) const = 0;

  // The vocabulary entry as stored (e.g. "▁Once", "<0x0A>", "Ġthe"), for --pieces output.
  virtual std::string_view Piece(int32_t id) const = 0;

  virtual int32_t vocab_size() const = 0;
  virtual int32_t bos() const = 0;  // -1 if none
  virtual int32_t eos() const = 0;  // -1 if none

  // Whole-sequence decode: concatenation of DecodeToken over ids.
  std::string Decode(const std::vector<int32_t>& ids) const;
};

// Builds the tokenizer a GGUF file describes (tokenizer.ggml.*). Errors name the missing key or
// the unsupported model type.
Result<std::unique_ptr<Tokenizer>> LoadGgufTokenizer(const GgufFile& gguf);

// Reads a llama2.c tokenizer file (`tok512.bin`, `tokenizer.bin`): int32 max_token_length, then
// per token: f32 score, int32 length, bytes. `vocab_size` comes from the checkpoint header.
Result<std::unique_ptr<Tokenizer>> LoadLlama2cTokenizer(const std::string& path,
                                                        int32_t vocab_size);

// Buffers bytes so that only whole UTF-8 characters are emitted while streaming tokens.
class Utf8Stream {
 public:
  // Appends bytes; returns the longest prefix of complete characters not yet returned.
  std::string Push(std::string_view bytes);
  // Returns whatever is left (an incomplete sequence at the end of generation), as is.
  std::string Flush();

 private:
  std::string pending_;
};

}  // namespace kvc
