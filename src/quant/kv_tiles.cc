#include "quant/kv_tiles.h"

#include <cstring>

namespace kvc {
namespace {

// Where element d's code of `lane` sits inside a tile: a byte offset, and for q4 the nibble.
struct CodePlace {
  size_t at;
  int shift;  // 0 or 4 (q4's high nibble)
};

inline CodePlace CodeAt(KVTiling tiling, KVType type, int32_t head_dim, int32_t lane, int32_t d) {
  const bool key = tiling == KVTiling::kKeyTiles;
  if (type == KVType::kQ8) {
    if (key) return {static_cast<size_t>(d / 4) * 64 + lane * 4 + d % 4, 0};
    return {static_cast<size_t>(lane / 4) * head_dim * 4 + static_cast<size_t>(d) * 4 + lane % 4, 0};
  }
  // q4 keys: column d / 8 holds elements 8c + i (low nibble of byte i) and 8c + 4 + i (high).
  if (key) return {static_cast<size_t>(d / 8) * 64 + lane * 4 + d % 4, d % 8 >= 4 ? 4 : 0};
  // q4 values: octet lane / 8 holds slots 8o + i (low nibble of byte i) and 8o + 4 + i (high).
  return {static_cast<size_t>(lane / 8) * head_dim * 4 + static_cast<size_t>(d) * 4 + lane % 4,
          lane % 8 >= 4 ? 4 : 0};
}

// Per group: codes bytes in a row, and parameter bytes after them (scale; q4: zero point).
inline int32_t CodeBytes(KVType type, int32_t g) { return type == KVType::kQ8 ? g : g / 2; }
inline int32_t ParamBytes(KVType type) { return type == KVType::kQ8 ? 2 : 3; }

}  // namespace

void PackTileRow(KVTiling tiling, KVType type, const uint8_t* row, int32_t head_dim, int32_t g,
                 int32_t lane, uint8_t* tile) {
  const uint8_t flip = type == KVType::kQ8 && tiling == KVTiling::kKeyTiles ? 0x80 : 0;  // u8 keys
  const int32_t groups = head_dim / g, cb = CodeBytes(type, g);
  uint8_t* scales = tile + static_cast<size_t>(cb) * groups * kKVTileSlots;
  uint8_t* zeros = scales + static_cast<size_t>(groups) * kKVTileSlots * 2;
  for (int32_t grp = 0; grp < groups; ++grp) {
    const uint8_t* b = row + static_cast<size_t>(grp) * (cb + ParamBytes(type));
    for (int32_t i = 0; i < g; ++i) {
      const CodePlace c = CodeAt(tiling, type, head_dim, lane, grp * g + i);
      if (type == KVType::kQ8) {
        tile[c.at] = b[i] ^ flip;
      } else {
        const uint8_t code = (b[i / 2] >> (i % 2 * 4)) & 0x0F;
        tile[c.at] = static_cast<uint8_t>((tile[c.at] & ~(0x0F << c.shift)) | code << c.shift);
      }
    }
    std::memcpy(scales + (static_cast<size_t>(grp) * kKVTileSlots + lane) * 2, b + cb, 2);
    if (type == KVType::kQ4) zeros[grp * kKVTileSlots + lane] = b[cb + 2];
  }
}

void UnpackTileRow(KVTiling tiling, KVType type, const uint8_t* tile, int32_t head_dim, int32_t g,
                   int32_t lane, uint8_t* row) {
  const uint8_t flip = type == KVType::kQ8 && tiling == KVTiling::kKeyTiles ? 0x80 : 0;
  const int32_t groups = head_dim / g, cb = CodeBytes(type, g);
  const uint8_t* scales = tile + static_cast<size_t>(cb) * groups * kKVTileSlots;
  const uint8_t* zeros = scales + static_cast<size_t>(groups) * kKVTileSlots * 2;
  for (int32_t grp = 0; grp < groups; ++grp) {
    uint8_t* b = row + static_cast<size_t>(grp) * (cb + ParamBytes(type));
    if (type == KVType::kQ4) std::memset(b, 0, cb);
    for (int32_t i = 0; i < g; ++i) {
      const CodePlace c = CodeAt(tiling, type, head_dim, lane, grp * g + i);
      if (type == KVType::kQ8) {
        b[i] = tile[c.at] ^ flip;
      } else {
        b[i / 2] |= static_cast<uint8_t>(((tile[c.at] >> c.shift) & 0x0F) << (i % 2 * 4));
      }
    }
    std::memcpy(b + cb, scales + (static_cast<size_t>(grp) * kKVTileSlots + lane) * 2, 2);
    if (type == KVType::kQ4) b[cb + 2] = zeros[grp * kKVTileSlots + lane];
  }
}

const uint8_t* StoredRow(const KVView& kv, const KVSideView& s, int32_t h, int32_t t, uint8_t* buf) {
  if (s.tiling == KVTiling::kRows) return kv.Stored(s, h, t);
  UnpackTileRow(s.tiling, s.type, kv.Stored(s, h, t), kv.head_dim, s.group, t % kKVTileSlots, buf);
  return buf;
}

}  // namespace kvc
