#include "kvcache/blocked_kv_cache.h"

#include <algorithm>
#include <cstring>

#include "quant/kv_quant.h"
#include "quant/kv_tiles.h"
#include "tensor/kv_view.h"

namespace kvc {

BlockedKVCache::BlockedKVCache(const KVSpec& spec) : spec_(spec) {
  InitSide(k_, spec.type_k, spec.KiviKeys());
  InitSide(v_, spec.type_v, false);
}

void BlockedKVCache::InitSide(Side& s, KVType type, bool kivi) const {
  s.type = type;
  s.kivi = kivi;
  s.quantized = IsQuantized(type);
  s.group = kivi ? spec_.group : std::min(spec_.group, spec_.head_dim);
  s.residual = s.quantized ? std::min(spec_.residual, spec_.max_tokens) : 0;
  s.row_bytes = kivi ? static_cast<size_t>(spec_.head_dim) * KVGroupBytes(type, s.group)
                     : static_cast<size_t>(spec_.head_dim / s.group) * KVGroupBytes(type, s.group);
  if (!s.quantized) s.row_bytes = static_cast<size_t>(spec_.head_dim) * KVGroupBytes(type, 1);
  s.stored.assign(spec_.n_layers, 0);
  s.ring.assign(spec_.n_layers, std::vector<float>(
      static_cast<size_t>(spec_.n_kv_heads) * s.residual * spec_.head_dim));
}

void BlockedKVCache::UseTilesIfPossible(int32_t block_size) {
  const int32_t hd = spec_.head_dim;
  auto fits = [&](const Side& s) {
    return (s.type == KVType::kQ8 || s.type == KVType::kQ4) && !s.kivi && s.group % 16 == 0 &&
           hd % s.group == 0;
  };
  if ((hd == 32 || hd == 64 || hd == 128 || hd == 256) && block_size % kKVTileSlots == 0 && fits(k_) &&
      fits(v_)) {
    k_.tiling = KVTiling::kKeyTiles;
    v_.tiling = KVTiling::kValueTiles;
  }
}

int32_t BlockedKVCache::StoredTokens(const Side& s, int32_t tokens) const {
  if (s.residual == 0) return tokens;
  const int32_t over = std::max(0, tokens - s.residual);
  // KIVI keys leave the ring a whole group at a time, as soon as the ring would overflow.
  return s.kivi ? (over + s.group - 1) / s.group * s.group : over;
}

int32_t BlockedKVCache::StoredTokensFor(int32_t tokens) const {
  return std::max(StoredTokens(k_, tokens), StoredTokens(v_, tokens));
}

size_t BlockedKVCache::SideBlockBytes(bool key, int32_t bs) const {
  const Side& s = key ? k_ : v_;
  const size_t per_head = s.kivi ? static_cast<size_t>(bs / s.group) * s.row_bytes
                                 : static_cast<size_t>(bs) * s.row_bytes;
  return per_head * spec_.n_kv_heads;
}

size_t BlockedKVCache::HeadBlockBytes(bool key) const {
  const Side& s = key ? k_ : v_;
  const int32_t bs = block_size();
  return s.kivi ? static_cast<size_t>(bs / s.group) * s.row_bytes : static_cast<size_t>(bs) * s.row_bytes;
}

Status BlockedKVCache::Reserve(int32_t n) {
  const int64_t need = static_cast<int64_t>(size_) + n;
  if (n < 0 || need > spec_.max_tokens) {
    return OutOfRange("KV cache full: " + std::to_string(need) + " tokens needed, capacity " +
                      std::to_string(spec_.max_tokens));
  }
  return EnsureStorage(StoredTokensFor(static_cast<int32_t>(need)));
}

uint8_t* BlockedKVCache::HeadBlock(int32_t layer, bool key, int32_t h, int32_t slot) const {
  return StorageBase(layer, key) + h * StorageHeadStride(key) +
         static_cast<size_t>(block_table()[slot / block_size()]) * StorageBlockStride(key);
}

void BlockedKVCache::EncodeRow(const Side& s, bool key, int32_t layer, int32_t h, int32_t slot,
                               const float* x) {
  const int32_t bs = block_size();
  uint8_t* head = HeadBlock(layer, key, h, slot);
  if (s.tiling != KVTiling::kRows) {  // quantize, then scatter into the slot's tile lane
    uint8_t row[kMaxTiledRowBytes];
    QuantizeKVRow(s.type, x, spec_.head_dim, s.group, row);
    const int32_t in_block = slot % bs;
    PackTileRow(s.tiling, s.type, row, spec_.head_dim, s.group, in_block % kKVTileSlots,
                head + static_cast<size_t>(in_block / kKVTileSlots) * kKVTileSlots * s.row_bytes);
    return;
  }
  QuantizeKVRow(s.type, x, spec_.head_dim, s.quantized ? s.group : 1,
                head + static_cast<size_t>(slot % bs) * s.row_bytes);
}

void BlockedKVCache::Flush(Side& s, bool key, int32_t layer, int32_t from, int32_t to) {
  const int32_t hd = spec_.head_dim, bs = block_size();
  for (int32_t h = 0; h < spec_.n_kv_heads; ++h) {
    const float* ring = s.ring[layer].data() + static_cast<size_t>(h) * s.residual * hd;
    if (!s.kivi) {
      for (int32_t t = from; t < to; ++t) EncodeRow(s, key, layer, h, t, ring + (t % s.residual) * hd);
      continue;
    }
    scratch_.resize(static_cast<size_t>(s.group) * hd);
    for (int32_t g0 = from; g0 < to; g0 += s.group) {
      for (int32_t j = 0; j < s.group; ++j) {
        std::memcpy(scratch_.data() + j * hd, ring + ((g0 + j) % s.residual) * hd, hd * sizeof(float));
      }
      uint8_t* dst = HeadBlock(layer, key, h, g0) + static_cast<size_t>((g0 % bs) / s.group) * s.row_bytes;
      QuantizeKVChannelGroup(s.type, scratch_.data(), hd, s.group, dst);
    }
  }
}

void BlockedKVCache::Write(int32_t layer, int32_t pos, int32_t n, const float* k, const float* v) {
  KVC_CHECK(pos >= 0 && pos + n <= spec_.max_tokens && layer >= 0 && layer < spec_.n_layers);
  const int32_t hd = spec_.head_dim, heads = spec_.n_kv_heads;
  for (int side = 0; side < 2; ++side) {
    Side& s = side == 0 ? k_ : v_;
    const float* src = side == 0 ? k : v;
    const bool key = side == 0;
    if (s.residual == 0) {
      for (int32_t t = 0; t < n; ++t)
        for (int32_t h = 0; h < heads; ++h)
          EncodeRow(s, key, layer, h, pos + t, src + (static_cast<size_t>(t) * heads + h) * hd);
      s.stored[layer] = pos + n;
      continue;
    }
    for (int32_t t = 0; t < n; ++t) {
      const int32_t slot = pos + t;
      // Make room in the ring: quantize what the new slot pushes out of the residual window.
      const int32_t target = StoredTokens(s, slot + 1);
      if (target > s.stored[layer]) {
        Flush(s, key, layer, s.stored[layer], target);
        s.stored[layer] = target;
      }
      float* ring = s.ring[layer].data();
      for (int32_t h = 0; h < heads; ++h) {
        std::memcpy(ring + (static_cast<size_t>(h) * s.residual + slot % s.residual) * hd,
                    src + (static_cast<size_t>(t) * heads + h) * hd, hd * sizeof(float));
      }
    }
  }
}

void BlockedKVCache::Commit(int32_t new_size) {
  KVC_CHECK(new_size >= 0 && new_size <= spec_.max_tokens);
  size_ = new_size;
  if (spec_.window > 0 && size_ - spec_.window > first_) {
    first_ = size_ - spec_.window;
    ReleaseStorageBelow(first_);
  }
}

KVSideView BlockedKVCache::SideView(const Side& s, bool key, int32_t layer) const {
  KVSideView sv;
  sv.type = s.type;
  sv.group = s.quantized ? s.group : 1;
  sv.kivi = s.kivi;
  sv.base = StorageBase(layer, key);
  sv.block_stride = StorageBlockStride(key);
  sv.head_stride = StorageHeadStride(key);
  sv.row_bytes = s.row_bytes;
  sv.n_stored = s.residual == 0 ? spec_.max_tokens : s.stored[layer];
  sv.ring = s.ring[layer].data();
  sv.ring_capacity = s.residual;
  sv.tiling = s.tiling;
  return sv;
}

KVView BlockedKVCache::View(int32_t layer, int32_t n_tokens) const {
  KVView view;
  view.n_tokens = n_tokens;
  view.first_token = first_;
  view.head_dim = spec_.head_dim;
  view.block_size = block_size();
  view.block_table = block_table();
  view.k = SideView(k_, true, layer);
  view.v = SideView(v_, false, layer);
  return view;
}

void BlockedKVCache::Truncate(int32_t n) {
  KVC_CHECK(n >= 0 && n <= size_ && n >= first_);
  for (Side* s : {&k_, &v_}) {
    for (int32_t l = 0; l < spec_.n_layers; ++l) {
      if (s->residual == 0 || s->stored[l] <= n) {
        s->stored[l] = std::min(s->stored[l], n);
        continue;
      }
      // Slots [n, stored) were quantized; the kept part of a cut group goes back to the ring
      // (decoded) so that groups stay aligned.
      const int32_t keep = s->kivi ? n / s->group * s->group : n;
      const int32_t hd = spec_.head_dim;
      std::vector<float> rows(static_cast<size_t>(s->group) * hd);
      for (int32_t h = 0; h < spec_.n_kv_heads && keep < n; ++h) {
        const uint8_t* src = HeadBlock(l, s == &k_, h, keep) +
                             static_cast<size_t>((keep % block_size()) / s->group) * s->row_bytes;
        DequantizeKVChannelGroup(s->type, src, hd, s->group, rows.data());
        float* ring = s->ring[l].data() + static_cast<size_t>(h) * s->residual * hd;
        for (int32_t t = keep; t < n; ++t)
          std::memcpy(ring + (t % s->residual) * hd, rows.data() + (t - keep) * hd, hd * sizeof(float));
      }
      s->stored[l] = keep;
    }
  }
  size_ = n;
  ReleaseStorageFrom(StoredTokensFor(n));
}

size_t BlockedKVCache::BytesAllocated() const {
  size_t ring = 0;
  for (const Side* s : {&k_, &v_}) {
    ring += static_cast<size_t>(spec_.n_layers) * spec_.n_kv_heads * s->residual * spec_.head_dim * sizeof(float);
  }
  return StorageBytes() + ring;
}

}  // namespace kvc

