// kvcache bench: prefill and decode speed, and the source documents' with/without-cache table
// (time to generate 1, 10, 100, 1000 new tokens, cached vs recomputed).
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>

#include "cli/command.h"
#include "cli/default_model.h"
#include "engine/generator.h"
#include "engine/stats.h"
#include "kvcache/contiguous_kv_cache.h"

namespace kvc::cli {
namespace {

struct BenchArgs {
  std::string model;
  std::string preset = "tiny";
  int32_t threads = 0;
  int32_t repeat = 3;
  int32_t pp = 512;
  int32_t tg = 128;
  std::string table = "1,10,100,1000";
  int32_t table_prompt = 8;
  bool skip_table = false;
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<int32_t> RandomTokens(int32_t n, int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

// Prefill tokens/s: one forward over `n` tokens into a fresh cache.
Result<Summary> BenchPrefill(const ModelFile& m, ThreadPool* pool, int32_t n, int32_t repeat) {
  Transformer tf(m, pool);
  const auto tokens = RandomTokens(n, m.config().vocab_size, 1);
  std::vector<float> logits(m.config().vocab_size);
  std::vector<double> rates;
  for (int32_t r = 0; r <= repeat; ++r) {  // the first run warms up
    ContiguousKVCache cache(tf.KVShape(n), {});
    SeqChunk chunk{tokens, 0, &cache, logits.data(), false};
    const double t0 = Now();
    KVC_RETURN_IF_ERROR(tf.Forward({&chunk, 1}));
    if (r > 0) rates.push_back(n / (Now() - t0));
  }
  return Summarize(rates);
}

// Decode tokens/s over `n` new tokens after a one-token prompt.
Result<Summary> BenchDecode(Generator& gen, int32_t n, int32_t repeat) {
  GenerateOptions opt;
  opt.max_new_tokens = n + 1;
  opt.sampling.temperature = 0;
  std::vector<double> rates;
  const std::vector<int32_t> prompt = {1};
  for (int32_t r = 0; r <= repeat; ++r) {
    KVC_ASSIGN_OR_RETURN(GenerationStats s, gen.Generate(prompt, opt, [](int32_t) { return true; }));
    if (r > 0) rates.push_back(s.DecodeTokensPerSecond());
  }
  return Summarize(rates);
}

struct TableRow {
  int32_t new_tokens = 0;
  Summary cached, uncached;
  bool same_tokens = true;
};

Result<TableRow> BenchTableRow(Generator& gen, const std::vector<int32_t>& prompt, int32_t n,
                               int32_t repeat) {
  TableRow row;
  row.new_tokens = n;
  std::vector<int32_t> out[2];
  for (int use_cache = 1; use_cache >= 0; --use_cache) {
    GenerateOptions opt;
    opt.max_new_tokens = n;
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
    (use_cache ? row.cached : row.uncached) = Summarize(secs);
  }
  row.same_tokens = out[0] == out[1];
  return row;
}

int Run(const BenchArgs& a) {
  auto path = a.model.empty() ? EnsureDefaultModel(a.preset, DType::kF32, 2048) : Result<std::string>(a.model);
  if (!path.ok()) return Fail(path.status().message());
  auto m = ModelFile::Open(path.value());
  if (!m.ok()) return Fail(m.status().message());
  const ModelConfig& c = m.value()->config();
  ThreadPool pool(a.threads);
  std::printf("model: %s (%s, %d layers, dim %d, %d heads / %d kv heads, vocab %d, %.1f M params, %.1f MiB)\n",
              path.value().c_str(), ArchName(c.arch), c.n_layers, c.dim, c.n_heads, c.n_kv_heads,
              c.vocab_size, c.ParameterCount() / 1e6, m.value()->WeightBytes() / 1048576.0);
  std::printf("threads: %d, repeats: %d (median of repeats; the first run of each is a warm-up)\n\n",
              pool.size(), a.repeat);
  Generator gen(*m.value(), &pool);

  const int32_t pp = std::min(a.pp, c.context_length);
  auto prefill = BenchPrefill(*m.value(), &pool, pp, a.repeat);
  if (!prefill.ok()) return Fail(prefill.status().message());
  const int32_t tg = std::min(a.tg, c.context_length - 2);
  auto decode = BenchDecode(gen, tg, a.repeat);
  if (!decode.ok()) return Fail(decode.status().message());
  std::printf("| test | tokens/s (median) | min | max |\n|---|---|---|---|\n");
  std::printf("| pp%d | %.1f | %.1f | %.1f |\n", pp, prefill->median, prefill->min, prefill->max);
  std::printf("| tg%d | %.1f | %.1f | %.1f |\n\n", tg, decode->median, decode->min, decode->max);
  if (a.skip_table) return 0;

  std::printf("With vs without KV cache (greedy, %d-token prompt, milliseconds: mean ± stdev over %d runs)\n",
              a.table_prompt, a.repeat);
  std::printf("| new tokens | with cache (ms) | without cache (ms) | speedup | same tokens |\n");
  std::printf("|---|---|---|---|---|\n");
  const auto prompt = RandomTokens(a.table_prompt, c.vocab_size, 7);
  std::stringstream ss(a.table);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const int32_t n = std::atoi(item.c_str());
    if (n <= 0) return Fail("bad --table entry '" + item + "'");
    if (a.table_prompt + n > c.context_length) {
      std::printf("| %d | (exceeds the context of %d) | | | |\n", n, c.context_length);
      continue;
    }
    auto row = BenchTableRow(gen, prompt, n, a.repeat);
    if (!row.ok()) return Fail(row.status().message());
    std::printf("| %d | %.3f ± %.3f | %.3f ± %.3f | %.2fx | %s |\n", n, 1e3 * row->cached.mean,
                1e3 * row->cached.stdev, 1e3 * row->uncached.mean, 1e3 * row->uncached.stdev,
                row->uncached.mean / row->cached.mean, row->same_tokens ? "yes" : "NO");
    std::fflush(stdout);
  }
  return 0;
}

RegisterCommand reg("bench", "Benchmark prefill, decode and cached vs uncached generation",
                    [](CLI::App& sub) {
  auto a = std::make_shared<BenchArgs>();
  sub.add_option("-m,--model", a->model, "Model file (default: a synthetic model)");
  sub.add_option("--preset", a->preset, "Preset of the synthetic model used without -m");
  sub.add_option("-t,--threads", a->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  sub.add_option("-r,--repeat", a->repeat, "Repetitions per measurement")->check(CLI::PositiveNumber);
  sub.add_option("--pp", a->pp, "Prompt tokens for the prefill test")->check(CLI::PositiveNumber);
  sub.add_option("--tg", a->tg, "New tokens for the decode test")->check(CLI::PositiveNumber);
  sub.add_option("--table", a->table, "New-token counts for the cached vs uncached table");
  sub.add_option("--table-prompt", a->table_prompt, "Prompt tokens for the table")->check(CLI::PositiveNumber);
  sub.add_flag("--no-table", a->skip_table, "Skip the cached vs uncached table");
  return [a] { return Run(*a); };
});

}  // namespace
}  // namespace kvc::cli
