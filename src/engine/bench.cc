#include "engine/bench.h"

#include <chrono>
#include <random>

namespace kvc {
namespace {
double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

std::vector<int32_t> RandomTokens(int32_t n, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

size_t DecodeWeightBytes(const ModelFile& model) {
  const ModelConfig& c = model.config();
  const MatView& e = model.weights().tok_embd;
  size_t bytes = model.WeightBytes();
  if (!c.tied_embeddings) bytes -= e.row_bytes() * (e.rows - 1);
  return bytes;
}

Result<Summary> BenchPrefill(Transformer& tf, int32_t n, int32_t repeat) {
  const int32_t vocab = tf.config().vocab_size;
  const auto tokens = RandomTokens(n, vocab, 1);
  std::vector<float> logits(vocab);
  std::vector<double> rates;
  for (int32_t r = 0; r <= repeat; ++r) {  // the first run warms up
    KVC_ASSIGN_OR_RETURN(auto cache, MakeKVCache(tf.KVShape(n), {.layout = KVLayout::kContiguous}));
    SeqChunk chunk{tokens, 0, cache.get(), logits.data(), false};
    const double t0 = Now();
    KVC_RETURN_IF_ERROR(tf.Forward({&chunk, 1}));
    if (r > 0) rates.push_back(n / (Now() - t0));
  }
  return Summarize(rates);
}

Result<DecodeRun> BenchDecodeOnce(Transformer& tf, const KVCacheOptions& kv, int32_t depth,
                                  int32_t steps, uint32_t seed) {
  const ModelConfig& c = tf.config();
  DecodeRun run;
  KVC_ASSIGN_OR_RETURN(auto cache, MakeKVCache(tf.KVShape(depth + steps + 1), kv));
  if (depth > 0) {
    KVC_RETURN_IF_ERROR(cache->Reserve(depth));
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const int32_t chunk = 256;
    std::vector<float> rows(static_cast<size_t>(chunk) * c.kv_dim());
    for (float& x : rows) x = normal(rng);
    for (int32_t p = 0; p < depth; p += chunk) {
      const int32_t n = std::min(chunk, depth - p);
      for (int32_t l = 0; l < c.n_layers; ++l) cache->Write(l, p, n, rows.data(), rows.data());
    }
    cache->Commit(depth);
  }
  run.kv_bytes = cache->BytesAllocated();
  std::vector<float> logits(c.vocab_size);
  std::vector<int32_t> token = {1};
  const double t0 = Now();
  for (int32_t s = 0; s < steps; ++s) {
    SeqChunk one{token, cache->size(), cache.get(), logits.data(), false};
    KVC_RETURN_IF_ERROR(tf.Forward({&one, 1}));
    token[0] = static_cast<int32_t>((token[0] * 31 + 7) % c.vocab_size);
  }
  run.tok_s = steps / (Now() - t0);
  return run;
}

Result<CacheTableRow> BenchCacheTable(Generator& gen, std::span<const int32_t> prompt,
                                      int32_t new_tokens, int32_t repeat) {
  CacheTableRow row;
  row.new_tokens = new_tokens;
  std::vector<int32_t> out[2];
  for (int use_cache = 1; use_cache >= 0; --use_cache) {
    GenerateOptions opt;
    opt.max_new_tokens = new_tokens;
    opt.sampling.temperature = 0;
    opt.cache.enabled = use_cache;
    std::vector<double> secs;
    for (int32_t r = 0; r < repeat; ++r) {
      std::vector<int32_t> toks;
      const double t0 = Now();
      KVC_RETURN_IF_ERROR(
          gen.Generate(prompt, opt, [&](int32_t t) { toks.push_back(t); return true; }).status());
      secs.push_back(Now() - t0);
      out[use_cache] = std::move(toks);
    }
    (use_cache ? row.cached_s : row.uncached_s) = Summarize(secs);
  }
  row.same_tokens = out[0] == out[1];
  return row;
}

}  // namespace kvc
