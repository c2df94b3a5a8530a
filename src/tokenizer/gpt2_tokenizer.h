// GPT-2 byte-level BPE (GGUF tokenizer.ggml.model = "gpt2"): the GPT-2 pre-tokenizer regex, bytes
// mapped to printable characters, then merges applied by rank.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace kvc {

// Splits `text` the way the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does, returning the pieces as views into `text`. Invalid UTF-8 bytes count as [^\s\p{L}\p{N}].
std::vector<std::string_view> Gpt2PreTokenize(std::string_view text);

class Gpt2Tokenizer final : public Tokenizer {
 public:
  // `merges` are "left right" strings, rank = index. Fails on a merge without a separator.
  static Result<std::unique_ptr<Gpt2Tokenizer>> Create(Vocab vocab,
                                                       const std::vector<std::string_view>& merges,
                                                       const std::string& label);

  std::vector<int32_t> Encode(std::string_view text, bool add_bos) const override;
  std::string DecodeToken(int32_t prev, int32_t id) const override;
  std::string_view Piece(int32_t id) const override;
  int32_t vocab_size() const override { return vocab_.size(); }
  int32_t bos() const override { return vocab_.special().bos; }
  int32_t eos() const override { return vocab_.special().eos; }

 private:
  explicit Gpt2Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
  struct Scratch;
  // BPE over one pre-tokenized word (raw bytes); `scratch` holds buffers reused across words.
  void EncodeWord(std::string_view word, Scratch* scratch, std::vector<int32_t>* out) const;

  Vocab vocab_;
  StringIndex merge_ranks_;  // "left right" -> rank
};

}  // namespace kvc
