// Prefill (n > 1) kernels: weights are packed panel by panel (32 rows = two zmm of 16 row lanes)
// into per-thread scratch, in K chunks that stay in L1/L2, and each packed chunk is reused by
// every token. Register tile: 2 x 16 rows x kNT tokens (float: 4 x 16 rows, two panels at once).
//  * Q8_0 / Q4_0 and their R16 layouts: packed as unsigned bytes (w + 128 / w + 8), 4
//    consecutive k per row lane, so vpdpbusd with a broadcast of 4 activation bytes adds 4
//    products per row. The int32 lane accumulators start at -offset * sum(x block), which
//    makes them exact signed dot products; one convert and one FMA with dw * dx per block and
//    row group.
//  * F32 / F16: packed as f32, FMA with broadcast activations.
//  * BF16: packed as bf16 pairs; vdpbf16ps with broadcast activation pairs (activations rounded
//    to bf16, as vdpbf16ps needs) where available, else widened to f32 like F16.
#include "kernels/matmul_internal.h"

#if defined(KVC_MATMUL_AVX512)
// GCC 12 flags the intentionally undefined upper lanes inside the cast intrinsics.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/matmul_simd_avx512.h"
#include "quant/block_r16.h"
#include "quant/ggml_blocks.h"

namespace kvc::internal {
namespace {

constexpr int kNT = 6;           // tokens per register tile
constexpr int kGroupRows = 16;   // rows per zmm
constexpr int kPanelGroups = 2;  // zmm row groups per panel
static_assert(kGemmPanelRows == kGroupRows * kPanelGroups, "panel shape");

inline __mmask16 RowMask(int valid) {
  return valid >= 16 ? __mmask16(0xffff) : valid <= 0 ? __mmask16(0) : __mmask16((1u << valid) - 1);
}

// Where a tile's tokens read activations and write results.
struct TileIo {
  int64_t t0 = 0;    // first token
  int nt = 0;        // tokens in the tile (<= kNT)
  int64_t r0 = 0;    // first row of the panel
  int valid = 0;     // rows of the panel that exist (<= 32)
  bool accumulate = false;  // add to y (later K chunks) instead of overwriting
};

inline void StoreTile(const MatMulArgs& a, const TileIo& io, int t, int g, __m512 v) {
  float* out = a.y + (io.t0 + t) * a.w.rows + io.r0 + g * kGroupRows;
  const __mmask16 m = RowMask(io.valid - g * kGroupRows);
  if (io.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, out));
  _mm512_mask_storeu_ps(out, m, v);
}

template <typename Tile>
void ForTokenTiles(const MatMulArgs& a, TileIo io, Tile&& tile) {
  for (io.t0 = 0; io.t0 < a.n; io.t0 += kNT) {
    io.nt = static_cast<int>(std::min<int64_t>(kNT, a.n - io.t0));
    switch (io.nt) {
      case 6: tile.template operator()<6>(io); break;
      case 5: tile.template operator()<5>(io); break;
      case 4: tile.template operator()<4>(io); break;
      case 3: tile.template operator()<3>(io); break;
      case 2: tile.template operator()<2>(io); break;
      default: tile.template operator()<1>(io); break;
    }
  }
}

#if defined(KVC_MATMUL_VNNI)
// ---- Quantized ----
// Packed chunk: per block, per row group: 8 x 64 bytes (lane = row, 4 consecutive k) then the
// 16 row scales as f32.
constexpr int kQGroupBytes = 8 * 64 + 64;
constexpr int kQBlockBytes = kPanelGroups * kQGroupBytes;
// 4096 columns, 144 KiB packed (in L2). On rows of 8192 (BM_MatMul/*/2048x8192), chunks of 2048
// columns measured 0-5% slower (one more pass adding partial sums into y), whole rows no faster.
constexpr int64_t kQChunkBlocks = 128;

// 64 unsigned bytes (w + offset) of blocks b and b + 1 (b1 may repeat b) of one row.
inline __m512i UnsignedPair(DType type, const uint8_t* row, int64_t b, int64_t b1) {
  if (type == DType::kQ8_0) {
    const auto* blk = reinterpret_cast<const BlockQ8_0*>(row);
    const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b].qs));
    const __m256i hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[b1].qs));
    return _mm512_xor_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1),
                            _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  const auto* blk = reinterpret_cast<const BlockQ4_0*>(row);
  // 128-bit lanes [q_b, q_b, q_b1, q_b1]; lanes 1 and 3 take the high nibbles.
  __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[b].qs)));
  v = _mm512_mask_broadcast_i32x4(v, 0xff00,
                                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[b1].qs)));
  v = _mm512_mask_srli_epi16(v, 0xff00ff00u, v, 4);
  return _mm512_and_si512(v, _mm512_set1_epi8(0x0f));
}

