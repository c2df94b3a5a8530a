#include "engine/verifier.h"

#include <algorithm>
#include <cmath>

#include "sampling/sampler.h"

namespace kvc {
namespace {

// log softmax of x into out.
void LogSoftmax(const float* x, int32_t n, std::vector<double>& out) {
  out.resize(n);
  double mx = x[0];
  for (int32_t i = 1; i < n; ++i) mx = std::max(mx, double(x[i]));
  double sum = 0;
  for (int32_t i = 0; i < n; ++i) sum += std::exp(x[i] - mx);
  const double lse = mx + std::log(sum);
  for (int32_t i = 0; i < n; ++i) out[i] = x[i] - lse;
}

}  // namespace

LogitsDiff CompareLogits(const float* ref, const float* cand, int32_t n) {
  LogitsDiff d;
  std::vector<double> lp, lq;
  LogSoftmax(ref, n, lp);
  LogSoftmax(cand, n, lq);
  for (int32_t i = 0; i < n; ++i) {
    d.max_abs = std::max(d.max_abs, double(std::fabs(ref[i] - cand[i])));
    d.kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  }
  d.kl = std::max(0.0, d.kl);
  d.top1_agree = Argmax(ref, n) == Argmax(cand, n);
  return d;
}

Status Verifier::CandidateStep(KVCache& cache, const int32_t* token, float* logits) {
  if (const int32_t drop = shift_.DiscardFor(cache.size(), 1); drop > 0) {
    KVC_RETURN_IF_ERROR(cache.RemoveRange(shift_.keep, drop, tf_.KeyRekey()));
  }
  SeqChunk c{std::span<const int32_t>(token, 1), cache.size(), &cache, logits, false};
  return tf_.Forward({&c, 1});
}

Result<VerifySummary> Verifier::Generate(std::span<const int32_t> prompt, int32_t n,
                                         const std::function<void(const VerifyStep&)>& on_step) {
  const int32_t vocab = tf_.config().vocab_size;
  const int32_t total = static_cast<int32_t>(prompt.size()) + n;
  if (prompt.empty()) return InvalidArgument("the prompt is empty");
  if (total > tf_.config().context_length) {
    return OutOfRange("prompt + " + std::to_string(n) + " tokens exceed the context of " +
                      std::to_string(tf_.config().context_length));
  }
  KVC_ASSIGN_OR_RETURN(auto cand, MakeKVCache(tf_.KVShape(total), candidate_));
  std::vector<int32_t> seq(prompt.begin(), prompt.end());
  std::vector<float> ref_logits(vocab), cand_logits(vocab);
  VerifySummary sum;
  for (int32_t step = 0; step < n; ++step) {
    // Candidate: prefill at step 0, then one token per step through its cache.
    const int32_t from = cand->size();
    SeqChunk c{std::span<const int32_t>(seq).subspan(from), from, cand.get(), cand_logits.data(), false};
    KVC_RETURN_IF_ERROR(tf_.Forward({&c, 1}));
    // Reference: the whole sequence from scratch, f32, contiguous.
    KVC_ASSIGN_OR_RETURN(auto ref, MakeKVCache(tf_.KVShape(static_cast<int32_t>(seq.size())),
                                               {.layout = KVLayout::kContiguous}));
    SeqChunk r{seq, 0, ref.get(), ref_logits.data(), false};
    KVC_RETURN_IF_ERROR(tf_.Forward({&r, 1}));
    VerifyStep s;
    s.position = static_cast<int32_t>(seq.size()) - 1;
    s.token = Argmax(ref_logits.data(), vocab);
    s.diff = CompareLogits(ref_logits.data(), cand_logits.data(), vocab);
    sum.max_abs = std::max(sum.max_abs, s.diff.max_abs);
    sum.max_kl = std::max(sum.max_kl, s.diff.kl);
    sum.mean_kl += s.diff.kl;
    sum.top1_agreement += s.diff.top1_agree;
    if (on_step) on_step(s);
    sum.steps.push_back(s);
    seq.push_back(s.token);
  }
  if (n > 0) {
    sum.mean_kl /= n;
    sum.top1_agreement /= n;
  }
  return sum;
}

Result<PerplexityReport> Verifier::Perplexity(std::span<const int32_t> tokens, int32_t context,
                                              int32_t bos) {
  const int32_t vocab = tf_.config().vocab_size;
  if (tokens.size() < 2) return InvalidArgument("the text has fewer than 2 tokens");
  context = std::min(context, tf_.config().context_length);
  if (context < 2) return InvalidArgument("context too small for perplexity");
  PerplexityReport rep;
  double nll_ref = 0, nll_cand = 0;
  std::vector<double> lp;
  // Segments: tokens[0] is BOS; later segments restart from BOS + the next context-1 tokens.
  size_t next = 1;
  while (next < tokens.size()) {
    std::vector<int32_t> seg = {bos >= 0 ? bos : tokens[0]};
    const size_t take = std::min<size_t>(context - 1, tokens.size() - next);
    seg.insert(seg.end(), tokens.begin() + next, tokens.begin() + next + take);
    next += take;
    const int32_t n = static_cast<int32_t>(seg.size());
    // Reference: one f32 pass with logits at every position (identical to recomputing each
    // prefix, as the conformance tests prove), in chunks the activations can hold.
    KVC_ASSIGN_OR_RETURN(auto ref, MakeKVCache(tf_.KVShape(n), {.layout = KVLayout::kContiguous}));
    std::vector<float> ref_logits(static_cast<size_t>(n) * vocab);
    for (int32_t p = 0; p < n; p += kMaxChunkTokens) {
      const int32_t m = std::min(kMaxChunkTokens, n - p);
      SeqChunk r{std::span<const int32_t>(seg).subspan(p, m), p, ref.get(),
                 ref_logits.data() + static_cast<size_t>(p) * vocab, true};
      KVC_RETURN_IF_ERROR(tf_.Forward({&r, 1}));
    }
    KVC_ASSIGN_OR_RETURN(auto cand, MakeKVCache(tf_.KVShape(n), candidate_));
    std::vector<float> cand_logits(vocab);
    for (int32_t p = 0; p + 1 < n; ++p) {
      KVC_RETURN_IF_ERROR(CandidateStep(*cand, &seg[p], cand_logits.data()));
      const float* rl = ref_logits.data() + static_cast<size_t>(p) * vocab;
      const LogitsDiff d = CompareLogits(rl, cand_logits.data(), vocab);
      rep.mean_kl += d.kl;
      rep.top1_agreement += d.top1_agree;
      rep.max_abs = std::max(rep.max_abs, d.max_abs);
      LogSoftmax(rl, vocab, lp);
      nll_ref -= lp[seg[p + 1]];
      LogSoftmax(cand_logits.data(), vocab, lp);
      nll_cand -= lp[seg[p + 1]];
      ++rep.tokens_scored;
    }
    if (cand->size() >= rep.kv_tokens) {
      rep.kv_tokens = cand->size();
      rep.kv_bytes = cand->BytesAllocated();
    }
  }
  rep.mean_kl /= rep.tokens_scored;
  rep.top1_agreement /= rep.tokens_scored;
  rep.ppl_reference = std::exp(nll_ref / rep.tokens_scored);
  rep.ppl_candidate = std::exp(nll_cand / rep.tokens_scored);
  return rep;
}

}  // namespace kvc
