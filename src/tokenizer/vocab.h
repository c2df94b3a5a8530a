// The token table both tokenizer kinds share: pieces, scores, types, special ids and a hash index.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace kvc {

// Values of tokenizer.ggml.token_type (llama.cpp's llama_token_type).
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

// Heterogeneous hashing so lookups by string_view do not allocate.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using StringIndex = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct SpecialIds {
  int32_t bos = -1;  // -1: none
  int32_t eos = -1;
  int32_t unk = -1;
};

class Vocab {
 public:
  // Validates that scores (when not empty) and types match pieces in length, that types are known
  // and special ids are in range. `label` prefixes error messages (a file name).
  static Result<Vocab> Create(std::vector<std::string> pieces, std::vector<float> scores,
                              std::vector<TokenType> types, SpecialIds ids,
                              const std::string& label);

  int32_t size() const { return static_cast<int32_t>(pieces_.size()); }
  bool Valid(int32_t id) const { return id >= 0 && id < size(); }
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  float score(int32_t id) const { return scores_.empty() ? 0.0f : scores_[id]; }
  TokenType type(int32_t id) const { return types_[id]; }
  const SpecialIds& special() const { return special_; }

  // Id of the token whose piece is exactly `text`, or -1. With duplicate pieces, the highest id
  // (llama.cpp's choice).
  int32_t Find(std::string_view text) const {
    auto it = index_.find(text);
    return it == index_.end() ? -1 : it->second;
  }

  // A piece of the form "<0xXX>": its byte value, else -1.
  static int ParseBytePiece(std::string_view piece);

  // A run of input text, or one user-defined token matched verbatim.
  struct Fragment {
    std::string_view text;  // empty for tokens
    int32_t token = -1;     // >= 0 for a user-defined token
  };
  // Splits `text` on occurrences of user-defined tokens (longest first), as llama.cpp does even
  // when special tokens are not parsed. Empty text runs are dropped.
  std::vector<Fragment> SplitUserDefined(std::string_view text) const;

 private:
  std::vector<std::string> pieces_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  SpecialIds special_;
  StringIndex index_;
  std::vector<int32_t> user_defined_;  // by piece length, longest first
};

}  // namespace kvc