// The f16 scales of blocks [b, b + nblk) of one row as f32 (nblk <= 16, missing lanes 0).
inline __m512 RowScales16(DType type, const uint8_t* row, int64_t b, int nblk) {
  if (type == DType::kQ8_0) {
    const uint8_t* g = row + b * sizeof(BlockQ8_0);
    return nblk == 16 ? LoadScales<false, true>(g, 16) : LoadScales<false, false>(g, nblk);
  }
  const uint8_t* g = row + b * sizeof(BlockQ4_0);
  return nblk == 16 ? LoadScales<true, true>(g, 16) : LoadScales<true, false>(g, nblk);
}

// Reads [p, p + bytes) front to back so that it sits in L2 before a strided pass over it: the
// transposing pack reads 16 rows at once, a pattern the hardware prefetchers follow poorly.
inline void Touch(const uint8_t* p, size_t bytes) {
  __m512i acc = _mm512_setzero_si512();
  size_t i = 0;
  for (; i + 64 <= bytes; i += 64) acc = _mm512_or_si512(acc, _mm512_loadu_si512(p + i));
  // Keep the loads alive without a store per line.
  asm volatile("" : : "v"(acc));
}

// Quant bytes per block of an R16 layout.
inline int64_t R16QuantBytes(DType type) {
  return type == DType::kQ4_0_R16 ? kQuantBytes<BlockQ4_0> : kQuantBytes<BlockQ8_0>;
}

// Calls fn(p, bytes) for the byte ranges of `row` that packing its blocks [b0, b1) reads: the
// blocks of plain rows; the quants and each group's 16 scales of R16 rows.
template <typename Fn>
void ForChunkBytes(const MatView& w, const uint8_t* row, int64_t b0, int64_t b1, Fn&& fn) {
  if (!IsR16(w.type)) {
    const int64_t bb = static_cast<int64_t>(TraitsOf(w.type).block_bytes);
    fn(row + b0 * bb, (b1 - b0) * bb);
    return;
  }
  const int64_t q = R16QuantBytes(w.type), nb = w.cols / kQK, lead = R16Lead(row, nb);
  fn(row + lead + R16QuantOffset(b0, 0, q), (b1 - b0) * q);
  for (int64_t g = b0 / kR16Blocks; g < b1 / kR16Blocks; ++g) {
    fn(row + R16ScaleOffset(lead, nb, g, q), int64_t{32});
  }
}

