// SentencePiece-style BPE with byte fallback: GGUF "llama" vocabularies and llama2.c tokenizer
// files (which spell the space as " " rather than "▁").
#pragma once

#include <array>
#include <string>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace kvc {

struct SpmOptions {
  // How pieces spell a space: "▁" (U+2581, SentencePiece/GGUF) or " " (llama2.c).
  std::string space = "\xE2\x96\x81";
  // Prepend a space to the text (SentencePiece's add_dummy_prefix); decoding then strips the
  // leading space of the first piece.
  bool add_space_prefix = true;
  // >= 0: byte b falls back to token b + offset (llama2.c's run.c); otherwise the "<0xXX>" piece.
  int32_t byte_token_offset = -1;
};

class SpmTokenizer final : public Tokenizer {
 public:
  SpmTokenizer(Vocab vocab, SpmOptions options);

  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const override;
  std::string DecodeToken(int32_t prev, int32_t id) const override;
  std::string_view Piece(int32_t id) const override;
  int32_t vocab_size() const override { return vocab_.size(); }
  int32_t bos() const override { return vocab_.special().bos; }
  int32_t eos() const override { return vocab_.special().eos; }

 private:
  struct Scratch;
  // Tokenizes one run of text that is already normalized (spaces replaced, prefix added).
  void EncodeNormalized(std::string_view text, std::vector<int32_t>* out) const;
  // BPE over one segment; merges never cross segment boundaries.
  void EncodeSegment(std::string_view text, Scratch* scratch, std::vector<int32_t>* out) const;

  Vocab vocab_;
  SpmOptions options_;
  std::array<int32_t, 256> byte_tokens_;  // -1 where the vocab has no token for the byte
  // True when no piece has a space right after a non-space character: then no merge can join a
  // word to the space that starts the next one, and each word is merged on its own (same result,
  // far better locality than one queue over the whole text).
  bool split_at_spaces_ = false;
};

}  // namespace kvc
