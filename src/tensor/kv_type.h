// Element formats of cached keys and values (byte layouts in kvcache/kv_format.h).
#pragma once

namespace kvc {

enum class KVType { kF32, kF16, kBF16, kQ8, kQ4, kQ2 };

enum class KVGrouping {
  kPerToken,  // groups along head_dim
  kKivi,      // keys per channel (groups along tokens), values per token
};

inline bool IsQuantized(KVType t) { return t == KVType::kQ8 || t == KVType::kQ4 || t == KVType::kQ2; }

}  // namespace kvc
