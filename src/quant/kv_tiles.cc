#include "quant/kv_tiles.h"

#include <cstring>

namespace kvc {
namespace {

// Byte offset of element d's code of `lane` inside a tile.
inline size_t CodeAt(KVTiling tiling, int32_t head_dim, int32_t lane, int32_t d) {
  if (tiling == KVTiling::kKeyTiles) return static_cast<size_t>(d / 4) * 64 + lane * 4 + d % 4;
  return static_cast<size_t>(lane / 4) * head_dim * 4 + static_cast<size_t>(d) * 4 + lane % 4;
}

}  // namespace

void PackTileRow(KVTiling tiling, const uint8_t* row, int32_t head_dim, int32_t g, int32_t lane,
                 uint8_t* tile) {
  const uint8_t flip = tiling == KVTiling::kKeyTiles ? 0x80 : 0;  // key codes + 128 (u8)
  uint8_t* scales = tile + static_cast<size_t>(head_dim) * kKVTileSlots;
  for (int32_t grp = 0; grp < head_dim / g; ++grp) {
    const uint8_t* b = row + static_cast<size_t>(grp) * (g + 2);
    for (int32_t i = 0; i < g; ++i) tile[CodeAt(tiling, head_dim, lane, grp * g + i)] = b[i] ^ flip;
    std::memcpy(scales + (static_cast<size_t>(grp) * kKVTileSlots + lane) * 2, b + g, 2);
  }
}

void UnpackTileRow(KVTiling tiling, const uint8_t* tile, int32_t head_dim, int32_t g, int32_t lane,
                   uint8_t* row) {
  const uint8_t flip = tiling == KVTiling::kKeyTiles ? 0x80 : 0;
  const uint8_t* scales = tile + static_cast<size_t>(head_dim) * kKVTileSlots;
  for (int32_t grp = 0; grp < head_dim / g; ++grp) {
    uint8_t* b = row + static_cast<size_t>(grp) * (g + 2);
    for (int32_t i = 0; i < g; ++i) b[i] = tile[CodeAt(tiling, head_dim, lane, grp * g + i)] ^ flip;
    std::memcpy(b + g, scales + (static_cast<size_t>(grp) * kKVTileSlots + lane) * 2, 2);
  }
}

const uint8_t* StoredRow(const KVView& kv, const KVSideView& s, int32_t h, int32_t t, uint8_t* buf) {
  if (s.tiling == KVTiling::kRows) return kv.Stored(s, h, t);
  UnpackTileRow(s.tiling, kv.Stored(s, h, t), kv.head_dim, s.group, t % kKVTileSlots, buf);
  return buf;
}

}  // namespace kvc
