#include "model/synth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "quant/quantize.h"

namespace kvc {
namespace {

// splitmix64: a tiny, fast generator; one call per weight.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

uint64_t HashName(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
  return h;
}

// About N(0, 1) from 64 random bits: the sum of four 16-bit uniforms (Irwin-Hall), centred and
// scaled to unit variance. Bounded by +-3.46, which is fine for weights and cheaper than
// Box-Muller.
inline float Gauss(uint64_t r) {
  const uint32_t s = static_cast<uint32_t>(r & 0xffff) + static_cast<uint32_t>((r >> 16) & 0xffff) +
                     static_cast<uint32_t>((r >> 32) & 0xffff) + static_cast<uint32_t>(r >> 48);
  constexpr float kMean = 2.0f * 65535.0f, kInvStd = 1.7320508f / 65536.0f;
  return (static_cast<float>(s) - kMean) * kInvStd;
}

struct TensorPlan {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the row length
  DType type;
  float mean;  // norms: 1 with std 0
  float std;
};

// Fills one tensor. Rows are cut into fixed chunks, each with its own stream derived from
// (seed, name, chunk), so the bytes do not depend on the number of threads.
Status FillTensor(const TensorPlan& t, uint64_t seed, int threads, uint8_t* dst) {
  const int64_t cols = t.dims[0];
  int64_t rows = 1;
  for (size_t i = 1; i < t.dims.size(); ++i) rows *= t.dims[i];
  const int64_t chunk_rows = std::max<int64_t>(1, (int64_t{1} << 16) / cols);
  const int64_t n_chunks = (rows + chunk_rows - 1) / chunk_rows;
  const size_t row_bytes = RowBytes(t.type, cols);
  const uint64_t tensor_seed = Mix(seed ^ HashName(t.name));
  std::atomic<int64_t> next{0};
  auto work = [&] {
    std::vector<float> buf(static_cast<size_t>(chunk_rows * cols));
    for (int64_t c; (c = next.fetch_add(1)) < n_chunks;) {
      const int64_t r0 = c * chunk_rows, nr = std::min(chunk_rows, rows - r0);
      const int64_t n = nr * cols;
      uint64_t state = Mix(tensor_seed + static_cast<uint64_t>(c));
      for (int64_t i = 0; i < n; ++i) {
        state += 0x9e3779b97f4a7c15ull;
        buf[i] = t.mean + t.std * Gauss(Mix(state));
      }
      // Rows are whole blocks (checked), so a chunk of rows quantizes as one long row.
      QuantizeRow(t.type, buf.data(), dst + r0 * row_bytes, n);
    }
  };
  const int n_threads = static_cast<int>(std::min<int64_t>(threads, n_chunks));
  std::vector<std::thread> pool;
  for (int i = 1; i < n_threads; ++i) pool.emplace_back(work);
  work();
  for (std::thread& th : pool) th.join();
  return Status::Ok();
}

// llama.cpp's llama_ftype for a file whose matrices are all `type`.
uint32_t FileType(DType type) {
  switch (type) {
    case DType::kF32: return 0;
    case DType::kF16: return 1;
    case DType::kQ4_0: return 2;
    case DType::kQ8_0: return 7;
    case DType::kBF16: return 32;
    case DType::kQ8_0_R16:
    case DType::kQ4_0_R16:
      break;  // run-time layouts, never written
  }
  return 0;
}

// SentencePiece-style pieces in a fixed order: "▁", single characters, then English-like
// consonant/vowel alternations of growing length, each as a word start ("▁x") and a word part.
std::vector<std::string> GeneratePieces(size_t count) {
  static const std::string kSpace = "\xe2\x96\x81";  // U+2581
  static const std::string kConsonants = "tnshrdlcmwfgypbvkjxqz", kVowels = "eaoiu";
  std::vector<std::string> out = {kSpace};
  auto emit = [&](const std::string& s, bool word_start) {
    if (out.size() < count && word_start) out.push_back(kSpace + s);
    if (out.size() < count) out.push_back(s);
  };
  for (char c : std::string("etaoinshrdlcumwfgypbvkjxqz")) emit(std::string(1, c), true);
  for (char c : std::string("TAISOWHBCMFDNLPRGEYJUKVQXZ")) emit(std::string(1, c), true);
  for (char c : std::string("0123456789.,!?'\"-:;()")) emit(std::string(1, c), false);
  for (size_t len = 2; out.size() < count; ++len) {
    for (int start_vowel = 0; start_vowel < 2 && out.size() < count; ++start_vowel) {
      // Odometer over the alternating alphabets, first position slowest.
      std::vector<const std::string*> alpha(len);
      for (size_t i = 0; i < len; ++i) alpha[i] = ((i + start_vowel) % 2) ? &kVowels : &kConsonants;
      std::vector<size_t> idx(len, 0);
      while (out.size() < count) {
        std::string s(len, ' ');
        for (size_t i = 0; i < len; ++i) s[i] = (*alpha[i])[idx[i]];
        emit(s, true);
        size_t k = len;
        while (k > 0 && ++idx[k - 1] == alpha[k - 1]->size()) idx[--k] = 0;
        if (k == 0) break;
      }
    }
  }
  return out;
}

Status SetGeneratedVocab(int32_t vocab_size, GgufWriter& w) {
  constexpr int32_t kFixed = 3 + 256;
  if (vocab_size < kFixed + 1) {
    return InvalidArgument("a generated vocabulary needs at least " + std::to_string(kFixed + 1) +
                           " tokens (3 special, 256 bytes, 1 piece), not " +
                           std::to_string(vocab_size));
  }
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};  // unknown, control, control
  char hex[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(hex, sizeof(hex), "<0x%02X>", b);
    tokens.push_back(hex);
    types.push_back(6);  // byte
  }
  std::vector<float> scores(tokens.size(), 0.0f);
  const std::vector<std::string> pieces = GeneratePieces(static_cast<size_t>(vocab_size - kFixed));
  for (size_t k = 0; k < pieces.size(); ++k) {
    tokens.push_back(pieces[k]);
    types.push_back(1);  // normal
    scores.push_back(-static_cast<float>(k + 1));  // earlier pieces merge first
  }
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetF32Array("tokenizer.ggml.scores", scores);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  w.SetU32("tokenizer.ggml.unknown_token_id", 0);
  w.SetU32("tokenizer.ggml.bos_token_id", 1);
  w.SetU32("tokenizer.ggml.eos_token_id", 2);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  w.SetBool("tokenizer.ggml.add_eos_token", false);
  return Status::Ok();
}

// Copies every tokenizer.* key; returns the vocabulary size.
Result<int32_t> CopyVocab(const std::string& path, GgufWriter& w) {
  KVC_ASSIGN_OR_RETURN(auto src, GgufFile::Open(path));
  KVC_ASSIGN_OR_RETURN(auto tokens, src->GetStringArray("tokenizer.ggml.tokens"));
  if (tokens.empty() || tokens.size() > (1u << 30)) {
    return Corrupt(path + ": tokenizer.ggml.tokens has " + std::to_string(tokens.size()) + " entries");
  }
  for (const auto& [key, value] : src->metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) w.SetValue(key, value);
  }
  return static_cast<int32_t>(tokens.size());
}

