// Pieces shared by the attention kernels (attention.cc dispatches between them).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/attention.h"

namespace kvc::attention_internal {

// e^r for |r| <= ln2/2 by its degree-6 Taylor polynomial; T is float or a vector of floats.
template <class T>
inline T ExpReduced(T r) {
  T p = r * 0.0f + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  return p * r + 1.0f;
}

// e^x for x <= 0 (scores minus their running maximum), vectorizable: x = n ln2 + r with |r| <=
// ln2/2, e^r by ExpReduced, 2^n through the exponent bits. Relative error ~2e-7.
inline float ExpNonPositive(float x) {
  x = std::max(x, -87.0f);
  const float n = std::nearbyint(x * 1.44269504088896341f);
  const float r = x - n * 0.693145751953125f - n * 1.428606765330187045e-06f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return ExpReduced(r) * scale;
}

// First visible slot of a query at `pos` (window and dropped slots).
inline int32_t FirstVisible(const AttentionShape& s, const KVView& kv, int32_t pos) {
  const int32_t lo = s.window > 0 ? std::max(0, pos - s.window + 1) : 0;
  return std::max(lo, kv.first_token);
}

// The tiled kernel handles per-token rows whose head_dim is a multiple of 16 (and quantized
// groups of a multiple of 16): everything but KIVI keys and odd head sizes.
bool TiledSupported(const KVView& kv);

// One query position, one KV head and its query heads (n_heads / n_kv_heads of them).
void AttendTiled(const AttentionShape& s, const float* q, int32_t pos, int32_t kv_head,
                 const KVView& kv, float* out);
// The tiled kernel's core: the query heads of KV heads [h0, h1) (q, m, l, acc start at h0's first
// query head; acc holds head_dim floats per query head) over slots [t0, t1), updating the online
// softmax state in place. Tile by tile, every head of a tile before the next.
void AttendSlots(const AttentionShape& s, const float* q, int32_t h0, int32_t h1, int32_t t0,
                 int32_t t1, const KVView& kv, float* m, float* l, float* acc);
void AttendGeneric(const AttentionShape& s, const float* q, int32_t pos, int32_t kv_head,
                   const KVView& kv, float* out);

}  // namespace kvc::attention_internal
