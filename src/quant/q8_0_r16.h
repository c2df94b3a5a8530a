// Q8_0 rows repacked for the streaming VNNI matvec (DType::kQ8_0_R16): the same bytes as Q8_0,
// reordered within each row so that one 64-byte load feeds one vpdpbusd that advances 16
// blocks at once.
//
// A row of nb blocks (nb a multiple of 16) holds nb / 16 groups of 512 quant bytes and the nb
// f16 scales, 32 bytes per group. In group g, bytes [64 k + 4 l, 64 k + 4 l + 4) are elements
// [4 k, 4 k + 4) of block 16 g + l, so lane l of a vpdpbusd over the group's k-th vector
// accumulates 4 products of block 16 g + l, and 8 of them give that block's whole integer dot in
// lane l: one convert and one FMA per 16 blocks instead of a convert, a scale permute and an FMA
// per 2 blocks.
// The scales come first, so a row is read front to back (a jump ahead to scales stored after
// the quants costs the stream prefetchers about 10%), and the quants start on a 64-byte
// boundary, so every vector load is aligned (a load split across two lines streams 15-20%
// slower). Rows must be 32-byte aligned (GGUF aligns tensor data to 32, and a row of whole
// groups is 544 nb / 16 bytes); a row whose quants would otherwise start at 32 mod 64 keeps its
// last group's scales after them instead. The layout is therefore tied to the row's address
// modulo 64: move rows only by multiples of 64 bytes.
// Measured on the development machine (2 threads, weights from DRAM, bench/matmul_bench.cc):
// an 8192 x 2048 matvec reads at 0.93-0.94 of a bare streaming read of the same bytes, against
// 0.86-0.91 for plain Q8_0 rows (BM_MatVecVsRead); a whole layer's seven products at 0.84-0.85,
// against 0.81-0.84 (BM_DecodeLayerVsRead).
// This is a run-time layout only: it is never written to files.
#pragma once

#include <cstdint>

#include "quant/ggml_blocks.h"

namespace kvc {

constexpr int64_t kR16Blocks = 16;
constexpr int64_t kR16GroupBytes = kR16Blocks * 32;

// Whether a row of `cols` elements can take the layout (whole groups of 16 blocks).
inline bool CanRepackQ8R16(int64_t cols) { return cols > 0 && cols % (kR16Blocks * 32) == 0; }

// Bytes before the quants of the row at `row` (nb blocks): all scales, or all but the last 32.
inline int64_t Q8R16Lead(const void* row, int64_t nb) {
  return 2 * nb - static_cast<int64_t>((reinterpret_cast<uintptr_t>(row) + 2 * nb) & 32);
}
// Offset of group g's 16 scales in a row of nb blocks with the given lead.
inline int64_t Q8R16ScaleOffset(int64_t lead, int64_t nb, int64_t g) {
  return 32 * g < lead ? 32 * g : 32 * nb + 32 * g;
}
// Offset of element i (0..31) of block b from the start of the row's quants.
inline int64_t Q8R16QuantOffset(int64_t b, int i) {
  return (b / kR16Blocks) * kR16GroupBytes + (i / 4) * 64 + (b % kR16Blocks) * 4 + i % 4;
}

// Block b of a repacked row of nb blocks, as the plain Q8_0 block it was.
BlockQ8_0 Q8R16Block(const void* r16_row, int64_t nb, int64_t b);

// One row: Q8_0 blocks -> repacked at dst, and back (32-byte aligned repacked rows; the two
// must not overlap).
void RepackRowQ8R16(const void* q8_row, void* dst, int64_t cols);
void UnpackRowQ8R16(const void* r16_row, void* q8_dst, int64_t cols);

// Repacks `rows` consecutive Q8_0 rows in place (CanRepackQ8R16(cols); data 32-byte aligned).
void RepackRowsQ8R16InPlace(void* data, int64_t rows, int64_t cols);

}  // namespace kvc