Status CheckConfig(const ModelConfig& c) {
  auto bad = [&](const std::string& what) {
    return InvalidArgument("model config '" + c.name + "': " + what);
  };
  if (c.dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
      c.ffn_dim <= 0 || c.vocab_size <= 0 || c.context_length <= 0) {
    return bad("every size must be positive");
  }
  if (c.n_heads % c.n_kv_heads != 0) return bad("heads must be a multiple of kv heads");
  if (c.arch == Arch::kGpt2 && (c.n_kv_heads != c.n_heads || c.qkv_bias)) {
    return bad("gpt2 has as many kv heads as heads and no separate q/k/v biases");
  }
  const int32_t rope_dim = c.rope_dim ? c.rope_dim : c.head_dim;
  if (c.arch == Arch::kLlama && (rope_dim > c.head_dim || rope_dim % 2 != 0)) {
    return bad("rope dimension must be even and at most the head size");
  }
  return Status::Ok();
}

// Every tensor of the model with its init. Scales keep activations O(1) at any depth: inputs to
// each matrix are normalized, projections use std 1/sqrt(fan_in), and the two projections back
// into the residual stream are shrunk by 1/sqrt(2 layers) so its variance stays bounded.
std::vector<TensorPlan> PlanTensors(const ModelConfig& c, DType type) {
  const int64_t d = c.dim, q = c.q_dim(), kv = c.kv_dim(), f = c.ffn_dim, v = c.vocab_size;
  const float in_d = 1.0f / std::sqrt(static_cast<float>(d));
  const float resid = 1.0f / std::sqrt(2.0f * c.n_layers);
  const float kEmbed = 2 * in_d;  // logits of a unit-RMS state get std ~2 through it
  constexpr float kBias = 0.02f;
  const bool gpt2 = c.arch == Arch::kGpt2;
  std::vector<TensorPlan> p;
  auto mat = [&](std::string name, int64_t in, int64_t out, float std) {
    p.push_back({std::move(name), {in, out}, type, 0.0f, std});
  };
  auto vec = [&](std::string name, int64_t n, float mean, float std) {
    p.push_back({std::move(name), {n}, DType::kF32, mean, std});
  };
  mat("token_embd.weight", d, v, kEmbed);
  if (gpt2) mat("position_embd.weight", d, c.context_length, in_d);
  for (int32_t l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    vec(b + "attn_norm.weight", d, 1, 0);
    if (gpt2) {
      vec(b + "attn_norm.bias", d, 0, kBias);
      mat(b + "attn_qkv.weight", d, q + 2 * kv, in_d);
      vec(b + "attn_qkv.bias", q + 2 * kv, 0, kBias);
      mat(b + "attn_output.weight", q, d, resid / std::sqrt(static_cast<float>(q)));
      vec(b + "attn_output.bias", d, 0, kBias);
      vec(b + "ffn_norm.weight", d, 1, 0);
      vec(b + "ffn_norm.bias", d, 0, kBias);
      mat(b + "ffn_up.weight", d, f, in_d);
      vec(b + "ffn_up.bias", f, 0, kBias);
      mat(b + "ffn_down.weight", f, d, resid / std::sqrt(static_cast<float>(f)));
      vec(b + "ffn_down.bias", d, 0, kBias);
      continue;
    }
    mat(b + "attn_q.weight", d, q, in_d);
    mat(b + "attn_k.weight", d, kv, in_d);
    mat(b + "attn_v.weight", d, kv, in_d);
    if (c.qkv_bias) {
      vec(b + "attn_q.bias", q, 0, kBias);
      vec(b + "attn_k.bias", kv, 0, kBias);
      vec(b + "attn_v.bias", kv, 0, kBias);
    }
    mat(b + "attn_output.weight", q, d, resid / std::sqrt(static_cast<float>(q)));
    vec(b + "ffn_norm.weight", d, 1, 0);
    mat(b + "ffn_gate.weight", d, f, in_d);
    mat(b + "ffn_up.weight", d, f, in_d);
    mat(b + "ffn_down.weight", f, d, resid / std::sqrt(static_cast<float>(f)));
  }
  vec("output_norm.weight", d, 1, 0);
  if (gpt2) vec("output_norm.bias", d, 0, kBias);
  if (!c.tied_embeddings) mat("output.weight", d, v, kEmbed);
  return p;
}

