// libFuzzer target: ParseLlama2c on arbitrary bytes. A parsed checkpoint's weight pointers must
// cover exactly the input (every float is read, so ASan catches any pointer past the end).
#include <cstdint>
#include <cstring>

#include "formats/llama2c.h"

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

namespace {

// Reads n floats at p, which must lie inside [lo, hi).
uint64_t Touch(const float* p, uint64_t n, const uint8_t* lo, const uint8_t* hi) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  FUZZ_CHECK(b >= lo && n * sizeof(float) <= static_cast<uint64_t>(hi - b));
  uint64_t h = 0;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, b + 4 * i, 4);
    h += bits;
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)kvc::LooksLikeGguf(data, size);
  auto r = kvc::ParseLlama2c(data, size, "fuzz");
  if (!r.ok()) {
    FUZZ_CHECK(!r.status().message().empty());
    return 0;
  }
  const kvc::Llama2cCheckpoint& ck = **r;
  const kvc::Llama2cConfig& c = ck.config;
  FUZZ_CHECK(c.dim > 0 && c.n_heads > 0 && c.n_kv_heads > 0 && c.vocab_size > 0);
  const uint64_t dim = c.dim, hid = c.hidden_dim, L = c.n_layers, vocab = c.vocab_size;
  const uint64_t kv_dim = dim / c.n_heads * c.n_kv_heads;
  const uint8_t* end = data + size;
  volatile uint64_t sink = 0;
  sink = sink + Touch(ck.token_embedding, vocab * dim, data, end);
  sink = sink + Touch(ck.rms_att, L * dim, data, end);
  sink = sink + Touch(ck.wq, L * dim * dim, data, end);
  sink = sink + Touch(ck.wk, L * kv_dim * dim, data, end);
  sink = sink + Touch(ck.wv, L * kv_dim * dim, data, end);
  sink = sink + Touch(ck.wo, L * dim * dim, data, end);
  sink = sink + Touch(ck.rms_ffn, L * dim, data, end);
  sink = sink + Touch(ck.w1, L * hid * dim, data, end);
  sink = sink + Touch(ck.w2, L * dim * hid, data, end);
  sink = sink + Touch(ck.w3, L * hid * dim, data, end);
  sink = sink + Touch(ck.rms_final, dim, data, end);
  sink = sink + Touch(ck.wcls, vocab * dim, data, end);
  FUZZ_CHECK(!c.shared_classifier || ck.wcls == ck.token_embedding);
  return 0;
}
