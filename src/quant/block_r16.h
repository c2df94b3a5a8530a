// Q8_0 and Q4_0 rows repacked for the streaming VNNI matvec (DType::kQ8_0_R16, kQ4_0_R16): the
// same bytes as the plain blocks, reordered within each row so that one 64-byte load feeds one
// vpdpbusd (Q4_0: two, low and high nibbles) that advances 16 blocks at once.
//
// A row of nb blocks (nb a multiple of 16) holds nb / 16 groups of 16 Q quant bytes (Q: a
// block's quant bytes, 32 for Q8_0, 16 for Q4_0) and the nb f16 scales, 32 bytes per group. In
// group g, bytes [64 k + 4 l, 64 k + 4 l + 4) are quant bytes [4 k, 4 k + 4) of block 16 g + l,
// so lane l of a vpdpbusd over the group's k-th vector accumulates products of block 16 g + l
// only, and the group's Q / 4 vectors give every block's whole integer dot in its own lane: one
// convert and one FMA per 16 blocks instead of a convert, a scale permute and an FMA per 2
// (Q8_0) or 4 (Q4_0) blocks. (A Q4_0 quant byte holds elements j and j + 16 of its block, so the
// low nibbles of vector k are elements [4 k, 4 k + 4), the high ones [16 + 4 k, 20 + 4 k).)
// The scales come first, so a row is read front to back (a jump ahead to scales stored after
// the quants costs the stream prefetchers about 10%), and the quants start on a 64-byte
// boundary, so every vector load is aligned (a load split across two lines streams 15-20%
// slower). Rows must be 32-byte aligned (GGUF aligns tensor data to 32, and a row of whole
// groups is 544 or 288 bytes per group); a row whose quants would otherwise start at 32 mod 64
// keeps its last group's scales after them instead. The layout is therefore tied to the row's
// address modulo 64: move rows only by multiples of 64 bytes.
// Measured on the development machine (2 threads, weights from DRAM, bench/matmul_bench.cc,
// BM_MatVecVsRead: an 8192 x 2048 matvec against a bare streaming read of the same bytes):
// Q8_0_R16 reads at 0.93-0.94 of it against 0.86-0.91 for plain Q8_0 rows; Q4_0, whose plain
// kernel is bound by its arithmetic, see docs/BENCHMARKS.md.
// These are run-time layouts only: they are never written to files.
#pragma once

#include <cstdint>

#include "quant/ggml_blocks.h"
#include "tensor/dtype.h"

namespace kvc {

constexpr int64_t kR16Blocks = 16;
constexpr int64_t kR16GroupElems = kR16Blocks * kQK;  // elements (activations) per group

// Quant bytes per block (Q above) of a block type.
template <typename Block>
constexpr int64_t kQuantBytes = sizeof(Block) - sizeof(uint16_t);

// Whether a row of `cols` elements can take the layout (whole groups of 16 blocks).
inline bool CanRepackR16(int64_t cols) { return cols > 0 && cols % kR16GroupElems == 0; }

// Bytes before the quants of the row at `row` (nb blocks): all scales, or all but the last 32.
inline int64_t R16Lead(const void* row, int64_t nb) {
  return 2 * nb - static_cast<int64_t>((reinterpret_cast<uintptr_t>(row) + 2 * nb) & 32);
}
// Offset of group g's 16 scales in a row of nb blocks of q quant bytes with the given lead.
inline int64_t R16ScaleOffset(int64_t lead, int64_t nb, int64_t g, int64_t q) {
  return 32 * g < lead ? 32 * g : q * nb + 32 * g;
}
// Offset of quant byte i of block b from the start of the row's quants (q quant bytes a block).
inline int64_t R16QuantOffset(int64_t b, int64_t i, int64_t q) {
  return (b / kR16Blocks) * kR16Blocks * q + (i / 4) * 64 + (b % kR16Blocks) * 4 + i % 4;
}

// Block b of a repacked row of nb blocks, as the plain block it was.
template <typename Block>
Block R16Block(const void* r16_row, int64_t nb, int64_t b);

// One row: plain blocks -> repacked at dst, and back (32-byte aligned repacked rows; the two
// must not overlap).
template <typename Block>
void RepackRowR16(const void* plain_row, void* dst, int64_t cols);
template <typename Block>
void UnpackRowR16(const void* r16_row, void* plain_dst, int64_t cols);

// Repacks `rows` consecutive rows of plain blocks in place (CanRepackR16(cols); data 32-byte
// aligned).
template <typename Block>
void RepackRowsR16InPlace(void* data, int64_t rows, int64_t cols);

// The same for a layout given as its DType (kQ8_0_R16 or kQ4_0_R16): rows of its plain blocks
// repacked into it in place, and one row of it back to plain blocks.
void RepackRowsInPlace(DType r16, void* data, int64_t rows, int64_t cols);
void UnpackRow(DType r16, const void* r16_row, void* plain_dst, int64_t cols);

}  // namespace kvc