void SetModelMetadata(const ModelConfig& c, DType type, GgufWriter& w) {
  const std::string arch = SynthArchName(c);
  const std::string p = arch + ".";
  w.SetString("general.architecture", arch);
  w.SetString("general.name", c.name.empty() ? "synthetic-" + arch : c.name);
  w.SetU32("general.file_type", FileType(type));
  if (type == DType::kQ8_0 || type == DType::kQ4_0) w.SetU32("general.quantization_version", 2);
  w.SetU32(p + "context_length", static_cast<uint32_t>(c.context_length));
  w.SetU32(p + "embedding_length", static_cast<uint32_t>(c.dim));
  w.SetU32(p + "block_count", static_cast<uint32_t>(c.n_layers));
  w.SetU32(p + "feed_forward_length", static_cast<uint32_t>(c.ffn_dim));
  w.SetU32(p + "attention.head_count", static_cast<uint32_t>(c.n_heads));
  w.SetU32(p + "vocab_size", static_cast<uint32_t>(c.vocab_size));
  if (c.arch == Arch::kGpt2) {
    w.SetF32(p + "attention.layer_norm_epsilon", c.norm_eps);
    return;
  }
  w.SetU32(p + "attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  if (c.head_dim * c.n_heads != c.dim) {
    w.SetU32(p + "attention.key_length", static_cast<uint32_t>(c.head_dim));
    w.SetU32(p + "attention.value_length", static_cast<uint32_t>(c.head_dim));
  }
  w.SetU32(p + "rope.dimension_count", static_cast<uint32_t>(c.rope_dim ? c.rope_dim : c.head_dim));
  w.SetF32(p + "rope.freq_base", c.rope_theta);
  w.SetF32(p + "attention.layer_norm_rms_epsilon", c.norm_eps);
  if (c.sliding_window > 0) {
    w.SetU32(p + "attention.sliding_window", static_cast<uint32_t>(c.sliding_window));
  }
}

}  // namespace

