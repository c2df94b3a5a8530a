// Element formats of cached keys and values (byte layouts in kvcache/kv_format.h).
#pragma once

namespace kvc {

enum class KVType { kF32, kF16, kBF16, kQ8, kQ4, kQ2 };

enum class KVGrouping {
  kPerToken,  // groups along head_dim
  kKivi,      // keys per channel (groups along tokens), values per token
};

// Bits of one stored element (codes only; quantized groups add a scale and zero-point).
inline int KVTypeBits(KVType t) {
  switch (t) {
    case KVType::kF32: return 32;
    case KVType::kF16: case KVType::kBF16: return 16;
    case KVType::kQ8: return 8;
    case KVType::kQ4: return 4;
    case KVType::kQ2: return 2;
  }
  return 0;
}

inline bool IsQuantized(KVType t) { return t == KVType::kQ8 || t == KVType::kQ4 || t == KVType::kQ2; }

}  // namespace kvc
