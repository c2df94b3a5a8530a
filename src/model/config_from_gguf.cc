#include "model/config_from_gguf.h"

namespace kvc {
namespace {

// A required positive dimension `{arch}.key`, bounded so products stay well inside 64 bits.
Result<int32_t> Dim(const GgufFile& g, const std::string& key) {
  KVC_ASSIGN_OR_RETURN(uint64_t v, g.GetUint(key));
  if (v == 0 || v > (1u << 30)) {
    return Corrupt(g.label() + ": metadata '" + key + "' = " + std::to_string(v) +
                   " is out of range");
  }
  return static_cast<int32_t>(v);
}

// An optional dimension: `fallback` when the key is absent, an error when present but bad.
Result<int32_t> OptionalDim(const GgufFile& g, const std::string& key, int32_t fallback) {
  if (!g.Find(key)) return fallback;
  return Dim(g, key);
}

}  // namespace

Result<ModelConfig> ConfigFromGguf(const GgufFile& g) {
  ModelConfig c;
  KVC_ASSIGN_OR_RETURN(std::string arch, g.GetString("general.architecture"));
  if (arch == "llama" || arch == "mistral" || arch == "qwen2") {
    c.arch = Arch::kLlama;
    c.qkv_bias = arch == "qwen2";
  } else if (arch == "gpt2") {
    c.arch = Arch::kGpt2;
  } else {
    return Unsupported(g.label() + ": unsupported architecture '" + arch +
                       "' (supported: llama, mistral, qwen2, gpt2)");
  }
  auto name = g.GetString("general.name");
  c.name = name.ok() ? name.value() : arch;
  const std::string p = arch + ".";
  KVC_ASSIGN_OR_RETURN(c.dim, Dim(g, p + "embedding_length"));
  KVC_ASSIGN_OR_RETURN(c.n_layers, Dim(g, p + "block_count"));
  KVC_ASSIGN_OR_RETURN(c.n_heads, Dim(g, p + "attention.head_count"));
  KVC_ASSIGN_OR_RETURN(c.ffn_dim, Dim(g, p + "feed_forward_length"));
  KVC_ASSIGN_OR_RETURN(c.context_length, Dim(g, p + "context_length"));
  KVC_ASSIGN_OR_RETURN(c.n_kv_heads, OptionalDim(g, p + "attention.head_count_kv", c.n_heads));
  KVC_ASSIGN_OR_RETURN(c.head_dim, OptionalDim(g, p + "attention.key_length", c.dim / c.n_heads));
  if (c.head_dim <= 0) {
    return Corrupt(g.label() + ": embedding_length " + std::to_string(c.dim) +
                   " is smaller than head_count " + std::to_string(c.n_heads));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return Corrupt(g.label() + ": head_count " + std::to_string(c.n_heads) +
                   " is not a multiple of head_count_kv " + std::to_string(c.n_kv_heads));
  }
  if (g.Find(p + "attention.sliding_window")) {  // 0 means full attention here
    KVC_ASSIGN_OR_RETURN(uint64_t w, g.GetUint(p + "attention.sliding_window"));
    if (w > (1u << 30)) return Corrupt(g.label() + ": attention.sliding_window is out of range");
    c.sliding_window = static_cast<int32_t>(w);
  }
  const char* eps_key =
      c.arch == Arch::kGpt2 ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon";
  c.norm_eps = static_cast<float>(g.GetFloatOr(p + eps_key, 1e-5));
  c.rope_theta = static_cast<float>(g.GetFloatOr(p + "rope.freq_base", 10000.0));
  c.rope_dim = static_cast<int32_t>(g.GetUintOr(p + "rope.dimension_count", c.head_dim));
  // Tensor infos are part of the header: shapes only, the data is never touched.
  if (const GgufTensorInfo* embd = g.FindTensor("token_embd.weight")) {
    if (embd->dims.size() != 2) return Corrupt(g.label() + ": token_embd.weight must be 2-D");
    c.vocab_size = static_cast<int32_t>(embd->dims[1]);
  }
  c.tied_embeddings = g.FindTensor("output.weight") == nullptr;
  return c;
}

Result<ModelConfig> ReadConfigFromGguf(const std::string& path) {
  KVC_ASSIGN_OR_RETURN(auto g, GgufFile::Open(path));
  return ConfigFromGguf(*g);
}

}  // namespace kvc