// PackQ for Q8_0_R16 / Q4_0_R16 rows: an R16 row keeps dword j of its 16 blocks of a group in
// one vector, so vector j of the 16 rows of a row group, transposed, gives the packed vectors of
// the 16 blocks directly (two for Q4_0: low and high nibbles). A gather per packed vector
// instead took twice as long (BM_MatMul/Q8_0_R16). [b0, b1) covers whole groups of 16 blocks.
void PackQR16(const MatView& w, int64_t r0, int valid, int64_t b0, int64_t b1, uint8_t* out) {
  const bool q4 = w.type == DType::kQ4_0_R16;
  const int64_t q = R16QuantBytes(w.type);
  const int64_t nb = w.cols / kQK;
  const int64_t rb = static_cast<int64_t>(w.row_bytes());
  for (int i = 0; i < valid; ++i) ForChunkBytes(w, w.row(r0 + i), b0, b1, Touch);
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80)), low = _mm512_set1_epi8(0x0F);
  for (int g = 0; g < kPanelGroups; ++g) {
    const int rows = std::min(kGroupRows, valid - g * kGroupRows);
    uint8_t* dst_g = out + g * kQGroupBytes;
    if (rows <= 0) {  // a panel past the last row: zero weights, zero scales
      for (int64_t b = b0; b < b1; ++b) {
        std::memset(dst_g + (b - b0) * kQBlockBytes, 0, kQGroupBytes);
      }
      continue;
    }
    const __mmask16 m = RowMask(rows);
    const uint8_t* base = w.row(r0 + g * kGroupRows);
    const uint8_t* quants[kGroupRows];  // each row's
    for (int i = 0; i < rows; ++i) {
      const uint8_t* r = base + i * rb;
      quants[i] = r + R16Lead(r, nb);
    }
    for (int64_t gb = b0; gb < b1; gb += kR16Blocks) {
      for (int j = 0; j < q / 4; ++j) {
        // Vector j of 16 rows (lane = block), transposed: lane = row, one vector per block.
        __m512i v[16];
        for (int i = 0; i < 16; ++i) {
          v[i] = i < rows ? _mm512_loadu_si512(quants[i] + R16QuantOffset(gb, 4 * j, q)) : _mm512_setzero_si512();
        }
        Transpose16(v);
        for (int l = 0; l < 16; ++l) {
          uint8_t* dst = dst_g + (gb + l - b0) * kQBlockBytes;
          if (q4) {  // elements [4 j, 4 j + 4) and [16 + 4 j, 20 + 4 j), nibbles w + 8
            _mm512_store_si512(dst + 64 * j, _mm512_and_si512(v[l], low));
            _mm512_store_si512(dst + 64 * (j + 4), _mm512_and_si512(_mm512_srli_epi16(v[l], 4), low));
          } else {  // missing rows stay 0 (scale 0 too)
            _mm512_store_si512(dst + 64 * j, _mm512_maskz_xor_epi32(m, v[l], bias));
          }
        }
      }
    }
    for (int64_t b = b0; b < b1; b += kR16Blocks) {
      __m512i s[16];
      for (int i = 0; i < 16; ++i) {
        const uint8_t* row = base + i * rb;
        s[i] = i < rows ? _mm512_castps_si512(
                              _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(
                                  row + R16ScaleOffset(R16Lead(row, nb), nb, b / kR16Blocks, q)))))
                        : _mm512_setzero_si512();
      }
      Transpose16(s);
      for (int j = 0; j < 16; ++j) {
        _mm512_store_si512(dst_g + (b + j - b0) * kQBlockBytes + 8 * 64, s[j]);
      }
    }
  }
}

// Packs blocks [b0, b1) of the panel's rows; rows past `valid` are zero (scale 0).
void PackQ(const MatView& w, int64_t r0, int valid, int64_t b0, int64_t b1, uint8_t* out) {
  for (int i = 0; i < valid; ++i) ForChunkBytes(w, w.row(r0 + i), b0, b1, Touch);
  for (int g = 0; g < kPanelGroups; ++g) {
    const int rows = std::min(kGroupRows, valid - g * kGroupRows);
    const uint8_t* row[kGroupRows];
    for (int i = 0; i < rows; ++i) row[i] = w.row(r0 + g * kGroupRows + i);
    uint8_t* dst_g = out + g * kQGroupBytes;
    for (int64_t b = b0; b < b1; b += 2) {
      const bool pair = b + 1 < b1;
      __m512i v[16];
      for (int i = 0; i < 16; ++i) {
        v[i] = i < rows ? UnsignedPair(w.type, row[i], b, pair ? b + 1 : b) : _mm512_setzero_si512();
      }
      Transpose16(v);
      uint8_t* dst = dst_g + (b - b0) * kQBlockBytes;
      for (int j = 0; j < 8; ++j) _mm512_store_si512(dst + 64 * j, v[j]);
      if (pair) {
        for (int j = 0; j < 8; ++j) _mm512_store_si512(dst + kQBlockBytes + 64 * j, v[8 + j]);
      }
    }
    // Scales: 16 blocks of each row at once, then transposed to 16 rows per block.
    for (int64_t b = b0; b < b1; b += 16) {
      const int nblk = static_cast<int>(std::min<int64_t>(16, b1 - b));
      __m512i s[16];
      for (int i = 0; i < 16; ++i) {
        s[i] = i < rows ? _mm512_castps_si512(RowScales16(w.type, row[i], b, nblk))
                        : _mm512_setzero_si512();
      }
      Transpose16(s);
      for (int j = 0; j < nblk; ++j) {
        _mm512_store_si512(dst_g + (b + j - b0) * kQBlockBytes + 8 * 64, s[j]);
      }
    }
  }
}

