#include "model/transformer.h"

#include <algorithm>
#include <cstring>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "quant/quantize.h"

namespace kvc {
namespace {

const float* F32(const MatView& m) { return static_cast<const float*>(m.data); }

}  // namespace

Transformer::Transformer(const ModelFile& model, ThreadPool* pool)
    : model_(model),
      config_(model.config()),
      w_(model.weights()),
      pool_(pool),
      rope_(config_.head_dim, config_.rope_dim, config_.rope_theta) {}

KVSpec Transformer::KVShape(int32_t max_tokens) const {
  KVSpec s;
  s.n_layers = config_.n_layers;
  s.n_kv_heads = config_.n_kv_heads;
  s.head_dim = config_.head_dim;
  s.max_tokens = max_tokens;
  s.window = config_.sliding_window;
  return s;
}

KVCache::Rekey Transformer::KeyRekey() const {
  if (config_.arch == Arch::kGpt2) return nullptr;
  return [this](float* keys, int32_t n, int32_t delta) {
    // RoPE rotations compose: rotating a key written at p by delta gives the key at p + delta.
    for (int32_t t = 0; t < n; ++t) rope_.Apply(keys + static_cast<int64_t>(t) * config_.kv_dim(), config_.n_kv_heads, delta);
  };
}

void Transformer::EnsureScratch(int64_t n) {
  if (n <= capacity_) return;
  const ModelConfig& c = config_;
  x_.resize(n * c.dim);
  xb_.resize(n * c.dim);
  q_.resize(n * c.q_dim());
  k_.resize(n * c.kv_dim());
  v_.resize(n * c.kv_dim());
  if (c.arch == Arch::kGpt2) qkv_.resize(n * (c.q_dim() + 2 * c.kv_dim()));
  att_.resize(n * c.q_dim());
  h1_.resize(n * c.ffn_dim);
  h2_.resize(n * c.ffn_dim);
  pos_.resize(n);
  capacity_ = n;
}

Status Transformer::Forward(std::span<const SeqChunk> batch) {
  const ModelConfig& c = config_;
  if (c.head_dim > kMaxHeadDim || c.n_heads / c.n_kv_heads > kMaxGroup) {
    return Unsupported("head dim " + std::to_string(c.head_dim) + " or GQA group " +
                       std::to_string(c.n_heads / c.n_kv_heads) + " exceeds the attention kernel");
  }
  int64_t n = 0;
  for (const SeqChunk& ch : batch) {
    if (ch.tokens.empty() || !ch.kv) return InvalidArgument("empty chunk or missing cache");
    if (ch.pos0 != ch.kv->size()) return InvalidArgument("chunk position does not follow its cache");
    for (int32_t t : ch.tokens) {
      if (t < 0 || t >= c.vocab_size) {
        return InvalidArgument("token id " + std::to_string(t) + " outside the vocabulary of " +
                               std::to_string(c.vocab_size));
      }
    }
    if (c.arch == Arch::kGpt2 && ch.pos0 + static_cast<int64_t>(ch.tokens.size()) > c.context_length) {
      return OutOfRange("gpt2 has learned positions only up to " + std::to_string(c.context_length));
    }
    n += static_cast<int64_t>(ch.tokens.size());
  }
  // Prepare every cache before touching any (a failure leaves all sizes unchanged).
  for (const SeqChunk& ch : batch) {
    KVC_RETURN_IF_ERROR(ch.kv->Reserve(static_cast<int32_t>(ch.tokens.size())));
  }
  EnsureScratch(n);
  Embed(batch);
  for (int32_t l = 0; l < c.n_layers; ++l) {
    AttentionBlock(l, batch, n);
    FeedForwardBlock(l, n);
  }
  for (const SeqChunk& ch : batch) ch.kv->Commit(ch.pos0 + static_cast<int32_t>(ch.tokens.size()));
  Logits(batch);
  return Status::Ok();
}

void Transformer::Embed(std::span<const SeqChunk> batch) {
  const int64_t d = config_.dim;
  int64_t row = 0;
  for (const SeqChunk& ch : batch) {
    for (size_t i = 0; i < ch.tokens.size(); ++i, ++row) {
      float* x = x_.data() + row * d;
      pos_[row] = ch.pos0 + static_cast<int32_t>(i);
      DequantizeRow(w_.tok_embd.type, w_.tok_embd.row(ch.tokens[i]), x, d);
      if (w_.pos_embd.data) {
        float* tmp = xb_.data() + row * d;
        DequantizeRow(w_.pos_embd.type, w_.pos_embd.row(pos_[row]), tmp, d);
        AddInPlace(x, tmp, d);
      }
    }
  }
}

void Transformer::AttentionBlock(int32_t l, std::span<const SeqChunk> batch, int64_t n) {
  const ModelConfig& c = config_;
  const LayerWeights& L = w_.layers[l];
  const int64_t d = c.dim, qd = c.q_dim(), kvd = c.kv_dim();
  const bool gpt2 = c.arch == Arch::kGpt2;
  for (int64_t t = 0; t < n; ++t) {
    const float* x = x_.data() + t * d;
    float* xb = xb_.data() + t * d;
    if (gpt2) LayerNorm(x, F32(L.attn_norm), F32(L.attn_norm_b), d, c.norm_eps, xb);
    else RmsNorm(x, F32(L.attn_norm), d, c.norm_eps, xb);
  }
  if (gpt2) {
    const int64_t w = qd + 2 * kvd;
    MatMul(L.wqkv, xb_.data(), n, qkv_.data(), pool_);
    for (int64_t t = 0; t < n; ++t) {
      float* row = qkv_.data() + t * w;
      AddInPlace(row, F32(L.bqkv), w);
      std::memcpy(q_.data() + t * qd, row, qd * sizeof(float));
      std::memcpy(k_.data() + t * kvd, row + qd, kvd * sizeof(float));
      std::memcpy(v_.data() + t * kvd, row + qd + kvd, kvd * sizeof(float));
    }
  } else {
    const MatView qkv[3] = {L.wq, L.wk, L.wv};
    float* const qkv_out[3] = {q_.data(), k_.data(), v_.data()};
    MatMulShared(qkv, xb_.data(), n, qkv_out, pool_);
    for (int64_t t = 0; t < n; ++t) {
      float* q = q_.data() + t * qd;
      float* k = k_.data() + t * kvd;
      if (L.bq.data) {
        AddInPlace(q, F32(L.bq), qd);
        AddInPlace(k, F32(L.bk), kvd);
        AddInPlace(v_.data() + t * kvd, F32(L.bv), kvd);
      }
      rope_.Apply(q, c.n_heads, pos_[t]);
      rope_.Apply(k, c.n_kv_heads, pos_[t]);
    }
  }
  int64_t row = 0;
  for (const SeqChunk& ch : batch) {
    const int32_t m = static_cast<int32_t>(ch.tokens.size());
    // The cache's window (set from the model's sliding window, or chosen) bounds attention.
    const int32_t window = ch.kv->spec().window > 0 ? ch.kv->spec().window : c.sliding_window;
    const AttentionShape shape{c.n_heads, c.n_kv_heads, c.head_dim, window};
    ch.kv->Write(l, ch.pos0, m, k_.data() + row * kvd, v_.data() + row * kvd);
    const KVView view = ch.kv->View(l, ch.pos0 + m);
    Attention(shape, q_.data() + row * qd, m, ch.pos0, view, att_.data() + row * qd, pool_);
    row += m;
  }
  MatMul(L.wo, att_.data(), n, xb_.data(), pool_);
  for (int64_t t = 0; t < n; ++t) {
    float* x = x_.data() + t * d;
    AddInPlace(x, xb_.data() + t * d, d);
    if (L.bo.data) AddInPlace(x, F32(L.bo), d);
  }
}

void Transformer::FeedForwardBlock(int32_t l, int64_t n) {
  const ModelConfig& c = config_;
  const LayerWeights& L = w_.layers[l];
  const int64_t d = c.dim, f = c.ffn_dim;
  const bool gpt2 = c.arch == Arch::kGpt2;
  for (int64_t t = 0; t < n; ++t) {
    const float* x = x_.data() + t * d;
    float* xb = xb_.data() + t * d;
    if (gpt2) LayerNorm(x, F32(L.ffn_norm), F32(L.ffn_norm_b), d, c.norm_eps, xb);
    else RmsNorm(x, F32(L.ffn_norm), d, c.norm_eps, xb);
  }
  if (gpt2) {
    MatMul(L.w_up, xb_.data(), n, h1_.data(), pool_);
    for (int64_t t = 0; t < n; ++t) {
      float* h = h1_.data() + t * f;
      AddInPlace(h, F32(L.b_up), f);
      Gelu(h, f);
    }
  } else {
    const MatView gate_up[2] = {L.w_gate, L.w_up};
    float* const gate_up_out[2] = {h1_.data(), h2_.data()};
    MatMulShared(gate_up, xb_.data(), n, gate_up_out, pool_);
    for (int64_t t = 0; t < n; ++t) SiluMul(h1_.data() + t * f, h2_.data() + t * f, f);
  }
  MatMul(L.w_down, h1_.data(), n, xb_.data(), pool_);
  for (int64_t t = 0; t < n; ++t) {
    float* x = x_.data() + t * d;
    AddInPlace(x, xb_.data() + t * d, d);
    if (L.b_down.data) AddInPlace(x, F32(L.b_down), d);
  }
}

void Transformer::Logits(std::span<const SeqChunk> batch) {
  const ModelConfig& c = config_;
  const int64_t d = c.dim, vocab = c.vocab_size;
  // Gather the rows whose logits are wanted, normalize, project once as a batch.
  std::vector<std::pair<float*, int64_t>>& dests = logit_rows_;
  dests.clear();
  int64_t row = 0;
  for (const SeqChunk& ch : batch) {
    const int64_t m = static_cast<int64_t>(ch.tokens.size());
    if (ch.logits) {
      if (ch.all_logits) {
        for (int64_t i = 0; i < m; ++i) dests.emplace_back(ch.logits + i * vocab, row + i);
      } else {
        dests.emplace_back(ch.logits, row + m - 1);
      }
    }
    row += m;
  }
  if (dests.empty()) return;
  const int64_t k = static_cast<int64_t>(dests.size());
  last_.resize(k * d);
  out_.resize(k * vocab);
  for (int64_t i = 0; i < k; ++i) {
    const float* x = x_.data() + dests[i].second * d;
    float* o = last_.data() + i * d;
    if (c.arch == Arch::kGpt2) LayerNorm(x, F32(w_.out_norm), F32(w_.out_norm_b), d, c.norm_eps, o);
    else RmsNorm(x, F32(w_.out_norm), d, c.norm_eps, o);
  }
  MatMul(w_.output, last_.data(), k, out_.data(), pool_);
  for (int64_t i = 0; i < k; ++i) {
    std::memcpy(dests[i].first, out_.data() + i * vocab, vocab * sizeof(float));
  }
}

}  // namespace kvc
