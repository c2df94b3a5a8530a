// Element types of weights and activations, numbered as in GGUF / ggml so files map 1:1.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kvc {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ8_0 = 8,
  kBF16 = 30,
  // Run-time layouts, never read from or written to files (ids outside ggml's range).
  // Q8_0 / Q4_0 bytes reordered for the VNNI matvec (quant/block_r16.h).
  kQ4_0_R16 = 0x10002,
  kQ8_0_R16 = 0x10008,
};

struct DTypeTraits {
  std::string_view name;
  int block_elems;    // elements per block (1 for plain floats)
  int block_bytes;    // bytes per block
};

// Traits of a supported type.
inline DTypeTraits TraitsOf(DType t) {
  switch (t) {
    case DType::kF32: return {"F32", 1, 4};
    case DType::kF16: return {"F16", 1, 2};
    case DType::kBF16: return {"BF16", 1, 2};
    case DType::kQ8_0: return {"Q8_0", 32, 34};
    case DType::kQ4_0: return {"Q4_0", 32, 18};
    case DType::kQ8_0_R16: return {"Q8_0_R16", 32, 34};
    case DType::kQ4_0_R16: return {"Q4_0_R16", 32, 18};
  }
  return {"?", 1, 0};
}

inline std::string_view DTypeName(DType t) { return TraitsOf(t).name; }

// Maps a raw ggml type id to a supported DType; nullopt for ids kvcache cannot compute with.
inline std::optional<DType> DTypeFromGgml(uint32_t id) {
  switch (id) {
    case 0: return DType::kF32;
    case 1: return DType::kF16;
    case 2: return DType::kQ4_0;
    case 8: return DType::kQ8_0;
    case 30: return DType::kBF16;
    default: return std::nullopt;
  }
}

// Name of any ggml type id, for error messages about types we do not support.
std::string_view GgmlTypeName(uint32_t id);

// Parses "F32", "f16", "q8_0", ... (case-insensitive).
std::optional<DType> DTypeFromName(std::string_view name);

// Whether weights of `t` are quantized in blocks (the matmul kernels quantize X to match).
inline bool IsBlockQuantized(DType t) {
  return t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kQ8_0_R16 || t == DType::kQ4_0_R16;
}

// Whether `t` is one of the repacked run-time layouts, and the file type whose blocks it holds.
inline bool IsR16(DType t) { return t == DType::kQ8_0_R16 || t == DType::kQ4_0_R16; }
inline DType PlainLayout(DType t) {
  return t == DType::kQ8_0_R16 ? DType::kQ8_0 : t == DType::kQ4_0_R16 ? DType::kQ4_0 : t;
}

// Bytes of one row of `n` elements; n must be a multiple of the block size.
inline size_t RowBytes(DType t, int64_t n) {
  const DTypeTraits tr = TraitsOf(t);
  return static_cast<size_t>(n / tr.block_elems) * tr.block_bytes;
}

}  // namespace kvc