template <int NT>
void TileQ(const MatMulArgs& a, const TileIo& io, const uint8_t* packed, int64_t b0, int64_t nblk,
           int32_t offset) {
  const QuantizedActs& q = a.qx;
  const int64_t nbs = q.stride / kQK;
  __m512 facc[kPanelGroups][NT];
  for (auto& row : facc) {
    for (__m512& v : row) v = _mm512_setzero_ps();
  }
  for (int64_t bi = 0; bi < nblk; ++bi) {
    const int64_t b = b0 + bi;
    const uint8_t* pb = packed + bi * kQBlockBytes;
    __m512i iacc[kPanelGroups][NT];
    for (int t = 0; t < NT; ++t) {
      const __m512i init = _mm512_set1_epi32(-offset * q.sum[(io.t0 + t) * nbs + b]);
      for (int g = 0; g < kPanelGroups; ++g) iacc[g][t] = init;
    }
    for (int j = 0; j < 8; ++j) {
      const __m512i w0 = _mm512_load_si512(pb + 64 * j);
      const __m512i w1 = _mm512_load_si512(pb + kQGroupBytes + 64 * j);
      for (int t = 0; t < NT; ++t) {
        int32_t x4;
        std::memcpy(&x4, q.qs + (io.t0 + t) * q.stride + b * kQK + 4 * j, 4);
        const __m512i xb = _mm512_set1_epi32(x4);
        iacc[0][t] = _mm512_dpbusd_epi32(iacc[0][t], w0, xb);
        iacc[1][t] = _mm512_dpbusd_epi32(iacc[1][t], w1, xb);
      }
    }
    const __m512 dw0 = _mm512_load_ps(reinterpret_cast<const float*>(pb + 8 * 64));
    const __m512 dw1 = _mm512_load_ps(reinterpret_cast<const float*>(pb + kQGroupBytes + 8 * 64));
    for (int t = 0; t < NT; ++t) {
      const __m512 dx = _mm512_set1_ps(q.d[(io.t0 + t) * nbs + b]);
      facc[0][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[0][t]), _mm512_mul_ps(dw0, dx), facc[0][t]);
      facc[1][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[1][t]), _mm512_mul_ps(dw1, dx), facc[1][t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    for (int g = 0; g < kPanelGroups; ++g) StoreTile(a, io, t, g, facc[g][t]);
  }
}

// Prefetches into L2 the bytes that packing blocks [b0, b1) of `rows` rows from r0 will read,
// rows [i * rows / n, (i + 1) * rows / n) of them: the token tiles of one chunk call it in turn
// for the next chunk, so that its pack reads L2. Packing reads its 32 rows from DRAM poorly
// (one short stream per row): in a prefill it took 8% as long as the tile kernel, twice its
// share with the weights in cache.
void PrefetchChunkRows(const MatView& w, int64_t r0, int rows, int64_t b0, int64_t b1, int64_t i,
                       int64_t n) {
  for (int64_t r = i * rows / n; r < (i + 1) * rows / n; ++r) {
    ForChunkBytes(w, w.row(r0 + r), b0, b1, [](const uint8_t* p, int64_t bytes) {
      const auto first = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{63};
      for (uintptr_t a = first; a < reinterpret_cast<uintptr_t>(p + bytes); a += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T1);
      }
    });
  }
}

void GemmQ(const MatMulArgs& a, int64_t p0, int64_t p1) {
  thread_local ScratchBuffer pack_buf;
  auto* packed = static_cast<uint8_t*>(pack_buf.Get(kQChunkBlocks * kQBlockBytes));
  const int64_t nb = a.w.cols / kQK;
  const int32_t offset = UnsignedWeightOffset(a.w.type);
  const int64_t tiles = (a.n + kNT - 1) / kNT;
  for (int64_t p = p0; p < p1; ++p) {
    TileIo io;
    io.r0 = p * kGemmPanelRows;
    io.valid = static_cast<int>(std::min<int64_t>(kGemmPanelRows, a.w.rows - io.r0));
    for (int64_t b0 = 0; b0 < nb; b0 += kQChunkBlocks) {
      const int64_t nblk = std::min(kQChunkBlocks, nb - b0);
      if (IsR16(a.w.type)) {
        PackQR16(a.w, io.r0, io.valid, b0, b0 + nblk, packed);
      } else {
        PackQ(a.w, io.r0, io.valid, b0, b0 + nblk, packed);
      }
      // The chunk after this one: the next K chunk of this panel, else the next panel's first.
      const bool next_k = b0 + nblk < nb;
      const int64_t next_r0 = next_k ? io.r0 : io.r0 + kGemmPanelRows;
      const int64_t next_b0 = next_k ? b0 + nblk : 0;
      const int next_rows =
          next_k || p + 1 < p1
              ? static_cast<int>(std::min<int64_t>(kGemmPanelRows, a.w.rows - next_r0))
              : 0;
      const int64_t next_b1 = std::min(nb, next_b0 + kQChunkBlocks);
      io.accumulate = b0 > 0;
      ForTokenTiles(a, io, [&]<int NT>(const TileIo& tio) {
        if (next_rows > 0) {
          PrefetchChunkRows(a.w, next_r0, next_rows, next_b0, next_b1, tio.t0 / kNT, tiles);
        }
        TileQ<NT>(a, tio, packed, b0, nblk, offset);
      });
    }
  }
}
#endif  // KVC_MATMUL_VNNI

