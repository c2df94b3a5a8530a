// kvcache generate: load a model, stream generated text, report speed and cache memory.
#include <cstdio>

#include "cli/command.h"
#include "cli/kv_flags.h"
#include "cli/model_flags.h"
#include "engine/generator.h"

namespace kvc::cli {
namespace {

struct GenerateArgs {
  ModelFlags model;
  std::string prompt = "Once upon a time";
  int32_t n = 128;
  float temp = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  uint64_t seed = 0;
  bool no_kv_cache = false;
  KVFlags kv;
  bool ignore_eos = false;
};

int Run(const GenerateArgs& a) {
  auto kv = a.kv.ToOptions();
  if (!kv.ok()) return Fail(kv.status().message());
  auto loaded = a.model.Load();
  if (!loaded.ok()) return Fail(loaded.status().message());
  const Tokenizer& tok = *loaded->tokenizer;
  std::vector<int32_t> prompt = tok.Encode(a.prompt, /*add_bos=*/true);

  ThreadPool pool(a.model.threads);
  Generator gen(*loaded->file, &pool);
  GenerateOptions opt;
  opt.max_new_tokens = a.n;
  opt.context_length = a.model.ctx;
  opt.eos_token = a.ignore_eos ? -1 : tok.eos();
  opt.sampling = {a.temp, a.top_k, a.top_p, a.seed};
  opt.cache.enabled = !a.no_kv_cache;
  opt.cache.kv = kv.value();
  auto policy = a.kv.Policy(a.model.ctx > 0 ? a.model.ctx : loaded->file->config().context_length);
  if (!policy.ok()) return Fail(policy.status().message());
  opt.shift = policy.value();

  // The prompt is echoed as text (like llama2.c's run), then each token as it arrives.
  Utf8Stream out;
  int32_t prev = -1;
  for (int32_t id : prompt) {
    std::fputs(out.Push(tok.DecodeToken(prev, id)).c_str(), stdout);
    prev = id;
  }
  std::fflush(stdout);
  auto stats = gen.Generate(prompt, opt, [&](int32_t id) {
    std::fputs(out.Push(tok.DecodeToken(prev, id)).c_str(), stdout);
    std::fflush(stdout);
    prev = id;
    return true;
  });
  std::fputs(out.Flush().c_str(), stdout);
  std::fputs("\n", stdout);
  if (!stats.ok()) return Fail(stats.status().message());
  const GenerationStats& s = stats.value();
  std::fprintf(stderr,
               "[prompt %d tokens | prefill %.1f tok/s | decode %.1f tok/s (%d tokens%s) | "
               "KV cache %s: %d tokens in %.1f KiB | %d threads]\n",
               s.prompt_tokens, s.PrefillTokensPerSecond(), s.DecodeTokensPerSecond(),
               s.generated_tokens, s.stopped_at_eos ? ", stopped at EOS" : "",
               a.no_kv_cache ? "off (recompute)" : KVFlags::Describe(kv.value()).c_str(), s.kv_tokens,
               s.kv_bytes / 1024.0, pool.size());
  return 0;
}

RegisterCommand reg("generate", "Generate text from a prompt", [](CLI::App& sub) {
  auto a = std::make_shared<GenerateArgs>();
  a->model.Add(sub);
  sub.add_option("-p,--prompt", a->prompt, "Prompt text");
  sub.add_option("-n,--n-predict", a->n, "Number of new tokens to generate")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--temp", a->temp, "Temperature (0: greedy)")->check(CLI::Range(0.0f, 100.0f));
  sub.add_option("--top-k", a->top_k, "Top-k cut (0: off)")->check(CLI::NonNegativeNumber);
  sub.add_option("--top-p", a->top_p, "Top-p (nucleus) cut (1: off)")->check(CLI::Range(0.0f, 1.0f));
  sub.add_option("-s,--seed", a->seed, "Random seed");
  sub.add_flag("--no-kv-cache", a->no_kv_cache, "Recompute the whole sequence every step");
  a->kv.Add(sub);
  sub.add_flag("--ignore-eos", a->ignore_eos, "Do not stop at the end-of-sequence token");
  return [a] { return Run(*a); };
});

}  // namespace
}  // namespace kvc::cli
