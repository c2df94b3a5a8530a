#include "kvcache/block_hash.h"

namespace kvc {
namespace {

// splitmix64 finalizer: a cheap, well-mixed step (not cryptographic; hits are verified).
uint64_t Mix(uint64_t h, uint64_t x) {
  uint64_t z = h ^ (x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

uint64_t BlockHashSeed(const KVSpec& spec, int32_t block_size) {
  uint64_t h = 0x6b7663616368655full;  // "kvcache_"
  for (int64_t x : {int64_t{spec.n_layers}, int64_t{spec.n_kv_heads}, int64_t{spec.head_dim},
                    int64_t(spec.type_k), int64_t(spec.type_v), int64_t{spec.group},
                    int64_t(spec.grouping), int64_t{spec.residual}, int64_t{spec.window},
                    int64_t{block_size}}) {
    h = Mix(h, static_cast<uint64_t>(x));
  }
  return h;
}

uint64_t ChainBlockHash(uint64_t parent, std::span<const int32_t> tokens) {
  uint64_t h = Mix(parent, tokens.size());
  for (int32_t t : tokens) h = Mix(h, static_cast<uint32_t>(t));
  return h;
}

}  // namespace kvc
