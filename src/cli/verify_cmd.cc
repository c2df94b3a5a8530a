// kvcache verify: a cache configuration against the reference (f32, full recomputation):
// per-step max |delta logit|, top-1 agreement and KL divergence, and perplexity on a text.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "cli/kv_flags.h"
#include "engine/generator.h"
#include "engine/verifier.h"

namespace kvc::cli {
namespace {

struct VerifyArgs {
  std::string model, tokenizer, prompt = "Once upon a time", text;
  int32_t n = 32;
  int32_t threads = 0;
  int32_t ctx = 0;
  double max_kl = -1;
  bool quiet = false;
  KVFlags kv;
};

int Run(const VerifyArgs& a) {
  auto kv = a.kv.ToOptions();
  if (!kv.ok()) return Fail(kv.status().message());
  auto loaded = LoadedModel::Load(a.model, a.tokenizer);
  if (!loaded.ok()) return Fail(loaded.status().message());
  ThreadPool pool(a.threads);
  Transformer tf(*loaded->file, &pool);
  auto policy = a.kv.Policy(tf.config().context_length);
  if (!policy.ok()) return Fail(policy.status().message());
  Verifier verifier(tf, kv.value(), policy.value());
  const Tokenizer& tok = *loaded->tokenizer;
  const bool exact_required = kv->type_k == KVType::kF32 && kv->type_v == KVType::kF32 &&
                              kv->window == 0 && !policy->active();
  std::printf("candidate: %s%s  |  reference: f32, full recomputation every step\n",
              KVFlags::Describe(kv.value()).c_str(),
              policy->active() ? (" + keep " + std::to_string(policy->keep) + " of at most " +
                                  std::to_string(policy->limit) + " tokens").c_str() : "");
  bool failed = false;
  double mean_kl = 0;
  if (!a.text.empty()) {
    std::ifstream in(a.text, std::ios::binary);
    if (!in) return Fail("cannot read --text file " + a.text);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::vector<int32_t> tokens = tok.Encode(ss.str(), true);
    const int32_t ctx = a.ctx > 0 ? a.ctx : tf.config().context_length;
    auto rep = verifier.Perplexity(tokens, ctx, tok.bos());
    if (!rep.ok()) return Fail(rep.status().message());
    const PerplexityReport& r = rep.value();
    std::printf("text: %s (%d tokens scored, context %d)\n", a.text.c_str(), r.tokens_scored, ctx);
    std::printf("perplexity: reference %.4f  candidate %.4f  (change %+.4f, %+.3f%%)\n",
                r.ppl_reference, r.ppl_candidate, r.ppl_candidate - r.ppl_reference,
                100.0 * (r.ppl_candidate / r.ppl_reference - 1));
    std::printf("mean KL %.6f nats  top-1 agreement %.2f%%  max |delta logit| %.3g\n", r.mean_kl,
                100.0 * r.top1_agreement, r.max_abs);
    std::printf("candidate KV cache: %d tokens in %zu bytes (%.1f bytes/token)\n", r.kv_tokens,
                r.kv_bytes, r.kv_tokens ? double(r.kv_bytes) / r.kv_tokens : 0.0);
    mean_kl = r.mean_kl;
    failed |= exact_required && r.max_abs > 1e-4;
  } else {
    const std::vector<int32_t> prompt = tok.Encode(a.prompt, true);
    if (!a.quiet) std::printf("%6s %8s %14s %12s %6s\n", "step", "token", "max|dlogit|", "KL", "top1");
    int step = 0;
    auto sum = verifier.Generate(prompt, a.n, [&](const VerifyStep& s) {
      if (!a.quiet) {
        std::printf("%6d %8d %14.3g %12.3g %6s\n", step, s.token, s.diff.max_abs, s.diff.kl,
                    s.diff.top1_agree ? "yes" : "NO");
      }
      ++step;
    });
    if (!sum.ok()) return Fail(sum.status().message());
    std::printf("steps %zu  max |delta logit| %.3g  mean KL %.3g  max KL %.3g  top-1 agreement %.2f%%\n",
                sum->steps.size(), sum->max_abs, sum->mean_kl, sum->max_kl, 100.0 * sum->top1_agreement);
    mean_kl = sum->mean_kl;
    failed |= exact_required && sum->max_abs > 1e-4;
  }
  if (failed) {
    std::printf("FAIL: an f32 cache must reproduce recomputation (max |delta logit| <= 1e-4)\n");
    return 2;
  }
  if (a.max_kl >= 0 && mean_kl > a.max_kl) {
    std::printf("FAIL: mean KL %.6g exceeds --max-kl %.6g\n", mean_kl, a.max_kl);
    return 2;
  }
  std::printf("OK\n");
  return 0;
}

RegisterCommand reg("verify", "Compare a KV cache configuration with full recomputation",
                    [](CLI::App& sub) {
  auto a = std::make_shared<VerifyArgs>();
  sub.add_option("-m,--model", a->model, "Model file (GGUF or llama2.c .bin)")->required();
  sub.add_option("-z,--tokenizer", a->tokenizer, "llama2.c tokenizer file (for .bin models)");
  sub.add_option("-p,--prompt", a->prompt, "Prompt for the generation check");
  sub.add_option("-n,--n-predict", a->n, "Steps of the generation check")->check(CLI::NonNegativeNumber);
  sub.add_option("--text", a->text, "Text file: report perplexity, KL and top-1 over it instead");
  sub.add_option("-c,--ctx-size", a->ctx, "Segment length for --text (0: the model's context)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--max-kl", a->max_kl, "Fail (exit 2) when the mean KL exceeds this");
  sub.add_option("-t,--threads", a->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  sub.add_flag("-q,--quiet", a->quiet, "Only the summary");
  a->kv.Add(sub);
  return [a] { return Run(*a); };
});

}  // namespace
}  // namespace kvc::cli
