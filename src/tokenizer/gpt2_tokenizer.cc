#include "tokenizer/gpt2_tokenizer.h"

#include <algorithm>
#include <unordered_map>

#include "tokenizer/bpe_merge.h"
#include "tokenizer/unicode.h"

namespace kvc {
namespace {

constexpr size_t kMaxCachedWord = 64;  // longer words are rare; do not let them fill the cache

using bpe::Symbol;

struct CharAt {
  int len;
  CharClass cls;
};

CharAt At(std::string_view text, size_t pos) {
  int len;
  const uint32_t cp = DecodeUtf8(text, pos, &len);
  return {len, ClassifyCodepoint(cp)};
}

// Byte offset where the run of characters of class `cls` starting at `pos` ends.
size_t RunEnd(std::string_view text, size_t pos, CharClass cls) {
  while (pos < text.size()) {
    const CharAt c = At(text, pos);
    if (c.cls != cls) break;
    pos += c.len;
  }
  return pos;
}

// Calls fn(word) for each match of the GPT-2 pattern, left to right, in one pass over the bytes.
template <typename Fn>
void ForEachGpt2Word(std::string_view text, Fn&& fn) {
  const size_t n = text.size();
  auto byte_at = [&](size_t i) { return i < n ? text[i] : '\0'; };
  for (size_t pos = 0; pos < n;) {
    size_t end = pos;
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, as in GPT-2); ASCII, so bytes compare as chars.
    if (text[pos] == '\'') {
      const char a = byte_at(pos + 1), b = byte_at(pos + 2);
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        end = pos + 2;
      } else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
        end = pos + 3;
      }
    }
    if (end == pos) {
      // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one class.
      const size_t k = (text[pos] == ' ' && pos + 1 < n) ? pos + 1 : pos;
      const CharClass cls = At(text, k).cls;
      if (cls != CharClass::kWhitespace) {
        end = RunEnd(text, k, cls);
      } else {
        // `\s+(?!\S)`: whitespace not followed by a non-space, i.e. all of a run at the end, or
        // all but its last character (which then leads the next word); `\s+` takes the rest.
        size_t last = pos;  // start of the run's last character
        int count = 0;
        for (end = pos; end < n; ++count) {
          const CharAt c = At(text, end);
          if (c.cls != CharClass::kWhitespace) break;
          last = end;
          end += c.len;
        }
        if (end < n && count > 1) end = last;
      }
    }
    fn(text.substr(pos, end - pos));
    pos = end;
  }
}

}  // namespace

struct Gpt2Tokenizer::Scratch {
  // Words seen in this call -> their [start, end) in the output (text repeats most words).
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;
  std::string mapped;
  std::string key;
  std::vector<Symbol> symbols;
  std::vector<bpe::Candidate> heap;
};

std::vector<std::string_view> Gpt2PreTokenize(std::string_view text) {
  std::vector<std::string_view> words;
  ForEachGpt2Word(text, [&](std::string_view w) { words.push_back(w); });
  return words;
}

Result<std::unique_ptr<Gpt2Tokenizer>> Gpt2Tokenizer::Create(
    Vocab vocab, const std::vector<std::string_view>& merges, const std::string& label) {
  std::unique_ptr<Gpt2Tokenizer> tok(new Gpt2Tokenizer(std::move(vocab)));
  tok->merge_ranks_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    // Search from 1 so that a left part which is itself a space still splits correctly.
    const size_t sep = merges[i].size() > 1 ? merges[i].find(' ', 1) : std::string_view::npos;
    if (sep == std::string_view::npos || sep + 1 >= merges[i].size()) {
      return Corrupt(label + ": merge " + std::to_string(i) + " ('" + std::string(merges[i]) +
                     "') is not two pieces separated by a space");
    }
    tok->merge_ranks_.emplace(merges[i], static_cast<int32_t>(i));  // first rank wins
  }
  return tok;
}