std::string SynthArchName(const ModelConfig& config) {
  if (config.arch == Arch::kGpt2) return "gpt2";
  return config.qkv_bias ? "qwen2" : "llama";
}

Result<SynthSummary> SynthesizeModel(const SynthOptions& options, const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  SynthSummary summary;
  summary.config = options.config;
  ModelConfig& c = summary.config;
  if (c.head_dim == 0 && c.n_heads > 0) c.head_dim = c.dim / c.n_heads;
  GgufWriter w;
  // Tokenizer first: a copied vocabulary decides the embedding size.
  if (!options.vocab_from.empty()) {
    KVC_ASSIGN_OR_RETURN(c.vocab_size, CopyVocab(options.vocab_from, w));
  } else {
    KVC_RETURN_IF_ERROR(SetGeneratedVocab(c.vocab_size, w));
  }
  KVC_RETURN_IF_ERROR(CheckConfig(c));
  SetModelMetadata(c, options.type, w);

  const std::vector<TensorPlan> plans = PlanTensors(c, options.type);
  const DTypeTraits tr = TraitsOf(options.type);
  for (const TensorPlan& t : plans) {
    if (t.dims[0] % tr.block_elems != 0) {
      return InvalidArgument("cannot store '" + c.name + "' as " + std::string(tr.name) +
                             ": tensor " + t.name + " has rows of " + std::to_string(t.dims[0]) +
                             " values, not a multiple of the block size " +
                             std::to_string(tr.block_elems) + " (use F32, F16 or BF16)");
    }
  }
  const int threads = options.threads > 0
                          ? options.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  for (const TensorPlan& t : plans) {
    int64_t n = 1;
    for (int64_t dim : t.dims) n *= dim;
    summary.parameters += n;
    const uint64_t seed = options.seed;
    KVC_RETURN_IF_ERROR(w.AddStreamedTensor(
        t.name, t.type, t.dims,
        [&t, seed, threads](uint8_t* dst, size_t) { return FillTensor(t, seed, threads, dst); }));
  }
  summary.bytes = w.FileSize();
  // Refuse up front rather than fail after minutes of writing (e.g. gpt3-175b).
  std::error_code ec;
  const std::filesystem::path dir = std::filesystem::absolute(path, ec).parent_path();
  const auto space = std::filesystem::space(dir, ec);
  if (!ec && space.available < summary.bytes) {
    return IoError("cannot write " + path + ": it needs " + std::to_string(summary.bytes) +
                   " bytes but only " + std::to_string(space.available) + " are free");
  }
  KVC_RETURN_IF_ERROR(w.Write(path));
  summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace kvc
