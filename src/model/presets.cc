#include "model/presets.h"

#include <string>

namespace kvc {
namespace {

struct Preset {
  std::string_view name;
  ModelConfig config;
};

ModelConfig Llama(int32_t dim, int32_t layers, int32_t heads, int32_t kv_heads, int32_t ffn,
                  int32_t vocab, int32_t context, float rope_theta, float eps) {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = kv_heads;
  c.head_dim = dim / heads;
  c.ffn_dim = ffn;
  c.vocab_size = vocab;
  c.context_length = context;
  c.rope_theta = rope_theta;
  c.rope_dim = c.head_dim;
  c.norm_eps = eps;
  return c;
}

ModelConfig Gpt2(int32_t dim, int32_t layers, int32_t heads, int32_t ffn, int32_t vocab,
                 int32_t context) {
  ModelConfig c;
  c.arch = Arch::kGpt2;
  c.dim = dim;
  c.n_layers = layers;
  c.n_heads = heads;
  c.n_kv_heads = heads;
  c.head_dim = dim / heads;
  c.ffn_dim = ffn;
  c.vocab_size = vocab;
  c.context_length = context;
  c.norm_eps = 1e-5f;
  c.tied_embeddings = true;
  return c;
}

// Built once; values from each model's published config (HF config.json / paper).
const std::vector<Preset>& Presets() {
  static const std::vector<Preset> presets = [] {
    std::vector<Preset> p;
    // Unit-test sizes: every matrix width is a multiple of 32 so all weight types apply.
    p.push_back({"tiny", Llama(64, 2, 4, 2, 192, 512, 256, 10000.0f, 1e-5f)});
    p.push_back({"tiny-gpt2", Gpt2(64, 2, 4, 256, 512, 256)});
    p.push_back({"gpt2-124m", Gpt2(768, 12, 12, 3072, 50257, 1024)});
    {
      ModelConfig c = Llama(896, 24, 14, 2, 4864, 151936, 32768, 1000000.0f, 1e-6f);
      c.tied_embeddings = true;
      c.qkv_bias = true;
      p.push_back({"qwen2.5-0.5b", c});
    }
    {
      // Llama 3.2 1B's layers with a 32000-token SentencePiece vocabulary and an untied output.
      ModelConfig c = Llama(2048, 16, 32, 8, 8192, 32000, 131072, 500000.0f, 1e-5f);
      p.push_back({"llama-3.2-1b", c});
    }
    p.push_back({"tinyllama-1.1b", Llama(2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, 1e-5f)});
    p.push_back({"llama-2-7b", Llama(4096, 32, 32, 32, 11008, 32000, 4096, 10000.0f, 1e-5f)});
    {
      ModelConfig c = Llama(4096, 32, 32, 8, 14336, 32000, 32768, 10000.0f, 1e-5f);
      c.sliding_window = 4096;  // Mistral 7B v0.1
      p.push_back({"mistral-7b", c});
    }
    p.push_back(
        {"llama-3.1-8b", Llama(4096, 32, 32, 8, 14336, 128256, 131072, 500000.0f, 1e-5f)});
    p.push_back({"gpt3-175b", Gpt2(12288, 96, 96, 49152, 50257, 2048)});
    for (Preset& e : p) e.config.name = std::string(e.name);
    return p;
  }();
  return presets;
}

}  // namespace

const std::vector<std::string_view>& PresetNames() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> n;
    for (const Preset& p : Presets()) n.push_back(p.name);
    return n;
  }();
  return names;
}

Result<ModelConfig> FindPreset(std::string_view name) {
  for (const Preset& p : Presets()) {
    if (p.name == name) return p.config;
  }
  std::string known;
  for (std::string_view n : PresetNames()) known += (known.empty() ? "" : ", ") + std::string(n);
  return NotFound("unknown model preset '" + std::string(name) + "' (known: " + known + ")");
}

}  // namespace kvc
