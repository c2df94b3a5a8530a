#include "tokenizer/spm_tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include "tokenizer/bpe_merge.h"
#include "tokenizer/unicode.h"

namespace kvc {
namespace {

using bpe::Symbol;

constexpr size_t kMaxCachedSegment = 64;  // longer segments are rare; keep them out of the cache

// What an unknown token decodes to, as in llama.cpp: "▅".
constexpr std::string_view kUnknownText = "\xE2\x96\x85";

}  // namespace

struct SpmTokenizer::Scratch {
  // Segments seen in this call -> their [start, end) in the output (text repeats most words).
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;
  std::vector<Symbol> symbols;
  std::vector<bpe::Candidate> heap;
};

SpmTokenizer::SpmTokenizer(Vocab vocab, SpmOptions options)
    : vocab_(std::move(vocab)), options_(std::move(options)) {
  byte_tokens_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    if (options_.byte_token_offset >= 0) {
      const int64_t id = static_cast<int64_t>(b) + options_.byte_token_offset;
      if (id < vocab_.size()) byte_tokens_[b] = static_cast<int32_t>(id);
      continue;
    }
    static constexpr char kHex[] = "0123456789ABCDEF";
    const char piece[] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    byte_tokens_[b] = vocab_.Find(std::string_view(piece, sizeof(piece)));
  }
  const std::string& space = options_.space;
  split_at_spaces_ = !space.empty();
  for (int32_t id = 0; id < vocab_.size() && split_at_spaces_; ++id) {
    const std::string& p = vocab_.piece(id);
    for (size_t at = p.find(space, 1); at != std::string::npos; at = p.find(space, at + 1)) {
      if (at < space.size() || p.compare(at - space.size(), space.size(), space) != 0) {
        split_at_spaces_ = false;
        break;
      }
    }
  }
}

std::vector<int32_t> SpmTokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && bos() >= 0) out.push_back(bos());
  // Like llama.cpp: a run of text right after a user-defined token (or at the start) gets the
  // space prefix.
  bool after_special = true;
  std::string normalized;
  for (const Vocab::Fragment& frag : vocab_.SplitUserDefined(text)) {
    if (frag.token >= 0) {
      out.push_back(frag.token);
      after_special = true;
      continue;
    }
    normalized.clear();
    if (options_.add_space_prefix && after_special) normalized = options_.space;
    for (char c : frag.text) {
      if (c == ' ') {
        normalized += options_.space;
      } else {
        normalized += c;
      }
    }
    EncodeNormalized(normalized, &out);
    after_special = false;
  }
  return out;
}

void SpmTokenizer::EncodeNormalized(std::string_view text, std::vector<int32_t>* out) const {
  Scratch scratch;
  if (!split_at_spaces_) return EncodeSegment(text, &scratch, out);
  // Segments start at each space that follows a non-space character. Characters are stepped
  // through as EncodeSegment splits them, so boundaries match even on malformed UTF-8.
  const std::string& space = options_.space;
  size_t start = 0;
  bool prev_is_space = true;
  for (size_t pos = 0; pos < text.size();) {
    const bool is_space =
        text.compare(pos, space.size(), space) == 0 &&
        Utf8SeqLen(static_cast<uint8_t>(text[pos])) == static_cast<int>(space.size());
    if (is_space && !prev_is_space) {
      EncodeSegment(text.substr(start, pos - start), &scratch, out);
      start = pos;
    }
    prev_is_space = is_space;
    pos += std::min<size_t>(Utf8SeqLen(static_cast<uint8_t>(text[pos])), text.size() - pos);
  }
  EncodeSegment(text.substr(start), &scratch, out);
}

void SpmTokenizer::EncodeSegment(std::string_view text, Scratch* scratch,
                                 std::vector<int32_t>* out) const {
  auto it = scratch->seen.find(text);
  if (it != scratch->seen.end()) {
    for (size_t i = it->second.first; i < it->second.second; ++i) {
      const int32_t id = (*out)[i];  // copied first: push_back may reallocate
      out->push_back(id);
    }
    return;
  }
  const size_t first_out = out->size();
  // One symbol per UTF-8 character (a truncated final sequence stays one symbol).
  std::vector<Symbol>& symbols = scratch->symbols;
  symbols.clear();
  for (size_t pos = 0; pos < text.size();) {
    const size_t len =
        std::min<size_t>(Utf8SeqLen(static_cast<uint8_t>(text[pos])), text.size() - pos);
    const auto index = static_cast<int64_t>(symbols.size());
    symbols.push_back({pos, len, index - 1, index + 1});
    pos += len;
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // A pair merges when the merged text is a token; the higher its score, the earlier.
  bpe::Merge(symbols, scratch->heap, [&](const Symbol& l, const Symbol& r) -> std::optional<double> {
    const int32_t id = vocab_.Find(text.substr(l.start, l.len + r.len));
    if (id < 0) return std::nullopt;
    return vocab_.score(id);
  });

  for (int64_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece = text.substr(symbols[i].start, symbols[i].len);
    const int32_t id = vocab_.Find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    // Not in the vocabulary: one token per byte, or the unknown token if bytes are not covered.
    for (char c : piece) {
      const int32_t byte_id = byte_tokens_[static_cast<uint8_t>(c)];
      if (byte_id >= 0) {
        out->push_back(byte_id);
      } else if (vocab_.special().unk >= 0) {
        out->push_back(vocab_.special().unk);
      }
    }
  }
  if (text.size() <= kMaxCachedSegment) {
    scratch->seen.emplace(text, std::make_pair(first_out, out->size()));
  }
}

std::string SpmTokenizer::DecodeToken(int32_t prev, int32_t id) const {
  if (!vocab_.Valid(id)) return {};
  const std::string& piece = vocab_.piece(id);
  switch (vocab_.type(id)) {
    case TokenType::kControl:
    case TokenType::kUnused:
      return {};
    case TokenType::kUnknown:
      return std::string(kUnknownText);
    case TokenType::kUserDefined:
      return piece;
    case TokenType::kByte: {
      const int b = Vocab::ParseBytePiece(piece);
      return b >= 0 ? std::string(1, static_cast<char>(b)) : piece;
    }
    case TokenType::kNormal:
      break;
  }
  std::string text;
  text.reserve(piece.size());
  const std::string& space = options_.space;
  for (size_t pos = 0; pos < piece.size();) {
    if (!space.empty() && piece.compare(pos, space.size(), space) == 0) {
      text += ' ';
      pos += space.size();
    } else {
      text += piece[pos++];
    }
  }
  // The space the encoder prepended is not part of the text.
  const bool first = prev < 0 || prev == bos();
  if (first && options_.add_space_prefix && !text.empty() && text[0] == ' ') text.erase(0, 1);
  return text;
}

std::string_view SpmTokenizer::Piece(int32_t id) const {
  return vocab_.Valid(id) ? std::string_view(vocab_.piece(id)) : std::string_view();
}

}  // namespace kvc
