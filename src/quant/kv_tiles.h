// q8 rows to and from the 16-slot tiles of tiled KV sides (layouts: tensor/kv_view.h, KVTiling).
// A row is what kvcache/kv_format.h defines for q8: per group of g elements, g int8 codes then
// the f16 scale.
#pragma once

#include <cstdint>

#include "tensor/kv_view.h"

namespace kvc {

// The largest row a tiled side has: head_dim 256 in groups of 16 (codes + scales).
constexpr size_t kMaxTiledRowBytes = 256 + 2 * 16;

// Writes `row` into lane `lane` of `tile` (kKeyTiles or kValueTiles).
void PackTileRow(KVTiling tiling, const uint8_t* row, int32_t head_dim, int32_t g, int32_t lane,
                 uint8_t* tile);
// Reads lane `lane` of `tile` back into a row.
void UnpackTileRow(KVTiling tiling, const uint8_t* tile, int32_t head_dim, int32_t g, int32_t lane,
                   uint8_t* row);

// The stored row of slot t (< s.n_stored, per-token side) of head h: in place for row layouts,
// else unpacked into `buf` (s.row_bytes bytes).
const uint8_t* StoredRow(const KVView& kv, const KVSideView& s, int32_t h, int32_t t, uint8_t* buf);

}  // namespace kvc
