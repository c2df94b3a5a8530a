// Codecs of quantized KV cache storage (formats and byte layouts: kvcache/kv_format.h).
// Scalar reference implementations; attention decodes through these.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/kv_type.h"

namespace kvc {

// Bytes of one encoded group of g elements (codes + scale [+ zero-point]).
size_t KVGroupBytes(KVType t, int32_t g);

// Per-token groups. Encodes n floats (n % g == 0) as n/g consecutive groups.
// Group layout: codes (q8: g int8; q4: g/2 bytes, element 2i in the low nibble of byte i;
// q2: g/4 bytes, element 4i+j in bits 2j..2j+1 of byte i), then f16 scale, then (q4/q2) u8 zero.
// Float types (f32/f16/bf16) are plain arrays (g ignored).
void QuantizeKVRow(KVType t, const float* x, int32_t n, int32_t g, uint8_t* out);
void DequantizeKVRow(KVType t, const uint8_t* in, int32_t n, int32_t g, float* out);

// KIVI per-channel groups: `rows` holds g tokens x n channels (token-major, row stride n).
// Output: n channel groups in channel order, each the g codes of that channel over the g tokens
// (same packing as above) followed by its scale [+ zero]: n * KVGroupBytes(t, g) bytes.
void QuantizeKVChannelGroup(KVType t, const float* rows, int32_t n, int32_t g, uint8_t* out);
// Decodes token j (0 <= j < g) of such a block: n floats.
void DequantizeKVChannelGroupRow(KVType t, const uint8_t* in, int32_t n, int32_t g, int32_t j,
                                 float* out);

}  // namespace kvc
