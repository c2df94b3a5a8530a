#include "kvcache/kv_format.h"

namespace kvc {

const char* KVTypeName(KVType t) {
  switch (t) {
    case KVType::kF32: return "f32";
    case KVType::kF16: return "f16";
    case KVType::kBF16: return "bf16";
    case KVType::kQ8: return "q8";
    case KVType::kQ4: return "q4";
    case KVType::kQ2: return "q2";
  }
  return "?";
}

bool KVTypeFromName(const std::string& name, KVType* out) {
  for (KVType t : {KVType::kF32, KVType::kF16, KVType::kBF16, KVType::kQ8, KVType::kQ4, KVType::kQ2}) {
    if (name == KVTypeName(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

}  // namespace kvc
