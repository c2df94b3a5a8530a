#include "model/model_file.h"

#include <cstring>
#include <set>
#include <vector>

#include "kernels/matmul.h"
#include "quant/block_r16.h"
#include "quant/quantize.h"

namespace kvc {
namespace {

// Looks up tensors by name and checks their ggml shape, with errors naming both.
class TensorFinder {
 public:
  explicit TensorFinder(const GgufFile& f) : f_(f) {}

  // dims in ggml order; a missing optional tensor yields an empty view.
  Result<MatView> Get(const std::string& name, std::vector<int64_t> dims, bool required = true) {
    const GgufTensorInfo* t = f_.FindTensor(name);
    if (!t) {
      if (!required) return MatView{};
      return NotFound(f_.label() + ": missing tensor '" + name + "'");
    }
    if (t->dims != dims) {
      return Corrupt(f_.label() + ": tensor '" + name + "' has shape " + Shape(t->dims) +
                     ", expected " + Shape(dims));
    }
    return t->AsMat();
  }

  static std::string Shape(const std::vector<int64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
  }

 private:
  const GgufFile& f_;
};

Result<int32_t> GetDim(const GgufFile& f, const std::string& key) {
  KVC_ASSIGN_OR_RETURN(uint64_t v, f.GetUint(key));
  if (v == 0 || v > (1u << 30)) {
    return Corrupt(f.label() + ": metadata '" + key + "' = " + std::to_string(v) + " is out of range");
  }
  return static_cast<int32_t>(v);
}

}  // namespace

Result<std::unique_ptr<ModelFile>> ModelFile::Open(const std::string& path, MappedFile::Mode mode) {
  KVC_ASSIGN_OR_RETURN(MappedFile probe, MappedFile::Open(path));
  const bool gguf = LooksLikeGguf(probe.data(), probe.size());
  probe = MappedFile();
  std::unique_ptr<ModelFile> m;
  if (gguf) {
    KVC_ASSIGN_OR_RETURN(auto g, GgufFile::Open(path, mode));
    KVC_ASSIGN_OR_RETURN(m, FromGguf(std::move(g)));
  } else {
    KVC_ASSIGN_OR_RETURN(auto ck, OpenLlama2c(path, mode));
    KVC_ASSIGN_OR_RETURN(m, FromLlama2c(std::move(ck)));
  }
  m->path_ = path;
  return m;
}

Result<std::unique_ptr<ModelFile>> ModelFile::FromGguf(std::unique_ptr<GgufFile> g) {
  auto m = std::unique_ptr<ModelFile>(new ModelFile());
  ModelConfig& c = m->config_;
  KVC_ASSIGN_OR_RETURN(std::string arch, g->GetString("general.architecture"));
  if (arch == "llama" || arch == "mistral" || arch == "qwen2") {
    c.arch = Arch::kLlama;
    c.qkv_bias = arch == "qwen2";
  } else if (arch == "gpt2") {
    c.arch = Arch::kGpt2;
  } else {
    return Unsupported(g->label() + ": unsupported architecture '" + arch +
                       "' (supported: llama, mistral, qwen2, gpt2)");
  }
  c.name = g->GetString("general.name").ok() ? g->GetString("general.name").value() : arch;
  const std::string p = arch + ".";
  KVC_ASSIGN_OR_RETURN(c.dim, GetDim(*g, p + "embedding_length"));
  KVC_ASSIGN_OR_RETURN(c.n_layers, GetDim(*g, p + "block_count"));
  KVC_ASSIGN_OR_RETURN(c.n_heads, GetDim(*g, p + "attention.head_count"));
  KVC_ASSIGN_OR_RETURN(c.ffn_dim, GetDim(*g, p + "feed_forward_length"));
  KVC_ASSIGN_OR_RETURN(c.context_length, GetDim(*g, p + "context_length"));
  c.n_kv_heads = c.n_heads;
  if (g->Find(p + "attention.head_count_kv")) {
    KVC_ASSIGN_OR_RETURN(c.n_kv_heads, GetDim(*g, p + "attention.head_count_kv"));
  }
  c.head_dim = c.dim / c.n_heads;
  if (g->Find(p + "attention.key_length")) {
    KVC_ASSIGN_OR_RETURN(c.head_dim, GetDim(*g, p + "attention.key_length"));
  }
  if (c.n_heads % c.n_kv_heads != 0) {
    return Corrupt(g->label() + ": head_count " + std::to_string(c.n_heads) +
                   " is not a multiple of head_count_kv " + std::to_string(c.n_kv_heads));
  }
  const char* eps_key = c.arch == Arch::kGpt2 ? "attention.layer_norm_epsilon"
                                              : "attention.layer_norm_rms_epsilon";
  c.norm_eps = static_cast<float>(g->GetFloatOr(p + eps_key, 1e-5));
  c.rope_theta = static_cast<float>(g->GetFloatOr(p + "rope.freq_base", 10000.0));
  c.rope_dim = static_cast<int32_t>(g->GetUintOr(p + "rope.dimension_count", c.head_dim));
  c.sliding_window = static_cast<int32_t>(g->GetUintOr(p + "attention.sliding_window", 0));
  if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
    return Corrupt(g->label() + ": rope.dimension_count " + std::to_string(c.rope_dim) +
                   " must be even and at most the head size " + std::to_string(c.head_dim));
  }

