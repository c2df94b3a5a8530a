#include "engine/generator.h"

#include <chrono>

#include "kvcache/kv_cache_factory.h"

namespace kvc {
namespace {
double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
}  // namespace

Result<LoadedModel> LoadedModel::Load(const std::string& model_path,
                                      const std::string& tokenizer_path, MappedFile::Mode mode) {
  LoadedModel m;
  KVC_ASSIGN_OR_RETURN(m.file, ModelFile::Open(model_path, mode));
  if (!tokenizer_path.empty()) {
    KVC_ASSIGN_OR_RETURN(m.tokenizer,
                         LoadLlama2cTokenizer(tokenizer_path, m.file->config().vocab_size));
  } else if (m.file->gguf()) {
    KVC_ASSIGN_OR_RETURN(m.tokenizer, LoadGgufTokenizer(*m.file->gguf()));
  } else {
    return InvalidArgument(model_path +
                           " is a llama2.c checkpoint: give its tokenizer with -z TOKENIZER");
  }
  if (m.tokenizer->vocab_size() != m.file->config().vocab_size) {
    return InvalidArgument("tokenizer has " + std::to_string(m.tokenizer->vocab_size()) +
                           " tokens but the model's vocabulary is " +
                           std::to_string(m.file->config().vocab_size));
  }
  return m;
}

double GenerationStats::PrefillTokensPerSecond() const {
  return prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0;
}
double GenerationStats::DecodeTokensPerSecond() const {
  return decode_seconds > 0 && generated_tokens > 1 ? (generated_tokens - 1) / decode_seconds : 0;
}

Generator::Generator(const ModelFile& model, ThreadPool* pool)
    : model_(model), transformer_(model, pool) {}

Result<GenerationStats> Generator::Generate(std::span<const int32_t> prompt,
                                            const GenerateOptions& options,
                                            const std::function<bool(int32_t)>& on_token) {
  const ModelConfig& c = model_.config();
  const int32_t ctx = options.context_length > 0 ? options.context_length : c.context_length;
  const int64_t n_prompt = static_cast<int64_t>(prompt.size());
  const ShiftPolicy& shift = options.shift;
  const int32_t window = options.cache.kv.window > 0 ? options.cache.kv.window : c.sliding_window;
  if (n_prompt == 0) return InvalidArgument("the prompt is empty (no tokens)");
  if (options.max_new_tokens < 0) return InvalidArgument("the number of tokens to generate is negative");
  if (shift.active() && !options.cache.enabled) {
    return InvalidArgument("attention sinks and context shift need the KV cache (drop --no-kv-cache)");
  }
  if (shift.active() && (shift.limit > ctx || shift.keep >= shift.limit)) {
    return InvalidArgument("sinks + window (" + std::to_string(shift.limit) +
                           " tokens) must fit in the context of " + std::to_string(ctx) +
                           " and leave room after the sinks");
  }
  // Without a policy that bounds positions, a sequence must fit in the context.
  const bool unbounded = shift.active() || (window > 0 && c.arch != Arch::kGpt2);
  if (!shift.active() && n_prompt > ctx) {
    return OutOfRange("the prompt has " + std::to_string(n_prompt) +
                      " tokens but the context holds " + std::to_string(ctx));
  }
  if (!unbounded && n_prompt + options.max_new_tokens > ctx) {
    return OutOfRange("prompt (" + std::to_string(n_prompt) + " tokens) + " +
                      std::to_string(options.max_new_tokens) + " new tokens exceed the context of " +
                      std::to_string(ctx) +
                      " tokens; lower -n, or use --context-shift, --kv-sinks with --kv-window, or --kv-window");
  }
  // The last sampled token is never fed back, so the cache holds at most prompt + n - 1
  // (or the policy's limit).
  const int64_t longest = std::max<int64_t>(1, n_prompt + std::max(options.max_new_tokens - 1, 0));
  const int32_t capacity = static_cast<int32_t>(shift.active() ? std::min<int64_t>(longest, shift.limit) : longest);
  KVC_ASSIGN_OR_RETURN(std::unique_ptr<KVCache> cache_owner,
                       MakeKVCache(transformer_.KVShape(capacity), options.cache.kv));
  KVCache& cache = *cache_owner;
  const KVCache::Rekey rekey = transformer_.KeyRekey();
  // With a policy, chunks must fit after the kept tokens.
  const int32_t max_chunk = shift.active() ? std::min(kMaxChunkTokens, shift.limit - shift.keep) : kMaxChunkTokens;

  std::vector<int32_t> seq(prompt.begin(), prompt.end());  // full recompute mode only
  if (!options.cache.enabled) seq.reserve(prompt.size() + options.max_new_tokens);
  std::vector<int32_t> pending(prompt.begin(), prompt.end());  // tokens not yet in the cache
  std::vector<float> logits(c.vocab_size);
  Sampler sampler(options.sampling);
  GenerationStats stats;
  stats.prompt_tokens = static_cast<int32_t>(n_prompt);
  const auto t0 = std::chrono::steady_clock::now();
  auto t_first = t0;

  // Step 0 runs the prompt; each later step runs one token (cached) or everything (recompute).
  // Long inputs go in chunks (bounded activations, windows and shifts).
  for (int32_t step = 0; step < options.max_new_tokens; ++step) {
    if (!options.cache.enabled) {
      cache.Truncate(0);
      pending = seq;
    }
    for (size_t from = 0; from < pending.size();) {
      const int32_t n = static_cast<int32_t>(std::min<size_t>(max_chunk, pending.size() - from));
      if (const int32_t drop = shift.DiscardFor(cache.size(), n); drop > 0) {
        KVC_RETURN_IF_ERROR(cache.RemoveRange(shift.keep, drop, rekey));
        ++stats.context_shifts;
      }
      SeqChunk chunk;
      chunk.kv = &cache;
      chunk.tokens = std::span<const int32_t>(pending).subspan(from, n);
      chunk.pos0 = cache.size();
      chunk.logits = from + n == pending.size() ? logits.data() : nullptr;
      KVC_RETURN_IF_ERROR(transformer_.Forward(std::span<const SeqChunk>(&chunk, 1)));
      from += n;
    }
    const int32_t next = sampler.Sample(logits.data(), c.vocab_size);
    if (step == 0) t_first = std::chrono::steady_clock::now();
    if (next == options.eos_token) {
      stats.stopped_at_eos = true;
      break;
    }
    ++stats.generated_tokens;
    if (!options.cache.enabled) seq.push_back(next);
    pending.assign(1, next);
    if (!on_token(next)) break;
  }
  const auto t1 = std::chrono::steady_clock::now();
  stats.prefill_seconds = Seconds(t0, t_first);
  stats.decode_seconds = Seconds(t_first, t1);
  stats.kv_bytes = cache.BytesAllocated();
  stats.kv_tokens = cache.size();
  return stats;
}

}  // namespace kvc
