// The merge loop both BPE tokenizers share. A segment of text starts as a doubly linked list of
// symbols (characters or bytes); candidate merges of adjacent symbols wait in a heap ordered by
// the tokenizer's priority (SentencePiece: the merged token's score; GPT-2: the merge's rank,
// negated), ties going to the leftmost pair; the best is applied until none is left. O(n log n).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace kvc::bpe {

// One span of the segment's text; merged-away symbols get len 0.
struct Symbol {
  size_t start;
  size_t len;
  int64_t prev;
  int64_t next;
};

struct Candidate {
  double priority;  // higher merges first
  int64_t left;
  int64_t right;
  size_t size;  // bytes of the merged text, to detect entries made stale by other merges
};

// Heap order: highest priority on top, then the leftmost pair.
inline bool CandidateBelow(const Candidate& a, const Candidate& b) {
  return a.priority < b.priority || (a.priority == b.priority && a.left > b.left);
}

// Merges `symbols` in place. priority(left, right) -> std::optional<double>: the priority of
// merging two adjacent symbols, or nothing when they do not merge. `heap` is scratch.
template <class PriorityFn>
void Merge(std::vector<Symbol>& symbols, std::vector<Candidate>& heap, PriorityFn priority) {
  heap.clear();
  auto try_add = [&](int64_t left, int64_t right) {
    if (left < 0 || right < 0) return;
    const std::optional<double> p = priority(symbols[left], symbols[right]);
    if (!p) return;
    heap.push_back({*p, left, right, symbols[left].len + symbols[right].len});
    std::push_heap(heap.begin(), heap.end(), CandidateBelow);
  };
  for (size_t i = 1; i < symbols.size(); ++i) try_add(static_cast<int64_t>(i) - 1, static_cast<int64_t>(i));
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), CandidateBelow);
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.left];
    Symbol& right = symbols[c.right];
    if (left.len == 0 || right.len == 0 || left.len + right.len != c.size) continue;  // stale
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.left;
    try_add(left.prev, c.left);
    try_add(c.left, left.next);
  }
}

}  // namespace kvc::bpe
