// The cache interface the model sees: append K/V rows, read views. One KVCache holds one
// sequence; implementations decide layout (contiguous, growable, paged) and element type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "core/status.h"
#include "kvcache/kv_spec.h"
#include "tensor/kv_view.h"

namespace kvc {

class KVCache {
 public:
  virtual ~KVCache() = default;

  virtual const KVSpec& spec() const = 0;

  // Tokens committed so far.
  virtual int32_t size() const = 0;

  // Prepare: guarantees room for `n` more tokens, allocating if the layout needs to. Fails
  // (leaving the cache unchanged) when that would exceed the capacity or memory.
  virtual Status Reserve(int32_t n) = 0;

  // Stores rows for slots [pos, pos + n) of `layer`. k, v: [n, n_kv_heads * head_dim] f32.
  // Slots must have been reserved; pos <= size().
  virtual void Write(int32_t layer, int32_t pos, int32_t n, const float* k, const float* v) = 0;

  // Apply: the written slots up to `new_size` become part of the sequence (after all layers).
  virtual void Commit(int32_t new_size) = 0;

  // View of `layer` covering `n_tokens` slots (committed or written-but-uncommitted).
  virtual KVView View(int32_t layer, int32_t n_tokens) const = 0;

  // Drops every token from `n` on (n <= size()).
  virtual void Truncate(int32_t n) = 0;

  // Bytes of K/V storage this cache holds right now (allocated, not just used).
  virtual size_t BytesAllocated() const = 0;

  // Re-positions keys moved by RemoveRange: rows [n, kv_heads * head_dim] f32 moved by `delta`
  // positions (negative). Models with rotary embeddings rotate them; others do nothing.
  using Rekey = std::function<void(float* keys, int32_t n, int32_t delta)>;

  // Context shift: drops slots [keep, keep + count) and moves the later slots down by `count`,
  // re-positioning their keys with `rekey`. The sequence keeps its first `keep` tokens (sinks)
  // and its most recent ones. Quantized slots are decoded and re-encoded.
  virtual Status RemoveRange(int32_t keep, int32_t count, const Rekey& rekey) = 0;
};

}  // namespace kvc
