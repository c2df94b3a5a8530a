#include "tokenizer/vocab.h"

#include <algorithm>

namespace kvc {

Result<Vocab> Vocab::Create(std::vector<std::string> pieces, std::vector<float> scores,
                            std::vector<TokenType> types, SpecialIds ids,
                            const std::string& label) {
  const size_t n = pieces.size();
  if (n == 0) return Corrupt(label + ": the vocabulary is empty");
  if (n > static_cast<size_t>(INT32_MAX)) return Corrupt(label + ": vocabulary too large");
  if (!scores.empty() && scores.size() != n) {
    return Corrupt(label + ": " + std::to_string(scores.size()) + " scores for " +
                   std::to_string(n) + " tokens");
  }
  if (types.size() != n) {
    return Corrupt(label + ": " + std::to_string(types.size()) + " token types for " +
                   std::to_string(n) + " tokens");
  }
  for (size_t i = 0; i < n; ++i) {
    const auto t = static_cast<int32_t>(types[i]);
    if (t < 1 || t > 6) {
      return Corrupt(label + ": token " + std::to_string(i) + " has unknown type " +
                     std::to_string(t));
    }
  }
  const std::pair<const char*, int32_t> specials[] = {
      {"BOS", ids.bos}, {"EOS", ids.eos}, {"unknown", ids.unk}};
  for (const auto& [what, id] : specials) {
    if (id < -1 || id >= static_cast<int32_t>(n)) {
      return Corrupt(label + ": " + what + " token id " + std::to_string(id) +
                     " is outside the vocabulary of " + std::to_string(n));
    }
  }

  Vocab v;
  v.index_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    v.index_.insert_or_assign(pieces[i], static_cast<int32_t>(i));  // last wins, as llama.cpp
    if (types[i] == TokenType::kUserDefined && !pieces[i].empty()) {
      v.user_defined_.push_back(static_cast<int32_t>(i));
    }
  }
  std::stable_sort(v.user_defined_.begin(), v.user_defined_.end(),
                   [&](int32_t a, int32_t b) { return pieces[a].size() > pieces[b].size(); });
  v.pieces_ = std::move(pieces);
  v.scores_ = std::move(scores);
  v.types_ = std::move(types);
  v.special_ = ids;
  return v;
}

int Vocab::ParseBytePiece(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else
      return -1;
    value = value * 16 + d;
  }
  return value;
}

std::vector<Vocab::Fragment> Vocab::SplitUserDefined(std::string_view text) const {
  std::vector<Fragment> frags;
  if (!text.empty()) frags.push_back({text, -1});
  // One pass per token, longest first, so a long token wins over a shorter one it contains.
  for (int32_t id : user_defined_) {
    const std::string& p = pieces_[id];
    std::vector<Fragment> next;
    next.reserve(frags.size());
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t start = 0;
      for (size_t hit; (hit = f.text.find(p, start)) != std::string_view::npos;
           start = hit + p.size()) {
        if (hit > start) next.push_back({f.text.substr(start, hit - start), -1});
        next.push_back({{}, id});
      }
      if (start < f.text.size()) next.push_back({f.text.substr(start), -1});
    }
    frags = std::move(next);
  }
  return frags;
}

}  // namespace kvc
