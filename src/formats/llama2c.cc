#include "formats/llama2c.h"

#include <cstring>

namespace kvc {

bool LooksLikeGguf(const uint8_t* data, size_t size) {
  return size >= 4 && std::memcmp(data, "GGUF", 4) == 0;
}

Result<std::unique_ptr<Llama2cCheckpoint>> ParseLlama2c(const uint8_t* data, size_t size,
                                                        const std::string& label) {
  auto bad = [&](const std::string& what) {
    return Corrupt(label + ": invalid llama2.c checkpoint: " + what);
  };
  int32_t h[7];
  if (LooksLikeGguf(data, size)) return bad("this is a GGUF file; open it as GGUF");
  if (size >= 4 && std::memcmp(data, "24ka", 4) == 0) {  // uint32 0x616b3432 "ak42"
    return bad("llama2.c export format v1/v2 (magic \"ak42\") is not supported; export with "
               "--version 0 (legacy run.c format)");
  }
  if (size < sizeof(h)) return bad("file is too small for the 28-byte header");
  std::memcpy(h, data, sizeof(h));
  auto ck = std::make_unique<Llama2cCheckpoint>();
  Llama2cConfig& c = ck->config;
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  c.shared_classifier = h[5] > 0;
  c.vocab_size = h[5] > 0 ? h[5] : (h[5] == INT32_MIN ? 0 : -h[5]);
  c.seq_len = h[6];
  constexpr int32_t kLimit = 1 << 20;
  auto in_range = [&](int32_t v) { return v > 0 && v <= kLimit; };
  if (!in_range(c.dim) || !in_range(c.hidden_dim) || !in_range(c.n_layers) ||
      !in_range(c.n_heads) || !in_range(c.n_kv_heads) || !in_range(c.vocab_size) ||
      !in_range(c.seq_len) || c.n_layers > 4096) {
    return bad("header values out of range (dim " + std::to_string(c.dim) + ", hidden " +
               std::to_string(c.hidden_dim) + ", layers " + std::to_string(c.n_layers) +
               ", heads " + std::to_string(c.n_heads) + ", kv heads " +
               std::to_string(c.n_kv_heads) + ", vocab " + std::to_string(h[5]) + ", seq_len " +
               std::to_string(c.seq_len) + ")");
  }
  if (c.dim % c.n_heads != 0 || c.n_heads % c.n_kv_heads != 0 || (c.dim / c.n_heads) % 2 != 0) {
    return bad("dim " + std::to_string(c.dim) + " / heads " + std::to_string(c.n_heads) + " / kv heads " +
               std::to_string(c.n_kv_heads) + " do not give an even head size shared by the kv heads");
  }
  const uint64_t dim = c.dim, hid = c.hidden_dim, L = c.n_layers, vocab = c.vocab_size;
  const uint64_t head = dim / c.n_heads, kv_dim = head * c.n_kv_heads;
  // Floats in file order; freq_cis_real/imag (seq_len * head/2 each) are present but unused.
  const uint64_t counts[] = {vocab * dim, L * dim,       L * dim * dim, L * kv_dim * dim,
                             L * kv_dim * dim, L * dim * dim, L * dim,  L * hid * dim,
                             L * dim * hid, L * hid * dim, dim,          c.seq_len * head / 2,
                             c.seq_len * head / 2, c.shared_classifier ? 0 : vocab * dim};
  uint64_t total = 0;
  for (uint64_t n : counts) total += n;
  const uint64_t expected = sizeof(h) + total * sizeof(float);
  if (size != expected) {
    return bad("file has " + std::to_string(size) + " bytes but its header implies " +
               std::to_string(expected) + (size < expected ? " (truncated?)" : ""));
  }
  const float* p = reinterpret_cast<const float*>(data + sizeof(h));
  const float** dst[] = {&ck->token_embedding, &ck->rms_att, &ck->wq,  &ck->wk,
                         &ck->wv,              &ck->wo,      &ck->rms_ffn, &ck->w1,
                         &ck->w2,              &ck->w3,      &ck->rms_final};
  for (int i = 0; i < 11; ++i) {
    *dst[i] = p;
    p += counts[i];
  }
  p += counts[11] + counts[12];
  ck->wcls = c.shared_classifier ? ck->token_embedding : p;
  return ck;
}

Result<std::unique_ptr<Llama2cCheckpoint>> OpenLlama2c(const std::string& path, MappedFile::Mode mode) {
  KVC_ASSIGN_OR_RETURN(MappedFile map, MappedFile::Open(path, mode));
  if (LooksLikeGguf(map.data(), map.size())) {
    return InvalidArgument(path + " is a GGUF file, not a llama2.c checkpoint");
  }
  KVC_ASSIGN_OR_RETURN(auto ck, ParseLlama2c(map.data(), map.size(), path));
  ck->map = std::move(map);  // moving a mapping keeps its address, so the pointers stay valid
  return ck;
}

}  // namespace kvc