std::vector<int32_t> Gpt2Tokenizer::Encode(std::string_view text, bool add_bos) const {
  std::vector<int32_t> out;
  if (add_bos && bos() >= 0) out.push_back(bos());
  Scratch scratch;
  for (const Vocab::Fragment& frag : vocab_.SplitUserDefined(text)) {
    if (frag.token >= 0) {
      out.push_back(frag.token);
      continue;
    }
    ForEachGpt2Word(frag.text, [&](std::string_view word) {
      auto it = scratch.seen.find(word);
      if (it != scratch.seen.end()) {
        const auto [start, end] = it->second;
        for (size_t i = start; i < end; ++i) {
          const int32_t id = out[i];  // copied first: push_back may reallocate
          out.push_back(id);
        }
        return;
      }
      const size_t start = out.size();
      EncodeWord(word, &scratch, &out);
      if (word.size() <= kMaxCachedWord) {
        scratch.seen.emplace(word, std::make_pair(start, out.size()));
      }
    });
  }
  return out;
}

void Gpt2Tokenizer::EncodeWord(std::string_view word, Scratch* scratch,
                               std::vector<int32_t>* out) const {
  // Map each byte to its printable character; each becomes one initial symbol.
  std::string& mapped = scratch->mapped;
  std::vector<Symbol>& symbols = scratch->symbols;
  mapped.clear();
  symbols.clear();
  for (size_t i = 0; i < word.size(); ++i) {
    const size_t start = mapped.size();
    AppendUtf8(Gpt2ByteToCodepoint(static_cast<uint8_t>(word[i])), &mapped);
    const auto index = static_cast<int64_t>(i);
    symbols.push_back({start, mapped.size() - start, index - 1, index + 1});
  }
  if (symbols.empty()) return;
  symbols.back().next = -1;

  // A pair merges when "left right" is a merge rule; the lower its rank, the earlier.
  std::string& key = scratch->key;
  bpe::Merge(symbols, scratch->heap, [&](const Symbol& l, const Symbol& r) -> std::optional<double> {
    key.assign(mapped, l.start, l.len);
    key += ' ';
    key.append(mapped, r.start, r.len);
    auto it = merge_ranks_.find(key);
    if (it == merge_ranks_.end()) return std::nullopt;
    return -static_cast<double>(it->second);
  });

  for (int64_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view piece =
        std::string_view(mapped).substr(symbols[i].start, symbols[i].len);
    int32_t id = vocab_.Find(piece);
    if (id >= 0) {
      out->push_back(id);
      continue;
    }
    // A merge result missing from the vocabulary: fall back to one token per byte character.
    for (size_t pos = 0; pos < piece.size();) {
      int len;
      DecodeUtf8(piece, pos, &len);
      id = vocab_.Find(piece.substr(pos, len));
      if (id < 0) id = vocab_.special().unk;
      if (id >= 0) out->push_back(id);
      pos += len;
    }
  }
}

std::string Gpt2Tokenizer::DecodeToken(int32_t prev, int32_t id) const {
  if (!vocab_.Valid(id)) return {};
  const std::string& piece = vocab_.piece(id);
  switch (vocab_.type(id)) {
    case TokenType::kControl:
    case TokenType::kUnused:
    case TokenType::kUnknown:
      return {};
    case TokenType::kUserDefined:
      return piece;  // added tokens are stored as plain text
    case TokenType::kNormal:
    case TokenType::kByte:
      break;
  }
  std::string bytes;
  bytes.reserve(piece.size());
  for (size_t pos = 0; pos < piece.size();) {
    int len;
    const uint32_t cp = DecodeUtf8(piece, pos, &len);
    const int b = cp == kInvalidCodepoint ? -1 : Gpt2CodepointToByte(cp);
    if (b >= 0) {
      bytes += static_cast<char>(b);
    } else {
      bytes.append(piece, pos, len);  // not a mapped character: keep it as written
    }
    pos += len;
  }
  return bytes;
}

std::string_view Gpt2Tokenizer::Piece(int32_t id) const {
  return vocab_.Valid(id) ? std::string_view(vocab_.piece(id)) : std::string_view();
}

}  // namespace kvc