// ---- Float ----
// Packed chunk: F32/F16 (and BF16 without vdpbf16ps): per k, 32 f32 (row group 0 then 1).
// BF16 with vdpbf16ps: per k pair, 32 dwords of two bf16 (k even in the low half).
constexpr int64_t kFChunkCols = 512;  // 64 KiB packed

// 16 f32 weights of row `row` at columns [c, c + 16) (masked past `cols`).
inline __m512 LoadF32(DType type, const uint8_t* row, int64_t c, int64_t cols) {
  const __mmask16 m = RowMask(static_cast<int>(std::min<int64_t>(16, cols - c)));
  if (type == DType::kF32) return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(row) + c);
  const __m256i h = _mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(row) + c);
  if (type == DType::kF16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Packs columns [c0, c1) of G row groups from r0 (valid rows exist) as f32 [k][16 G].
template <int G>
void PackF32(const MatView& w, int64_t r0, int valid, int64_t c0, int64_t c1, float* out) {
  for (int g = 0; g < G; ++g) {
    for (int64_t c = c0; c < c1; c += 16) {
      __m512i v[16];
      for (int i = 0; i < 16; ++i) {
        const int ri = g * kGroupRows + i;
        v[i] = ri < valid ? _mm512_castps_si512(LoadF32(w.type, w.row(r0 + ri), c, c1))
                          : _mm512_setzero_si512();
      }
      Transpose16(v);
      for (int k = 0; k < 16 && c + k < c1; ++k) {
        _mm512_store_si512(out + (c - c0 + k) * G * kGroupRows + g * kGroupRows, v[k]);
      }
    }
  }
}

// G row groups x NT tokens of FMAs against broadcast activations. Two panels at once (G = 4)
// halve the activation loads per FMA, which stream from L2 or beyond for long rows.
template <int G, int NT>
void TileF32(const MatMulArgs& a, const TileIo& io, const float* packed, int64_t c0, int64_t nk) {
  __m512 acc[G][NT];
  for (auto& row : acc) {
    for (__m512& v : row) v = _mm512_setzero_ps();
  }
  const float* x = a.x + io.t0 * a.w.cols + c0;
  for (int64_t k = 0; k < nk; ++k) {
    __m512 w[G];
    for (int g = 0; g < G; ++g) w[g] = _mm512_load_ps(packed + (k * G + g) * kGroupRows);
    for (int t = 0; t < NT; ++t) {
      const __m512 xb = _mm512_set1_ps(x[t * a.w.cols + k]);
      for (int g = 0; g < G; ++g) acc[g][t] = _mm512_fmadd_ps(w[g], xb, acc[g][t]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    for (int g = 0; g < G; ++g) StoreTile(a, io, t, g, acc[g][t]);
  }
}

#if defined(KVC_MATMUL_BF16)
// Packs bf16 column pairs [c0, c1) (c0 even) of the panel as dwords [k / 2][32].
void PackBf16(const MatView& w, int64_t r0, int valid, int64_t c0, int64_t c1, uint32_t* out) {
  const int64_t pairs = (c1 - c0 + 1) / 2;
  for (int g = 0; g < kPanelGroups; ++g) {
    for (int64_t c = c0; c < c1; c += 32) {
      const int64_t left = c1 - c;
      const __mmask32 m = left >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << left) - 1);
      __m512i v[16];
      for (int i = 0; i < 16; ++i) {
        const int ri = g * kGroupRows + i;
        v[i] = ri < valid ? _mm512_maskz_loadu_epi16(
                                m, reinterpret_cast<const uint16_t*>(w.row(r0 + ri)) + c)
                          : _mm512_setzero_si512();
      }
      Transpose16(v);
      for (int j = 0; j < 16 && (c - c0) / 2 + j < pairs; ++j) {
        _mm512_store_si512(out + ((c - c0) / 2 + j) * kGemmPanelRows + g * kGroupRows, v[j]);
      }
    }
  }
}

template <int NT>
void TileBf16(const MatMulArgs& a, const TileIo& io, const uint32_t* packed, int64_t c0,
              int64_t npairs) {
  __m512 acc[kPanelGroups][NT];
  for (auto& row : acc) {
    for (__m512& v : row) v = _mm512_setzero_ps();
  }
  const uint16_t* x = a.xbf + io.t0 * a.xbf_stride + c0;
  for (int64_t k = 0; k < npairs; ++k) {
    const __m512bh w0 = (__m512bh)_mm512_load_si512(packed + k * kGemmPanelRows);
    const __m512bh w1 = (__m512bh)_mm512_load_si512(packed + k * kGemmPanelRows + kGroupRows);
    for (int t = 0; t < NT; ++t) {
      uint32_t x2;
      std::memcpy(&x2, x + t * a.xbf_stride + 2 * k, 4);
      const __m512bh xb = (__m512bh)_mm512_set1_epi32(static_cast<int>(x2));
      acc[0][t] = _mm512_dpbf16_ps(acc[0][t], w0, xb);
      acc[1][t] = _mm512_dpbf16_ps(acc[1][t], w1, xb);
    }
  }
  for (int t = 0; t < NT; ++t) {
    for (int g = 0; g < kPanelGroups; ++g) StoreTile(a, io, t, g, acc[g][t]);
  }
}
#endif

void GemmFloat(const MatMulArgs& a, int64_t p0, int64_t p1) {
  thread_local ScratchBuffer pack_buf;
  void* packed = pack_buf.Get(kFChunkCols * 2 * kGemmPanelRows * sizeof(float));
  const int64_t cols = a.w.cols;
  for (int64_t p = p0; p < p1; ++p) {
    TileIo io;
    io.r0 = p * kGemmPanelRows;
    io.valid = static_cast<int>(std::min<int64_t>(kGemmPanelRows, a.w.rows - io.r0));
#if defined(KVC_MATMUL_BF16)
    if (a.w.type == DType::kBF16 && a.xbf != nullptr) {
      constexpr int64_t kChunk = 2 * kFChunkCols;  // same bytes: 2 bf16 per dword
      auto* pk = static_cast<uint32_t*>(packed);
      for (int64_t c0 = 0; c0 < cols; c0 += kChunk) {
        const int64_t c1 = std::min(cols, c0 + kChunk);
        PackBf16(a.w, io.r0, io.valid, c0, c1, pk);
        io.accumulate = c0 > 0;
        ForTokenTiles(a, io, [&]<int NT>(const TileIo& tio) {
          TileBf16<NT>(a, tio, pk, c0, (c1 - c0 + 1) / 2);
        });
      }
      continue;
    }
#endif
    auto* pf = static_cast<float*>(packed);
    const bool two = p + 1 < p1;  // this panel and the next as one tile of 4 row groups
    if (two) io.valid = static_cast<int>(std::min<int64_t>(2 * kGemmPanelRows, a.w.rows - io.r0));
    auto chunks = [&]<int G>() {  // G row groups per tile
      for (int64_t c0 = 0; c0 < cols; c0 += kFChunkCols) {
        const int64_t c1 = std::min(cols, c0 + kFChunkCols);
        io.accumulate = c0 > 0;
        PackF32<G>(a.w, io.r0, io.valid, c0, c1, pf);
        ForTokenTiles(a, io, [&]<int NT>(const TileIo& tio) { TileF32<G, NT>(a, tio, pf, c0, c1 - c0); });
      }
    };
    if (two) {
      chunks.template operator()<2 * kPanelGroups>();
    } else {
      chunks.template operator()<kPanelGroups>();
    }
    if (two) ++p;
  }
}

}  // namespace

void Avx512PackedGemm(const MatMulArgs& a, int64_t p0, int64_t p1) {
#if defined(KVC_MATMUL_VNNI)
  if (IsBlockQuantized(a.w.type)) return GemmQ(a, p0, p1);
#endif
  GemmFloat(a, p0, p1);
}

}  // namespace kvc::internal
#endif  // KVC_MATMUL_AVX512
