// KVView: how attention kernels see one layer of one sequence's K/V cache, without knowing the
// cache. Stored slots live in blocks reached through a block table (a contiguous cache is one
// block); inside a block each KV head's data is contiguous. Quantized sides keep their most
// recent slots in an f32 residual ring until they are quantized.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/kv_type.h"

namespace kvc {

// How a per-token side's stored slots are laid out inside a block and head.
//  * kRows: one row per slot (codes and scales of each group, kvcache/kv_format.h), row_bytes apart.
//  * kKeyTiles / kValueTiles (both sides together; per-token q8 or q4 with groups of a multiple of
//    16, head_dim 32/64/128/256, blocks of a multiple of 16 slots): 16 consecutive slots
//    (slot t at lane t % 16) form one tile of 16 * row_bytes bytes, laid out for the int8
//    attention kernels: first the codes, then the f16 scales as [group][16 lanes] (q4: then the
//    u8 zero points as [group][16 lanes]).
//      q8 key tiles:   [head_dim / 4][16 lanes][4] u8, codes + 128: 4-byte pieces of the 16 slots
//                      side by side, so one 64-byte load scores 16 keys with vpdpbusd;
//      q8 value tiles: [4 quads][head_dim][4 slots of the quad] s8: one 64-byte load holds 16
//                      elements of 4 slots, summed with vpdpbusd against 4 slots' weights;
//      q4 key tiles:   [head_dim / 8][16 lanes][4]: byte i holds elements 8c + i (low nibble) and
//                      8c + 4 + i (high), so one load gives two q8-like registers of 16 keys;
//      q4 value tiles: [2 octets][head_dim][4]: byte i holds slots 8o + i (low) and 8o + 4 + i.
enum class KVTiling : uint8_t { kRows, kKeyTiles, kValueTiles };
constexpr int32_t kKVTileSlots = 16;

// One of K or V.
struct KVSideView {
  KVType type = KVType::kF32;
  int32_t group = 0;          // per-token: elements per group along head_dim; KIVI: tokens
  bool kivi = false;          // groups run along tokens per channel (keys)
  const uint8_t* base = nullptr;  // physical block 0 of this layer
  size_t block_stride = 0;    // bytes between a KV head's consecutive physical blocks
  size_t head_stride = 0;     // bytes between KV heads
  size_t row_bytes = 0;       // per-token: bytes of one token's row; KIVI: bytes of one token group
  int32_t n_stored = 0;       // slots [0, n_stored) are in blocks, the rest in the ring
  const float* ring = nullptr;  // [kv_head][ring_capacity][head_dim] f32; slot s at s % capacity
  int32_t ring_capacity = 0;
  KVTiling tiling = KVTiling::kRows;
};

struct KVView {
  int32_t n_tokens = 0;       // readable slots: 0 .. n_tokens-1 (positions)
  int32_t first_token = 0;    // slots below this were dropped (sliding window)
  int32_t head_dim = 0;
  int32_t block_size = 0;     // tokens per block
  const int32_t* block_table = nullptr;  // logical block -> physical block (-1: released)
  KVSideView k, v;

  // Block address of slot `t` for head `h` (t < side.n_stored). For KIVI sides: the start of
  // t's token group; for tiled sides: the start of t's tile (lane t % 16).
  const uint8_t* Stored(const KVSideView& s, int32_t h, int32_t t) const {
    const int32_t in_block = t % block_size;
    const size_t off = s.kivi ? static_cast<size_t>(in_block / s.group) * s.row_bytes
                       : s.tiling != KVTiling::kRows ? static_cast<size_t>(in_block / kKVTileSlots) * kKVTileSlots * s.row_bytes
                                                     : static_cast<size_t>(in_block) * s.row_bytes;
    return s.base + static_cast<size_t>(block_table[t / block_size]) * s.block_stride +
           h * s.head_stride + off;
  }
  // f32 row of slot `t` (t >= side.n_stored) for head `h`.
  const float* Residual(const KVSideView& s, int32_t h, int32_t t) const {
    return s.ring + (static_cast<size_t>(h) * s.ring_capacity + t % s.ring_capacity) * head_dim;
  }
};

}  // namespace kvc
