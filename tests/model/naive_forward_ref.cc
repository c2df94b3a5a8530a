#include <cmath>

#include "model/naive_forward.h"
#include "quant/quantize.h"

namespace kvc::testing {
namespace {

using Vec = std::vector<double>;
using Mat = std::vector<Vec>;  // [rows][cols]

Mat Load(const MatView& m) {
  Mat out(m.rows, Vec(m.cols));
  std::vector<float> row(m.cols);
  for (int64_t r = 0; r < m.rows; ++r) {
    DequantizeRow(m.type, m.row(r), row.data(), m.cols);
    for (int64_t c = 0; c < m.cols; ++c) out[r][c] = row[c];
  }
  return out;
}
Vec LoadVec(const MatView& m) { return m.data ? Load(m)[0] : Vec(); }

// y = W x (+ b)
Vec Apply(const Mat& w, const Vec& x, const Vec& b = {}) {
  Vec y(w.size());
  for (size_t r = 0; r < w.size(); ++r) {
    double s = b.empty() ? 0.0 : b[r];
    for (size_t c = 0; c < x.size(); ++c) s += w[r][c] * x[c];
    y[r] = s;
  }
  return y;
}

Vec RmsNorm(const Vec& x, const Vec& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / x.size() + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

Vec LayerNorm(const Vec& x, const Vec& w, const Vec& b, double eps) {
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= x.size();
  for (double v : x) var += (v - mean) * (v - mean);
  const double inv = 1.0 / std::sqrt(var / x.size() + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) * inv * w[i] + b[i];
  return y;
}

void Rope(Vec& x, int heads, int head_dim, int rope_dim, double theta, int pos) {
  for (int h = 0; h < heads; ++h) {
    for (int i = 0; i < rope_dim; i += 2) {
      const double a = pos * std::pow(theta, -static_cast<double>(i) / rope_dim);
      double& x0 = x[h * head_dim + i];
      double& x1 = x[h * head_dim + i + 1];
      const double r0 = x0 * std::cos(a) - x1 * std::sin(a);
      const double r1 = x0 * std::sin(a) + x1 * std::cos(a);
      x0 = r0;
      x1 = r1;
    }
  }
}

}  // namespace

std::vector<std::vector<double>> NaiveForward(const ModelFile& model,
                                              const std::vector<int32_t>& tokens, int window) {
  const ModelConfig& c = model.config();
  const ModelWeights& w = model.weights();
  const bool gpt2 = c.arch == Arch::kGpt2;
  const int n = static_cast<int>(tokens.size());
  const int hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  const int rope_dim = c.rope_dim > 0 ? c.rope_dim : hd;

  const Mat embd = Load(w.tok_embd);
  Mat x(n);
  for (int t = 0; t < n; ++t) x[t] = embd[tokens[t]];
  if (gpt2) {
    const Mat pos = Load(w.pos_embd);
    for (int t = 0; t < n; ++t)
      for (int i = 0; i < c.dim; ++i) x[t][i] += pos[t][i];
  }
  for (const LayerWeights& L : w.layers) {
    Mat q(n), k(n), v(n);
    const Mat wqkv = gpt2 ? Load(L.wqkv) : Mat();
    const Mat wq = gpt2 ? Mat() : Load(L.wq), wk = gpt2 ? Mat() : Load(L.wk), wv = gpt2 ? Mat() : Load(L.wv);
    for (int t = 0; t < n; ++t) {
      if (gpt2) {
        const Vec h = LayerNorm(x[t], LoadVec(L.attn_norm), LoadVec(L.attn_norm_b), c.norm_eps);
        const Vec qkv = Apply(wqkv, h, LoadVec(L.bqkv));
        q[t].assign(qkv.begin(), qkv.begin() + c.q_dim());
        k[t].assign(qkv.begin() + c.q_dim(), qkv.begin() + c.q_dim() + c.kv_dim());
        v[t].assign(qkv.begin() + c.q_dim() + c.kv_dim(), qkv.end());
      } else {
        const Vec h = RmsNorm(x[t], LoadVec(L.attn_norm), c.norm_eps);
        q[t] = Apply(wq, h, LoadVec(L.bq));
        k[t] = Apply(wk, h, LoadVec(L.bk));
        v[t] = Apply(wv, h, LoadVec(L.bv));
        Rope(q[t], c.n_heads, hd, rope_dim, c.rope_theta, t);
        Rope(k[t], c.n_kv_heads, hd, rope_dim, c.rope_theta, t);
      }
    }
    const Mat wo = Load(L.wo);
    for (int t = 0; t < n; ++t) {
      Vec att(c.q_dim(), 0.0);
      for (int h = 0; h < c.n_heads; ++h) {
        const int kh = h / group;
        const int w = window > 0 ? window : c.sliding_window;
        const int lo = w > 0 ? std::max(0, t - w + 1) : 0;
        Vec score(t + 1, -INFINITY);
        double mx = -INFINITY;
        for (int s = lo; s <= t; ++s) {
          double dot = 0;
          for (int i = 0; i < hd; ++i) dot += q[t][h * hd + i] * k[s][kh * hd + i];
          score[s] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, score[s]);
        }
        double sum = 0;
        for (int s = lo; s <= t; ++s) sum += std::exp(score[s] - mx);
        for (int s = lo; s <= t; ++s) {
          const double p = std::exp(score[s] - mx) / sum;
          for (int i = 0; i < hd; ++i) att[h * hd + i] += p * v[s][kh * hd + i];
        }
      }
      const Vec o = Apply(wo, att, LoadVec(L.bo));
      for (int i = 0; i < c.dim; ++i) x[t][i] += o[i];
    }
    const Mat up = Load(L.w_up), down = Load(L.w_down);
    const Mat gate = gpt2 ? Mat() : Load(L.w_gate);
    for (int t = 0; t < n; ++t) {
      Vec h;
      if (gpt2) {
        const Vec xn = LayerNorm(x[t], LoadVec(L.ffn_norm), LoadVec(L.ffn_norm_b), c.norm_eps);
        h = Apply(up, xn, LoadVec(L.b_up));
        for (double& u : h) u = 0.5 * u * (1 + std::tanh(std::sqrt(2 / M_PI) * (u + 0.044715 * u * u * u)));
      } else {
        const Vec xn = RmsNorm(x[t], LoadVec(L.ffn_norm), c.norm_eps);
        const Vec g = Apply(gate, xn), u = Apply(up, xn);
        h.resize(g.size());
        for (size_t i = 0; i < g.size(); ++i) h[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
      }
      const Vec o = Apply(down, h, LoadVec(L.b_down));
      for (int i = 0; i < c.dim; ++i) x[t][i] += o[i];
    }
  }
  const Mat out = Load(w.output);
  std::vector<std::vector<double>> logits(n);
  for (int t = 0; t < n; ++t) {
    const Vec xn = gpt2 ? LayerNorm(x[t], LoadVec(w.out_norm), LoadVec(w.out_norm_b), c.norm_eps)
                        : RmsNorm(x[t], LoadVec(w.out_norm), c.norm_eps);
    logits[t] = Apply(out, xn);
  }
  return logits;
}

}  // namespace kvc::testing
