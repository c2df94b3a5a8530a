// q8 and q4 rows to and from the 16-slot tiles of tiled KV sides (layouts: tensor/kv_view.h,
// KVTiling). A row is what kvcache/kv_format.h defines: per group of g elements, the codes (q8:
// g int8; q4: g/2 bytes, element 2i in the low nibble of byte i) then the f16 scale (q4: then
// the u8 zero point).
#pragma once

#include <cstdint>

#include "tensor/kv_view.h"

namespace kvc {

// The largest row a tiled side has: q8 with head_dim 256 in groups of 16 (codes + scales).
constexpr size_t kMaxTiledRowBytes = 256 + 2 * 16;

// Writes `row` (q8 or q4) into lane `lane` of `tile` (kKeyTiles or kValueTiles).
void PackTileRow(KVTiling tiling, KVType type, const uint8_t* row, int32_t head_dim, int32_t g,
                 int32_t lane, uint8_t* tile);
// Reads lane `lane` of `tile` back into a row.
void UnpackTileRow(KVTiling tiling, KVType type, const uint8_t* tile, int32_t head_dim, int32_t g,
                   int32_t lane, uint8_t* row);

// The stored row of slot t (< s.n_stored, per-token side) of head h: in place for row layouts,
// else unpacked into `buf` (s.row_bytes bytes).
const uint8_t* StoredRow(const KVView& kv, const KVSideView& s, int32_t h, int32_t t, uint8_t* buf);

}  // namespace kvc
