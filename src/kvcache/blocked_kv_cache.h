// BlockedKVCache: the storage logic shared by every layout. Slots are addressed through a block
// table (a contiguous cache is one block per sequence); each of K and V is stored in its own
// format (f32/f16/bf16, or q8/q4/q2 in per-token or KIVI groups). Quantized sides keep their most
// recent `residual` tokens in an f32 ring and quantize a token (per-token groups) or a group of
// tokens (KIVI keys) when it leaves the ring. Layouts supply the blocks through the hooks.
#pragma once

#include <memory>
#include <vector>

#include "kvcache/kv_cache.h"

namespace kvc {

class BlockedKVCache : public KVCache {
 public:
  const KVSpec& spec() const override { return spec_; }
  int32_t size() const override { return size_; }
  Status Reserve(int32_t n) override;
  void Write(int32_t layer, int32_t pos, int32_t n, const float* k, const float* v) override;
  void Commit(int32_t new_size) override;
  KVView View(int32_t layer, int32_t n_tokens) const override;
  void Truncate(int32_t n) override;
  size_t BytesAllocated() const override;
  Status RemoveRange(int32_t keep, int32_t count, const Rekey& rekey) override;

  // Decodes slots [from, from + n) of `layer` to f32 rows [n, kv_heads * head_dim].
  void ReadRows(int32_t layer, int32_t from, int32_t n, float* k, float* v) const;

  // Slots of a side held in blocks once `tokens` tokens are written (the rest are residual).
  int32_t StoredTokensK(int32_t tokens) const { return StoredTokens(k_, tokens); }
  int32_t StoredTokensV(int32_t tokens) const { return StoredTokens(v_, tokens); }

 protected:
  explicit BlockedKVCache(const KVSpec& spec);

  // Bytes of one block (all heads) of a side, for `block_size` tokens.
  size_t SideBlockBytes(bool key, int32_t block_size) const;
  // Tokens of block storage needed (max over K and V) once `tokens` tokens are written.
  int32_t StoredTokensFor(int32_t tokens) const;

  // Stores both sides in 16-slot tiles (tensor/kv_view.h: KVTiling) when their format allows
  // it (per-token q8 or q4 with groups of a multiple of 16, head_dim 32/64/128/256) and blocks
  // hold a multiple of 16 slots. Called by layouts before anything is written.
  void UseTilesIfPossible(int32_t block_size);

  // Layout hooks.
  // Makes blocks exist for slots [0, stored); fails without side effects.
  virtual Status EnsureStorage(int32_t stored) = 0;
  // Releases blocks that hold only slots >= stored (after truncation).
  virtual void ReleaseStorageFrom(int32_t stored) = 0;
  // Releases blocks that hold only slots < first (left the sliding window).
  virtual void ReleaseStorageBelow(int32_t first) {}
  virtual int32_t block_size() const = 0;
  virtual const int32_t* block_table() const = 0;
  virtual uint8_t* StorageBase(int32_t layer, bool key) const = 0;
  // Bytes between a head's consecutive physical blocks, and between heads.
  virtual size_t StorageBlockStride(bool key) const = 0;
  virtual size_t StorageHeadStride(bool key) const = 0;
  // Bytes of one head's part of a block.
  size_t HeadBlockBytes(bool key) const;
  virtual size_t StorageBytes() const = 0;

 private:
  struct Side {
    KVType type = KVType::kF32;
    int32_t group = 0;      // see KVSideView::group
    bool kivi = false;
    bool quantized = false;
    int32_t residual = 0;   // ring capacity (0: rows are encoded on write)
    size_t row_bytes = 0;   // per-token row, or KIVI token-group bytes
    KVTiling tiling = KVTiling::kRows;
    std::vector<int32_t> stored;               // [layer] slots already in blocks
    std::vector<std::vector<float>> ring;      // [layer] -> [kv_head][residual][head_dim]
  };
  void InitSide(Side& s, KVType type, bool kivi) const;
  int32_t StoredTokens(const Side& s, int32_t tokens) const;
  // Start of head h's part of the block holding `slot` (a stored slot) in one layer and side.
  uint8_t* HeadBlock(int32_t layer, bool key, int32_t h, int32_t slot) const;
  // Encodes slots [from, to) of `layer` from the ring into blocks.
  void Flush(Side& s, bool key, int32_t layer, int32_t from, int32_t to);
  void EncodeRow(const Side& s, bool key, int32_t layer, int32_t h, int32_t slot, const float* x);
  KVSideView SideView(const Side& s, bool key, int32_t layer) const;

  KVSpec spec_;
  int32_t size_ = 0;
  int32_t first_ = 0;  // slots below were dropped by the window
  Side k_, v_;
  std::vector<float> scratch_;  // KIVI group gather [group][head_dim]
};

}  // namespace kvc
