// The storage formats of cached keys and values, and their exact byte cost. The single source of
// truth for memory planning and for the cache implementations.
//
// Quantized formats group elements and store per group (little-endian, packed):
//   q8 (int8 absmax, symmetric):  G int8 codes, f16 scale  (x = scale * q; scale = absmax / 127)
//   q4 / q2 (affine, asymmetric): G*bits/8 bytes of codes, f16 scale S, u8 zero-point Z
//     S = (max - min) / (2^bits - 1),  Z = round(-min / S),  q = clamp(round(x / S) + Z, 0, 2^bits - 1),
//     x = S * (q - Z).  (The source documents write X_Q = round(X/S) - Z with Z = round(-min/S);
//     that sign is a typo: it puts the minimum at -2 min/S, outside the code range.)
// Groupings: per-token groups of G consecutive head_dim elements of one token and head, or
// KIVI (keys per channel: one group = G consecutive tokens of one channel; values per token).
// Either way every group of G elements costs the same bytes, so bytes per token are equal.
// G = min(--kv-group, head_dim) for per-token groups, so any head dim works (head_dim 8 too).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/kv_type.h"

namespace kvc {

const char* KVTypeName(KVType t);
bool KVTypeFromName(const std::string& name, KVType* out);

// Bytes of scale + zero-point per quantized group.
inline size_t KVGroupParamBytes(KVType t) {
  return t == KVType::kQ8 ? 2 : (t == KVType::kQ4 || t == KVType::kQ2) ? 3 : 0;
}

// Bytes to store `elems` elements (a multiple of the group size for quantized types).
inline size_t KVBytes(KVType t, int64_t elems, int32_t group) {
  if (!IsQuantized(t)) return static_cast<size_t>(elems) * KVTypeBits(t) / 8;
  const int64_t groups = elems / group;
  return static_cast<size_t>(groups) * (static_cast<size_t>(group) * KVTypeBits(t) / 8 + KVGroupParamBytes(t));
}

}  // namespace kvc