  const GgufTensorInfo* embd = g->FindTensor("token_embd.weight");
  if (!embd) return NotFound(g->label() + ": missing tensor 'token_embd.weight'");
  if (embd->dims.size() != 2) return Corrupt(g->label() + ": token_embd.weight must be 2-D");
  c.vocab_size = static_cast<int32_t>(embd->dims[1]);

  TensorFinder t(*g);
  ModelWeights& w = m->weights_;
  const int64_t d = c.dim, q = c.q_dim(), kv = c.kv_dim(), f = c.ffn_dim, v = c.vocab_size;
  KVC_ASSIGN_OR_RETURN(w.tok_embd, t.Get("token_embd.weight", {d, v}));
  KVC_ASSIGN_OR_RETURN(w.out_norm, t.Get("output_norm.weight", {d}));
  KVC_ASSIGN_OR_RETURN(w.output, t.Get("output.weight", {d, v}, false));
  c.tied_embeddings = w.output.data == nullptr;
  if (c.tied_embeddings) w.output = w.tok_embd;
  const bool gpt2 = c.arch == Arch::kGpt2;
  if (gpt2) {
    KVC_ASSIGN_OR_RETURN(w.pos_embd, t.Get("position_embd.weight", {d, c.context_length}));
    KVC_ASSIGN_OR_RETURN(w.out_norm_b, t.Get("output_norm.bias", {d}));
  }
  w.layers.resize(c.n_layers);
  for (int32_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    const std::string b = "blk." + std::to_string(l) + ".";
    KVC_ASSIGN_OR_RETURN(L.attn_norm, t.Get(b + "attn_norm.weight", {d}));
    KVC_ASSIGN_OR_RETURN(L.ffn_norm, t.Get(b + "ffn_norm.weight", {d}));
    KVC_ASSIGN_OR_RETURN(L.wo, t.Get(b + "attn_output.weight", {q, d}));
    KVC_ASSIGN_OR_RETURN(L.w_up, t.Get(b + "ffn_up.weight", {d, f}));
    KVC_ASSIGN_OR_RETURN(L.w_down, t.Get(b + "ffn_down.weight", {f, d}));
    if (gpt2) {
      KVC_ASSIGN_OR_RETURN(L.attn_norm_b, t.Get(b + "attn_norm.bias", {d}));
      KVC_ASSIGN_OR_RETURN(L.ffn_norm_b, t.Get(b + "ffn_norm.bias", {d}));
      KVC_ASSIGN_OR_RETURN(L.wqkv, t.Get(b + "attn_qkv.weight", {d, q + 2 * kv}));
      KVC_ASSIGN_OR_RETURN(L.bqkv, t.Get(b + "attn_qkv.bias", {q + 2 * kv}));
      KVC_ASSIGN_OR_RETURN(L.bo, t.Get(b + "attn_output.bias", {d}));
      KVC_ASSIGN_OR_RETURN(L.b_up, t.Get(b + "ffn_up.bias", {f}));
      KVC_ASSIGN_OR_RETURN(L.b_down, t.Get(b + "ffn_down.bias", {d}));
    } else {
      KVC_ASSIGN_OR_RETURN(L.wq, t.Get(b + "attn_q.weight", {d, q}));
      KVC_ASSIGN_OR_RETURN(L.wk, t.Get(b + "attn_k.weight", {d, kv}));
      KVC_ASSIGN_OR_RETURN(L.wv, t.Get(b + "attn_v.weight", {d, kv}));
      KVC_ASSIGN_OR_RETURN(L.w_gate, t.Get(b + "ffn_gate.weight", {d, f}));
      KVC_ASSIGN_OR_RETURN(L.bq, t.Get(b + "attn_q.bias", {q}, c.qkv_bias));
      KVC_ASSIGN_OR_RETURN(L.bk, t.Get(b + "attn_k.bias", {kv}, c.qkv_bias));
      KVC_ASSIGN_OR_RETURN(L.bv, t.Get(b + "attn_v.bias", {kv}, c.qkv_bias));
    }
  }
  // Norm weights and biases are read as f32 vectors by the kernels: convert other types once.
  auto to_f32 = [&](MatView& mv) {
    if (!mv.data || mv.type == DType::kF32) return;
    auto& buf = m->owned_f32_.emplace_back(static_cast<size_t>(mv.cols * mv.rows));
    DequantizeRow(mv.type, mv.data, buf.data(), mv.cols * mv.rows);
    mv.type = DType::kF32;
    mv.data = buf.data();
  };
  to_f32(w.out_norm);
  to_f32(w.out_norm_b);
  for (LayerWeights& L : w.layers) {
    for (MatView* mv : {&L.attn_norm, &L.attn_norm_b, &L.ffn_norm, &L.ffn_norm_b, &L.bq, &L.bk,
                        &L.bv, &L.bqkv, &L.bo, &L.b_up, &L.b_down}) {
      to_f32(*mv);
    }
  }
  // Weights loaded into our own memory are repacked once into the layout the decode kernel
  // streams fastest; mapped weights are read in place as the file has them. Token embeddings
  // are repacked only when tied to the output (the lookup decodes one row of either layout).
  std::vector<MatView*> mats;
  for (LayerWeights& L : w.layers) {
    for (MatView* mv : {&L.wq, &L.wk, &L.wv, &L.wqkv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      mats.push_back(mv);
    }
  }
  mats.push_back(&w.output);
  if (c.tied_embeddings) mats.push_back(&w.tok_embd);
  std::erase_if(mats,
                [](const MatView* mv) { return !mv->data || !PreferredLayout(*mv).has_value(); });
  // A file may point two tensors at the same bytes: those are repacked once (overlapping
  // tensors read garbage either way, as they would unrepacked, but stay in bounds).
  std::set<const void*> repacked;
  g->EditLoadedBytes([&](uint8_t* bytes) {
    const auto* base = static_cast<const uint8_t*>(bytes);
    for (MatView* mv : mats) {
      const DType to = *PreferredLayout(*mv);
      if (repacked.insert(mv->data).second) {
        RepackRowsInPlace(to, bytes + (static_cast<const uint8_t*>(mv->data) - base), mv->rows,
                          mv->cols);
      }
      mv->type = to;
    }
  });
  m->gguf_ = std::move(g);
  return m;
}

Result<std::unique_ptr<ModelFile>> ModelFile::FromLlama2c(std::unique_ptr<Llama2cCheckpoint> ck) {
  auto m = std::unique_ptr<ModelFile>(new ModelFile());
  const Llama2cConfig& lc = ck->config;
  ModelConfig& c = m->config_;
  c.arch = Arch::kLlama;
  c.name = "llama2.c";
  c.dim = lc.dim;
  c.n_layers = lc.n_layers;
  c.n_heads = lc.n_heads;
  c.n_kv_heads = lc.n_kv_heads;
  c.head_dim = lc.dim / lc.n_heads;
  c.ffn_dim = lc.hidden_dim;
  c.vocab_size = lc.vocab_size;
  c.context_length = lc.seq_len;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_dim = c.head_dim;
  c.tied_embeddings = lc.shared_classifier;
  auto mat = [](const float* p, int64_t rows, int64_t cols) {
    return MatView{DType::kF32, p, rows, cols};
  };
  const int64_t d = c.dim, q = c.q_dim(), kv = c.kv_dim(), f = c.ffn_dim;
  ModelWeights& w = m->weights_;
  w.tok_embd = mat(ck->token_embedding, c.vocab_size, d);
  w.out_norm = mat(ck->rms_final, 1, d);
  w.output = mat(ck->wcls, c.vocab_size, d);
  w.layers.resize(c.n_layers);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[l];
    L.attn_norm = mat(ck->rms_att + l * d, 1, d);
    L.ffn_norm = mat(ck->rms_ffn + l * d, 1, d);
    L.wq = mat(ck->wq + l * q * d, q, d);
    L.wk = mat(ck->wk + l * kv * d, kv, d);
    L.wv = mat(ck->wv + l * kv * d, kv, d);
    L.wo = mat(ck->wo + l * d * q, d, q);
    L.w_gate = mat(ck->w1 + l * f * d, f, d);
    L.w_down = mat(ck->w2 + l * d * f, d, f);
    L.w_up = mat(ck->w3 + l * f * d, f, d);
  }
  m->llama2c_ = std::move(ck);
  return m;
}

size_t ModelFile::WeightBytes() const {
  size_t total = 0;
  auto add = [&](const MatView& mv) {
    if (mv.data) total += mv.row_bytes() * mv.rows;
  };
  const ModelWeights& w = weights_;
  add(w.tok_embd);
  add(w.pos_embd);
  add(w.out_norm);
  add(w.out_norm_b);
  if (!config_.tied_embeddings) add(w.output);
  for (const LayerWeights& L : w.layers) {
    for (const MatView* mv : {&L.attn_norm, &L.attn_norm_b, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk,
                              &L.bv, &L.wqkv, &L.bqkv, &L.wo, &L.bo, &L.ffn_norm, &L.ffn_norm_b,
                              &L.w_gate, &L.w_up, &L.w_down, &L.b_up, &L.b_down}) {
      add(*mv);
    }
  }
  return total;
}

}  // namespace kvc
