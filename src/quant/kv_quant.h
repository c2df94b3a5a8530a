// Codecs of quantized KV cache storage (formats and byte layouts: kvcache/kv_format.h).
// Scalar reference implementations (the *Ref functions) define the results; the plain entry
// points dispatch to AVX-512 kernels when built for them (encode/decode are bit-identical to the
// reference; the fused dot/axpy differ only by float summation order).
//
// Parameter choice of the affine q4/q2 groups (qmax = 2^bits - 1; decode is always
// x = S * (q - Z) with S the stored f16 and Z the stored u8):
//   * groups spanning zero (min <= 0 <= max), the usual case: S = (max - min) / qmax,
//     Z = round(-min / S), so min encodes as code 0 and max as code qmax;
//   * all-positive groups would need Z < 0, which a u8 cannot hold: the scale is stored
//     negative (S = -(max - min) / qmax, Z = round(-max / S)), so max encodes as 0 and min as qmax;
//   * when the offset is too large for Z <= 255 (|extreme| > 255 |S|), |S| grows to |extreme| / 255;
//   * constant groups (max == min == c): S = f16(c), Z = 0 and every code 1, so the group decodes to
//     c exactly whenever c is an f16 value (else to the nearest f16); beyond the f16 range they use
//     the rule above. All-NaN groups store S = 0 (decode 0).
//   |S| is rounded up to the next f16, so every decoded value lies within |S|/2 of its input, as
//   long as |S| fits f16: it saturates at 65504, so groups whose range exceeds 65504 * qmax (or
//   whose offset exceeds 65504 * 255) clip. NaN encodes as the code nearest 0 (Z clamped to qmax).
// q8 follows the formula exactly: scale = f16(absmax / 127) (round to nearest), q = round(x / scale)
// clamped to [-127, 127]; NaN encodes as 0. Rounding is round-half-to-even throughout.
//
// Group sizes: KVGroupValid says which g a type accepts. Calls with an invalid g, or n not a
// multiple of g, write nothing (encoders), zeros (decoders), return 0 (dot) or leave acc alone.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/kv_type.h"

namespace kvc {

// Bytes of one encoded group of g elements (codes + scale [+ zero-point]); plain types: g elements.
size_t KVGroupBytes(KVType t, int32_t g);

// Whether g is a usable group size for t: q8 1..256, q4 even 2..256, q2 multiple of 4 in 4..256;
// float types ignore g (always true).
bool KVGroupValid(KVType t, int32_t g);

// Per-token groups. Encodes n floats (n % g == 0) as n/g consecutive groups.
// Group layout: codes (q8: g int8; q4: g/2 bytes, element 2i in the low nibble of byte i;
// q2: g/4 bytes, element 4i+j in bits 2j..2j+1 of byte i), then f16 scale, then (q4/q2) u8 zero.
// Float types (f32/f16/bf16) are plain arrays (g ignored).
void QuantizeKVRow(KVType t, const float* x, int32_t n, int32_t g, uint8_t* out);
void DequantizeKVRow(KVType t, const uint8_t* in, int32_t n, int32_t g, float* out);

// DequantizeKVRow over n_rows rows (each n elements, anywhere in memory) into out, row-major.
void DequantizeKVRows(KVType t, const uint8_t* const* rows, int32_t n_rows, int32_t n, int32_t g,
                      float* out);

// Fused attention helpers on a per-token-encoded row of n elements:
// DotKVRow = sum_i q[i] * decoded[i] (per group S * sum q_i (code_i - Z), nothing materialized);
// AxpyKVRow: acc[i] += a * decoded[i].
float DotKVRow(KVType t, const uint8_t* row, const float* q, int32_t n, int32_t g);
void AxpyKVRow(KVType t, const uint8_t* row, float a, float* acc, int32_t n, int32_t g);

// KIVI per-channel groups: `rows` holds g tokens x n channels (token-major, row stride n).
// Output: n channel groups in channel order, each the g codes of that channel over the g tokens
// (same packing as above) followed by its scale [+ zero]: n * KVGroupBytes(t, g) bytes.
// Float types store each channel's g values contiguously (a transpose).
void QuantizeKVChannelGroup(KVType t, const float* rows, int32_t n, int32_t g, uint8_t* out);
// Decodes token j (0 <= j < g) of such a block: n floats.
void DequantizeKVChannelGroupRow(KVType t, const uint8_t* in, int32_t n, int32_t g, int32_t j,
                                 float* out);
// Decodes all g tokens of such a block: g x n floats, token-major (row stride n).
void DequantizeKVChannelGroup(KVType t, const uint8_t* in, int32_t n, int32_t g, float* rows);
// Scores of q against every token of such a block: scores[j] = sum_c q[c] * decoded(j, c),
// j < g. Folds each channel's scale into q once instead of decoding g x n elements.
void DotKVChannelGroup(KVType t, const uint8_t* in, const float* q, int32_t n, int32_t g,
                       float* scores);

// Scalar references of the dispatched entry points above (tests compare against these).
void QuantizeKVRowRef(KVType t, const float* x, int32_t n, int32_t g, uint8_t* out);
void DequantizeKVRowRef(KVType t, const uint8_t* in, int32_t n, int32_t g, float* out);
float DotKVRowRef(KVType t, const uint8_t* row, const float* q, int32_t n, int32_t g);
void AxpyKVRowRef(KVType t, const uint8_t* row, float a, float* acc, int32_t n, int32_t g);

// True when the entry points above run AVX-512 kernels (for g % 16 == 0; other g use the reference).
bool KVQuantHasSimd();

}  // namespace kvc
