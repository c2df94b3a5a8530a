// 16-slot tiles of q8 and q4 rows (quant/kv_tiles.h, layouts in tensor/kv_view.h): every lane of
// a tile round-trips, lanes do not disturb each other, and the bytes sit where the int8 kernels
// load them; paged q8 and q4 caches with 16-slot blocks store in tiles and read their rows back.
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kvcache/kv_cache_factory.h"
#include "kvcache/kv_format.h"
#include "quant/kv_quant.h"
#include "quant/kv_tiles.h"

namespace kvc {
namespace {

size_t RowBytes(KVType type, int32_t hd, int32_t g) {
  return static_cast<size_t>(hd / g) * (type == KVType::kQ8 ? g + 2 : g / 2 + 3);
}

std::vector<uint8_t> RandomRow(KVType type, int32_t hd, int32_t g, std::mt19937& rng) {
  std::normal_distribution<float> normal;
  std::vector<float> x(hd);
  for (float& v : x) v = normal(rng);
  std::vector<uint8_t> row(RowBytes(type, hd, g));
  QuantizeKVRowRef(type, x.data(), hd, g, row.data());
  return row;
}

TEST(KVTiles, EveryLaneRoundTrips) {
  std::mt19937 rng(3);
  for (KVType type : {KVType::kQ8, KVType::kQ4}) {
  for (KVTiling tiling : {KVTiling::kKeyTiles, KVTiling::kValueTiles}) {
    for (int32_t hd : {32, 64, 128, 256}) {
      for (int32_t g : {16, 32, 64, 128, 256}) {
        if (g > hd) continue;
        const size_t row_bytes = RowBytes(type, hd, g);
        // Packed over two different fills: every byte of the tile is written by some lane.
        std::vector<uint8_t> tile(kKVTileSlots * row_bytes, 0x00), other(tile.size(), 0xFF);
        std::vector<std::vector<uint8_t>> rows;
        for (int32_t lane = 0; lane < kKVTileSlots; ++lane) {
          rows.push_back(RandomRow(type, hd, g, rng));
          PackTileRow(tiling, type, rows.back().data(), hd, g, lane, tile.data());
          PackTileRow(tiling, type, rows.back().data(), hd, g, lane, other.data());
        }
        EXPECT_EQ(tile, other) << KVTypeName(type) << " hd " << hd << " g " << g;
        for (int32_t lane = 0; lane < kKVTileSlots; ++lane) {
          std::vector<uint8_t> back(row_bytes, 0xA5);
          UnpackTileRow(tiling, type, tile.data(), hd, g, lane, back.data());
          EXPECT_EQ(back, rows[lane]) << KVTypeName(type) << " hd " << hd << " g " << g << " lane " << lane;
        }
      }
    }
  }
  }
}

TEST(KVTiles, BytesWhereTheKernelsLoadThem) {
  std::mt19937 rng(4);
  const int32_t hd = 64, g = 32;
  const std::vector<uint8_t> row = RandomRow(KVType::kQ8, hd, g, rng);
  std::vector<uint8_t> key(kKVTileSlots * row.size()), value(key.size());
  PackTileRow(KVTiling::kKeyTiles, KVType::kQ8, row.data(), hd, g, 5, key.data());
  PackTileRow(KVTiling::kValueTiles, KVType::kQ8, row.data(), hd, g, 5, value.data());
  // Element 42 (group 1, code 10): key tiles put codes + 128 as 4-byte pieces per lane (column
  // 10, lane 5, byte 2); value tiles put 4 slots of a quad per element (quad 1, element 42, slot 1).
  EXPECT_EQ(key[10 * 64 + 5 * 4 + 2], static_cast<uint8_t>(row[34 + 10] ^ 0x80));
  EXPECT_EQ(value[1 * hd * 4 + 42 * 4 + 1], row[34 + 10]);
  // Scales: [group][16 lanes] f16 after the codes.
  EXPECT_EQ(key[hd * 16 + (1 * 16 + 5) * 2], row[34 + 32]);
  EXPECT_EQ(value[hd * 16 + (1 * 16 + 5) * 2 + 1], row[34 + 33]);
}

TEST(KVTiles, Q4NibblesWhereTheKernelsLoadThem) {
  std::mt19937 rng(6);
  const int32_t hd = 64, g = 32;  // rows: per group 16 code bytes, f16 scale, u8 zero point
  const std::vector<uint8_t> row = RandomRow(KVType::kQ4, hd, g, rng);
  auto code = [&](int32_t d) { return (row[d / g * 19 + d % g / 2] >> (d % 2 * 4)) & 0x0F; };
  std::vector<uint8_t> key(kKVTileSlots * row.size()), value(key.size());
  PackTileRow(KVTiling::kKeyTiles, KVType::kQ4, row.data(), hd, g, 5, key.data());
  PackTileRow(KVTiling::kValueTiles, KVType::kQ4, row.data(), hd, g, 13, value.data());
  // Keys: column 5 (elements 40..47), lane 5, byte 2 holds element 42 low and 46 high.
  EXPECT_EQ(key[5 * 64 + 5 * 4 + 2], code(42) | code(46) << 4);
  // Values: slot 13 is octet 1, byte 1 of the element (slots 9 low, 13 high), high nibble.
  EXPECT_EQ(value[1 * hd * 4 + 42 * 4 + 1] >> 4, code(42));
  EXPECT_EQ(value[1 * hd * 4 + 42 * 4 + 1] & 0x0F, 0);  // lane 9: not written
  // Scales [group][16] f16 after the codes (hd * 8 bytes), then zero points [group][16].
  EXPECT_EQ(key[hd * 8 + (1 * 16 + 5) * 2], row[19 + 16]);
  EXPECT_EQ(key[hd * 8 + 2 * 32 + 1 * 16 + 5], row[19 + 18]);
  EXPECT_EQ(value[hd * 8 + 2 * 32 + 0 * 16 + 13], row[18]);
}

TEST(KVTiles, PagedCachesStoreTilesAndReadRowsBack) {
  KVSpec shape{.n_layers = 2, .n_kv_heads = 2, .head_dim = 64, .max_tokens = 100};
  for (KVType type : {KVType::kQ8, KVType::kQ4}) {
  auto cache = MakeKVCache(shape, {.layout = KVLayout::kPaged, .block_size = 16, .type_k = type,
                                   .type_v = type, .residual = 0});
  ASSERT_TRUE(cache.ok()) << cache.status().message();
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  const int32_t n = 37, width = 2 * 64;
  std::vector<float> k(n * width), v(k.size());
  for (float& x : k) x = normal(rng);
  for (float& x : v) x = normal(rng);
  ASSERT_TRUE(cache.value()->Reserve(n).ok());
  for (int32_t l = 0; l < 2; ++l) cache.value()->Write(l, 0, n, k.data(), v.data());
  cache.value()->Commit(n);
  const KVView view = cache.value()->View(1, n);
  EXPECT_EQ(view.k.tiling, KVTiling::kKeyTiles);
  EXPECT_EQ(view.v.tiling, KVTiling::kValueTiles);
  // Every slot's row, read through the tiles, decodes to what the codec makes of the input.
  for (int32_t t = 0; t < n; ++t) {
    for (int32_t h = 0; h < 2; ++h) {
      for (int side = 0; side < 2; ++side) {
        const KVSideView& s = side == 0 ? view.k : view.v;
        const float* x = (side == 0 ? k : v).data() + (static_cast<size_t>(t) * 2 + h) * 64;
        std::vector<uint8_t> want(s.row_bytes), buf(s.row_bytes);
        QuantizeKVRowRef(type, x, 64, 32, want.data());
        const uint8_t* got = StoredRow(view, s, h, t, buf.data());
        EXPECT_EQ(std::vector<uint8_t>(got, got + s.row_bytes), want)
            << KVTypeName(type) << " slot " << t << " head " << h;
      }
    }
  }
  }
  // Blocks of 8 slots cannot hold tiles: rows.
  auto rows = MakeKVCache(shape, {.layout = KVLayout::kPaged, .block_size = 8, .type_k = KVType::kQ8,
                                  .type_v = KVType::kQ8, .residual = 0});
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows.value()->View(0, 0).k.tiling, KVTiling::kRows);
}

}  // namespace
}  // namespace kvc
