#include "quant/block_r16.h"

#include <cstring>
#include <type_traits>
#include <vector>

#include "core/status.h"

namespace kvc {

namespace {

// Copies block b between a plain block and its pieces in a repacked row of nb blocks (lead:
// R16Lead), from whichever side is const to the other.
template <typename Row, typename Block>
void CopyBlock(Row* row, int64_t nb, int64_t lead, int64_t b, Block* block) {
  static_assert(std::is_const_v<Row> != std::is_const_v<Block>, "one source, one destination");
  constexpr int64_t q = kQuantBytes<std::remove_const_t<Block>>;
  auto copy = [](auto* repacked, auto* plain, size_t n) {
    if constexpr (std::is_const_v<Row>) {
      std::memcpy(plain, repacked, n);
    } else {
      std::memcpy(repacked, plain, n);
    }
  };
  copy(row + R16ScaleOffset(lead, nb, b / kR16Blocks, q) + 2 * (b % kR16Blocks), &block->d, 2);
  for (int64_t i = 0; i < q; i += 4) copy(row + lead + R16QuantOffset(b, i, q), block->qs + i, 4);
}

}  // namespace

template <typename Block>
Block R16Block(const void* r16_row, int64_t nb, int64_t b) {
  const auto* row = static_cast<const uint8_t*>(r16_row);
  Block block;
  CopyBlock(row, nb, R16Lead(row, nb), b, &block);
  return block;
}

template <typename Block>
void RepackRowR16(const void* plain_row, void* dst, int64_t cols) {
  KVC_CHECK(CanRepackR16(cols) && reinterpret_cast<uintptr_t>(dst) % 32 == 0);
  const auto* in = static_cast<const Block*>(plain_row);
  auto* out = static_cast<uint8_t*>(dst);
  const int64_t nb = cols / kQK, lead = R16Lead(dst, nb);
  for (int64_t b = 0; b < nb; ++b) CopyBlock(out, nb, lead, b, &in[b]);
}

template <typename Block>
void UnpackRowR16(const void* r16_row, void* plain_dst, int64_t cols) {
  KVC_CHECK(CanRepackR16(cols) && reinterpret_cast<uintptr_t>(r16_row) % 32 == 0);
  const auto* in = static_cast<const uint8_t*>(r16_row);
  auto* out = static_cast<Block*>(plain_dst);
  const int64_t nb = cols / kQK, lead = R16Lead(in, nb);
  for (int64_t b = 0; b < nb; ++b) CopyBlock(in, nb, lead, b, &out[b]);
}

template <typename Block>
void RepackRowsR16InPlace(void* data, int64_t rows, int64_t cols) {
  const size_t row_bytes = static_cast<size_t>(cols / kQK) * sizeof(Block);
  std::vector<uint8_t> tmp(row_bytes);
  auto* p = static_cast<uint8_t*>(data);
  for (int64_t r = 0; r < rows; ++r, p += row_bytes) {
    std::memcpy(tmp.data(), p, row_bytes);
    RepackRowR16<Block>(tmp.data(), p, cols);
  }
}

void RepackRowsInPlace(DType r16, void* data, int64_t rows, int64_t cols) {
  KVC_CHECK(IsR16(r16));
  if (r16 == DType::kQ8_0_R16) {
    RepackRowsR16InPlace<BlockQ8_0>(data, rows, cols);
  } else {
    RepackRowsR16InPlace<BlockQ4_0>(data, rows, cols);
  }
}

void UnpackRow(DType r16, const void* r16_row, void* plain_dst, int64_t cols) {
  KVC_CHECK(IsR16(r16));
  if (r16 == DType::kQ8_0_R16) {
    UnpackRowR16<BlockQ8_0>(r16_row, plain_dst, cols);
  } else {
    UnpackRowR16<BlockQ4_0>(r16_row, plain_dst, cols);
  }
}

#define KVC_R16_INSTANTIATE(Block)                                \
  template Block R16Block<Block>(const void*, int64_t, int64_t);  \
  template void RepackRowR16<Block>(const void*, void*, int64_t); \
  template void UnpackRowR16<Block>(const void*, void*, int64_t); \
  template void RepackRowsR16InPlace<Block>(void*, int64_t, int64_t);
KVC_R16_INSTANTIATE(BlockQ8_0)
KVC_R16_INSTANTIATE(BlockQ4_0)
#undef KVC_R16_INSTANTIATE

}  // namespace kvc