namespace kvc {

void BlockedKVCache::ReadRows(int32_t layer, int32_t from, int32_t n, float* k, float* v) const {
  const KVView view = View(layer, from + n);
  const int32_t hd = spec_.head_dim, heads = spec_.n_kv_heads;
  for (int side = 0; side < 2; ++side) {
    const KVSideView& s = side == 0 ? view.k : view.v;
    float* out = side == 0 ? k : v;
    for (int32_t t = 0; t < n; ++t) {
      const int32_t slot = from + t;
      for (int32_t h = 0; h < heads; ++h) {
        float* dst = out + (static_cast<size_t>(t) * heads + h) * hd;
        if (slot >= s.n_stored) {
          std::memcpy(dst, view.Residual(s, h, slot), hd * sizeof(float));
        } else if (s.kivi) {
          DequantizeKVChannelGroupRow(s.type, view.Stored(s, h, slot), hd, s.group, slot % s.group, dst);
        } else {
          uint8_t row[kMaxTiledRowBytes];
          DequantizeKVRow(s.type, StoredRow(view, s, h, slot, row), hd, s.group, dst);
        }
      }
    }
  }
}

Status BlockedKVCache::RemoveRange(int32_t keep, int32_t count, const Rekey& rekey) {
  if (keep < first_ || count < 0 || keep + count > size_) {
    return InvalidArgument("cannot remove slots [" + std::to_string(keep) + ", " +
                           std::to_string(keep + count) + ") from a cache of " + std::to_string(size_));
  }
  if (count == 0) return Status::Ok();
  const int32_t moved = size_ - keep - count;
  const size_t row = static_cast<size_t>(spec_.n_kv_heads) * spec_.head_dim;
  // Decode what moves, cut the cache back to `keep`, then append it again at its new slots.
  std::vector<std::vector<float>> ks(spec_.n_layers), vs(spec_.n_layers);
  for (int32_t l = 0; l < spec_.n_layers; ++l) {
    ks[l].resize(moved * row);
    vs[l].resize(moved * row);
    ReadRows(l, keep + count, moved, ks[l].data(), vs[l].data());
    if (rekey && moved > 0) rekey(ks[l].data(), moved, -count);
  }
  Truncate(keep);
  KVC_RETURN_IF_ERROR(Reserve(moved));
  for (int32_t l = 0; l < spec_.n_layers; ++l) Write(l, keep, moved, ks[l].data(), vs[l].data());
  Commit(keep + moved);
  return Status::Ok();
}

}  // namespace kvc
