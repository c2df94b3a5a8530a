#include "tensor/dtype.h"

#include <cctype>
#include <string>

namespace kvc {

std::string_view GgmlTypeName(uint32_t id) {
  static constexpr std::string_view kNames[] = {
      "F32",  "F16",  "Q4_0", "Q4_1", "Q4_2(removed)", "Q4_3(removed)", "Q5_0", "Q5_1",
      "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K",          "Q5_K",          "Q6_K", "Q8_K",
      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
      "I8",   "I16",  "I32",  "I64",  "F64",  "IQ1_M",  "BF16"};
  if (id < sizeof(kNames) / sizeof(kNames[0])) return kNames[id];
  return "unknown";
}

std::optional<DType> DTypeFromName(std::string_view name) {
  std::string up;
  for (char c : name) up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    if (DTypeName(t) == up) return t;
  }
  return std::nullopt;
}

}  // namespace kvc
