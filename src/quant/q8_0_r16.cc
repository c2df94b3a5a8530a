#include "quant/q8_0_r16.h"

#include <cstring>
#include <type_traits>
#include <vector>

#include "core/status.h"

namespace kvc {

namespace {

// Copies block b between a plain Q8_0 block and its pieces in a repacked row of nb blocks (lead:
// Q8R16Lead), from whichever side is const to the other.
template <typename Row, typename Block>
void CopyBlock(Row* row, int64_t nb, int64_t lead, int64_t b, Block* block) {
  static_assert(std::is_const_v<Row> != std::is_const_v<Block>, "one source, one destination");
  auto copy = [](auto* repacked, auto* plain, size_t n) {
    if constexpr (std::is_const_v<Row>) {
      std::memcpy(plain, repacked, n);
    } else {
      std::memcpy(repacked, plain, n);
    }
  };
  copy(row + Q8R16ScaleOffset(lead, nb, b / kR16Blocks) + 2 * (b % kR16Blocks), &block->d, 2);
  for (int i = 0; i < kQK; i += 4) copy(row + lead + Q8R16QuantOffset(b, i), block->qs + i, 4);
}

}  // namespace

BlockQ8_0 Q8R16Block(const void* r16_row, int64_t nb, int64_t b) {
  const auto* row = static_cast<const uint8_t*>(r16_row);
  BlockQ8_0 block;
  CopyBlock(row, nb, Q8R16Lead(row, nb), b, &block);
  return block;
}

void RepackRowQ8R16(const void* q8_row, void* dst, int64_t cols) {
  KVC_CHECK(CanRepackQ8R16(cols) && reinterpret_cast<uintptr_t>(dst) % 32 == 0);
  const auto* in = static_cast<const BlockQ8_0*>(q8_row);
  auto* out = static_cast<uint8_t*>(dst);
  const int64_t nb = cols / kQK, lead = Q8R16Lead(dst, nb);
  for (int64_t b = 0; b < nb; ++b) CopyBlock(out, nb, lead, b, &in[b]);
}

void UnpackRowQ8R16(const void* r16_row, void* q8_dst, int64_t cols) {
  KVC_CHECK(CanRepackQ8R16(cols) && reinterpret_cast<uintptr_t>(r16_row) % 32 == 0);
  const auto* in = static_cast<const uint8_t*>(r16_row);
  auto* out = static_cast<BlockQ8_0*>(q8_dst);
  const int64_t nb = cols / kQK, lead = Q8R16Lead(in, nb);
  for (int64_t b = 0; b < nb; ++b) CopyBlock(in, nb, lead, b, &out[b]);
}

void RepackRowsQ8R16InPlace(void* data, int64_t rows, int64_t cols) {
  const size_t row_bytes = static_cast<size_t>(cols / kQK) * sizeof(BlockQ8_0);
  std::vector<uint8_t> tmp(row_bytes);
  auto* p = static_cast<uint8_t*>(data);
  for (int64_t r = 0; r < rows; ++r, p += row_bytes) {
    std::memcpy(tmp.data(), p, row_bytes);
    RepackRowQ8R16(tmp.data(), p, cols);
  }
}

}  // namespace kvc
