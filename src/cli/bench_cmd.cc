// kvcache bench: the benchmark of record. Prefill (pp) and decode (tg) tokens/s, decode at KV
// depths for chosen cache configurations, the machine's streaming bandwidth measured in the same
// run and the roofline it implies, and the source documents' with/without-cache table.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/command.h"
#include "cli/default_model.h"
#include "cli/kv_flags.h"
#include "engine/bench.h"
#include "kernels/bandwidth.h"
#include "kernels/peak.h"
#include "kvcache/kv_format.h"

namespace kvc::cli {
namespace {

struct BenchArgs {
  std::string model;
  std::string preset = "tiny";
  int32_t threads = 0;
  int32_t repeat = 3;
  int32_t pp = 512;
  int32_t tg = 128;
  std::string depths = "0";
  std::string kv_types = "f32";
  std::string kv_layouts = "paged";
  std::string table = "1,10,100,1000";
  int32_t table_prompt = 8;
  bool skip_table = false;
  std::string json;
  double bandwidth_gib = 1.0;
  bool callgrind = false;
  bool no_mmap = false;
  KVFlags kv;
};

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) if (!item.empty()) out.push_back(item);
  return out;
}

Result<std::vector<int32_t>> IntList(const std::string& s, const char* what) {
  std::vector<int32_t> out;
  for (const std::string& item : SplitList(s)) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (*end != '\0' || v < 0 || v > (1 << 24)) return InvalidArgument(std::string("bad ") + what + " entry '" + item + "'");
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

std::string J(const Summary& s) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "{\"median\": %.9g, \"min\": %.9g, \"max\": %.9g, \"mean\": %.9g, \"stdev\": %.9g}",
                s.median, s.min, s.max, s.mean, s.stdev);
  return buf;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

int Run(BenchArgs a) {
  if (a.callgrind) {
    // A fixed, small, single-threaded workload whose instruction count (valgrind --tool=callgrind)
    // is repeatable, to compare commits: no bandwidth probe, no timing-dependent loops.
    a.threads = 1;
    a.repeat = 1;
    a.pp = 64;
    a.tg = 32;
    a.depths = "0,64";
    a.skip_table = true;
    a.bandwidth_gib = 0;
  }
  auto path = a.model.empty() ? EnsureDefaultModel(a.preset, DType::kF32, 2048) : Result<std::string>(a.model);
  if (!path.ok()) return Fail(path.status().message());
  auto m = ModelFile::Open(path.value(), a.no_mmap ? MappedFile::Mode::kLoad : MappedFile::Mode::kMap);
  if (!m.ok()) return Fail(m.status().message());
  auto depths = IntList(a.depths, "--depth");
  if (!depths.ok()) return Fail(depths.status().message());
  auto table = IntList(a.table, "--table");
  if (!table.ok()) return Fail(table.status().message());
  auto base_kv = a.kv.ToOptions();
  if (!base_kv.ok()) return Fail(base_kv.status().message());
  std::vector<KVCacheOptions> configs;
  for (const std::string& layout : SplitList(a.kv_layouts)) {
    for (const std::string& type : SplitList(a.kv_types)) {
      KVCacheOptions o = base_kv.value();
      auto l = ParseKVLayout(layout);
      auto t = ParseKVType(type);
      if (!l.ok()) return Fail(l.status().message());
      if (!t.ok()) return Fail(t.status().message());
      o.layout = l.value();
      o.type_k = o.type_v = t.value();
      configs.push_back(o);
    }
  }
  const ModelFile& model = *m.value();
  const ModelConfig& c = model.config();
  ThreadPool pool(a.threads);
  Transformer tf(model, &pool);
  Generator gen(model, &pool);
  std::printf("model: %s (%s, %d layers, dim %d, %d heads / %d kv heads, vocab %d, %.1f M params, %.1f MiB)\n",
              path.value().c_str(), ArchName(c.arch), c.n_layers, c.dim, c.n_heads, c.n_kv_heads,
              c.vocab_size, c.ParameterCount() / 1e6, model.WeightBytes() / 1048576.0);
  std::printf("threads: %d, repeats: %d (medians; the first run of each measurement is a warm-up, "
              "decode rows run round-robin); weights %s\n", pool.size(), a.repeat,
              a.no_mmap ? "loaded into huge-page memory (--no-mmap)" : "memory-mapped");

  // Streaming bandwidth over a buffer far larger than the caches, probed before the tests and
  // again after each round of decode tests: on a shared machine another tenant can hold half of
  // it for minutes, so the roofline uses the best probe of the run (what the machine can
  // deliver), and every probe goes into the JSON. Each decode run is also followed by a short
  // probe of its own, for the share of the bandwidth it reached at that moment (paired).
  std::unique_ptr<ReadBandwidthProbe> probe;
  if (a.bandwidth_gib > 0) {
    probe = std::make_unique<ReadBandwidthProbe>(&pool, static_cast<size_t>(a.bandwidth_gib * (1ull << 30)));
  }
  std::vector<double> bw_probes;
  auto probe_bandwidth = [&] {
    if (probe) bw_probes.push_back(probe->Measure(5));
  };
  probe_bandwidth();
  const size_t weight_bytes = DecodeWeightBytes(model);
  std::printf("streaming read bandwidth: %.1f GB/s (first probe); weights read per decoded token: %.1f MB\n",
              bw_probes.empty() ? 0.0 : bw_probes.front() / 1e9, weight_bytes / 1e6);
  // Prefill's ceiling: quantized weights run as int8 dot products, float weights as fp32 FMAs.
  const ComputePeak peak = a.bandwidth_gib > 0 ? MeasureComputePeak(&pool) : ComputePeak{};
  const DType wq = model.weights().layers.front().wo.type;  // every arch has wo
  const bool int8_gemm = IsBlockQuantized(wq) && peak.int8_op_s > 0;
  const double pp_peak = int8_gemm ? peak.int8_op_s : peak.f32_flop_s;
  std::printf("compute peak: fp32 FMA %.0f GFLOP/s, int8 dot %.0f GOP/s\n\n", peak.f32_flop_s / 1e9,
              peak.int8_op_s / 1e9);

  const int32_t pp = std::min(a.pp, c.context_length);
  auto prefill = BenchPrefill(tf, pp, a.repeat);
  if (!prefill.ok()) return Fail(prefill.status().message());
  // Matmul FLOPs per token (2 per weight multiply-add), attention excluded.
  const double flops_per_token = 2.0 * (c.ParameterCount() - static_cast<double>(c.vocab_size) * c.dim *
                                        (c.tied_embeddings ? 0 : 1));
  std::printf("| test | tokens/s (median) | min | max | notes |\n|---|---|---|---|---|\n");
  const double pp_flop_s = prefill->median * flops_per_token;
  std::printf("| pp%d | %.1f | %.1f | %.1f | %.1f GFLOP/s in matmuls, %.0f%% of the %s peak |\n", pp,
              prefill->median, prefill->min, prefill->max, pp_flop_s / 1e9,
              pp_peak > 0 ? 100.0 * pp_flop_s / pp_peak : 0.0, int8_gemm ? "int8 dot" : "fp32 FMA");

  struct DepthRow {
    KVCacheOptions kv;
    size_t config;  // index into configs
    int32_t depth;
    std::vector<double> rates;
    std::vector<double> probes;  // bytes/s read by the probe right after each rate's run
    Summary tok_s;
    size_t kv_bytes = 0;
    double bytes_per_token = 0, roofline = 0;
    // Against the depth-0 row of the same KV configuration (depth > 0 only; 0 where unknown):
    // the share of its speed kept, the share the extra KV bytes would keep if they streamed as
    // fast as depth 0 streams its bytes, and the rate at which they did stream (extra bytes
    // over extra time per token).
    double of_depth0 = 0, ceiling_of_depth0 = 0, kv_gb_s = 0;
    // Medians over the rounds of ratios taken moments apart, robust to the machine's load
    // changing between rows: this run's share of the bandwidth probed right after it, and that
    // share against the depth-0 row's in the same round.
    double paired_fraction = 0, paired_of_depth0 = 0;
  };
  std::vector<DepthRow> rows;
  for (size_t ci = 0; ci < configs.size(); ++ci) {
    for (int32_t d : depths.value()) {
      if (d + a.tg + 1 > c.context_length && c.arch == Arch::kGpt2) {
        std::printf("| tg%d @ %d | (beyond gpt2's %d learned positions) | | | |\n", a.tg, d, c.context_length);
        continue;
      }
      DepthRow row;
      row.kv = configs[ci];
      row.config = ci;
      row.depth = d;
      rows.push_back(std::move(row));
    }
  }
  // Round-robin: each round runs every configuration once (round 0 is the warm-up), so a slow
  // spell of the shared machine lands on all rows alike and the rows' ratios stay comparable.
  // The rows are printed once every probe is in; progress goes to stderr meanwhile.
  std::fflush(stdout);
  for (int32_t round = 0; round <= a.repeat; ++round) {
    std::fprintf(stderr, "decode round %d of %d%s ...\n", round, a.repeat, round == 0 ? " (warm-up)" : "");
    for (DepthRow& row : rows) {
      auto r = BenchDecodeOnce(tf, row.kv, row.depth, a.tg, 5 + round);
      if (!r.ok()) return Fail(r.status().message());
      row.kv_bytes = r->kv_bytes;
      if (round > 0) {
        row.rates.push_back(r->tok_s);
        if (probe) row.probes.push_back(probe->Measure(2));
      }
    }
    if (round > 0) probe_bandwidth();
  }
  // The share of the probed bandwidth reached in round i.
  auto share = [](const DepthRow& row, size_t i) {
    return row.probes[i] > 0 ? row.rates[i] * row.bytes_per_token / row.probes[i] : 0.0;
  };
  for (DepthRow& row : rows) {
    row.tok_s = Summarize(row.rates);
    row.bytes_per_token = static_cast<double>(weight_bytes) + row.kv_bytes;
    std::vector<double> shares;
    for (size_t i = 0; i < row.probes.size(); ++i) shares.push_back(share(row, i));
    if (!shares.empty()) row.paired_fraction = Summarize(shares).median;
  }
  for (DepthRow& row : rows) {
    const auto base = std::find_if(rows.begin(), rows.end(), [&](const DepthRow& o) {
      return o.depth == 0 && o.config == row.config;
    });
    if (row.depth == 0 || base == rows.end() || base->tok_s.median <= 0 || row.tok_s.median <= 0) continue;
    row.of_depth0 = row.tok_s.median / base->tok_s.median;
    row.ceiling_of_depth0 = base->bytes_per_token / row.bytes_per_token;
    const double extra_s = 1.0 / row.tok_s.median - 1.0 / base->tok_s.median;
    if (extra_s > 0) row.kv_gb_s = (row.bytes_per_token - base->bytes_per_token) / extra_s / 1e9;
    std::vector<double> kept;  // tok/s over the probe, against depth 0's in the same round
    for (size_t i = 0; i < row.probes.size() && i < base->probes.size(); ++i) {
      const double b = share(*base, i) / base->bytes_per_token;
      if (b > 0) kept.push_back(share(row, i) / row.bytes_per_token / b);
    }
    if (!kept.empty()) row.paired_of_depth0 = Summarize(kept).median;
  }
  const double bw = bw_probes.empty() ? 0.0 : *std::max_element(bw_probes.begin(), bw_probes.end());
  for (DepthRow& row : rows) {
    row.roofline = bw > 0 ? bw / row.bytes_per_token : 0.0;
    std::printf("| tg%d @ depth %d, KV %s | %.1f | %.1f | %.1f | %.1f MB/token, roofline %.1f tok/s, %.0f%% of it",
                a.tg, row.depth, KVFlags::Describe(row.kv).c_str(), row.tok_s.median, row.tok_s.min,
                row.tok_s.max, row.bytes_per_token / 1e6, row.roofline,
                row.roofline > 0 ? 100.0 * row.tok_s.median / row.roofline : 0.0);
    if (row.paired_fraction > 0) {
      std::printf(" (%.0f%% of the bandwidth probed right after each run)", 100.0 * row.paired_fraction);
    }
    if (row.of_depth0 > 0) {
      std::printf("; %.0f%% of depth 0", 100.0 * row.of_depth0);
      if (row.paired_of_depth0 > 0) std::printf(" (%.0f%% paired by round)", 100.0 * row.paired_of_depth0);
      std::printf(" (%.0f%% if its KV read as fast as depth 0's bytes", 100.0 * row.ceiling_of_depth0);
      if (row.kv_gb_s > 0) std::printf("; KV at %.1f GB/s", row.kv_gb_s);
      std::printf(")");
    }
    std::printf(" |\n");
  }
  if (!bw_probes.empty()) {
    std::printf("\nbandwidth probes (GB/s):");
    for (double p : bw_probes) std::printf(" %.1f", p / 1e9);
    std::printf("; rooflines use the best, %.1f GB/s\n", bw / 1e9);
  }
  std::fflush(stdout);

  std::vector<CacheTableRow> table_rows;
  if (!a.skip_table) {
    std::printf("\nWith vs without KV cache (greedy, %d-token prompt, milliseconds: mean ± stdev over %d runs)\n",
                a.table_prompt, a.repeat);
    std::printf("| new tokens | with cache (ms) | without cache (ms) | speedup | same tokens |\n|---|---|---|---|---|\n");
    const auto prompt = RandomTokens(a.table_prompt, c.vocab_size, 7);
    for (int32_t n : table.value()) {
      if (n <= 0 || a.table_prompt + n > c.context_length) {
        std::printf("| %d | (outside the context of %d) | | | |\n", n, c.context_length);
        continue;
      }
      auto row = BenchCacheTable(gen, prompt, n, a.repeat);
      if (!row.ok()) return Fail(row.status().message());
      table_rows.push_back(row.value());
      std::printf("| %d | %.3f ± %.3f | %.3f ± %.3f | %.2fx | %s |\n", n, 1e3 * row->cached_s.mean,
                  1e3 * row->cached_s.stdev, 1e3 * row->uncached_s.mean, 1e3 * row->uncached_s.stdev,
                  row->uncached_s.mean / row->cached_s.mean, row->same_tokens ? "yes" : "NO");
      std::fflush(stdout);
    }
  }

  if (!a.json.empty()) {
    std::ostringstream js;
    js.precision(9);  // the default 6 digits round tok/s and byte counts visibly
    const DepthRow* first = rows.empty() ? nullptr : &rows.front();
    js << "{\n  \"model\": " << Quote(path.value()) << ",\n  \"arch\": " << Quote(ArchName(c.arch))
       << ",\n  \"parameters\": " << c.ParameterCount() << ",\n  \"weight_bytes\": " << model.WeightBytes()
       << ",\n  \"threads\": " << pool.size() << ",\n  \"mmap\": " << (a.no_mmap ? "false" : "true") << ",\n  \"repeat\": " << a.repeat
       << ",\n  \"pp_tokens\": " << pp << ",\n  \"pp_tok_s\": " << prefill->median
       << ",\n  \"pp\": " << J(prefill.value()) << ",\n  \"pp_gflop_s\": " << pp_flop_s / 1e9
       << ",\n  \"peak_f32_gflop_s\": " << peak.f32_flop_s / 1e9
       << ",\n  \"peak_int8_gop_s\": " << peak.int8_op_s / 1e9
       << ",\n  \"pp_peak_fraction\": " << (pp_peak > 0 ? pp_flop_s / pp_peak : 0)
       << ",\n  \"tg_tokens\": " << a.tg << ",\n  \"tg_tok_s\": " << (first ? first->tok_s.median : 0)
       << ",\n  \"bandwidth_gb_s\": " << bw / 1e9 << ",\n  \"bandwidth_probes_gb_s\": [";
    for (size_t i = 0; i < bw_probes.size(); ++i) js << (i ? ", " : "") << bw_probes[i] / 1e9;
    js << "]"
       << ",\n  \"bytes_per_token\": " << (first ? first->bytes_per_token : weight_bytes)
       << ",\n  \"roofline_tok_s\": " << (first ? first->roofline : bw / weight_bytes)
       << ",\n  \"roofline_fraction\": " << (first && first->roofline > 0 ? first->tok_s.median / first->roofline : 0)
       << ",\n  \"roofline_fraction_paired\": " << (first ? first->paired_fraction : 0)
       << ",\n  \"depth\": [";
    for (size_t i = 0; i < rows.size(); ++i) {
      const DepthRow& r = rows[i];
      js << (i ? ",\n" : "\n") << "    {\"depth\": " << r.depth << ", \"kv_type\": "
         << Quote(KVTypeName(r.kv.type_k)) << ", \"kv_layout\": " << Quote(KVLayoutName(r.kv.layout))
         << ", \"kv\": " << Quote(KVFlags::Describe(r.kv)) << ", \"tg_tok_s\": " << r.tok_s.median
         << ", \"tg\": " << J(r.tok_s) << ", \"tg_runs\": [";
      for (size_t k = 0; k < r.rates.size(); ++k) js << (k ? ", " : "") << r.rates[k];
      js << "], \"kv_bytes\": " << r.kv_bytes
         << ", \"bytes_per_token\": " << r.bytes_per_token << ", \"roofline_tok_s\": " << r.roofline
         << ", \"roofline_fraction\": " << (r.roofline > 0 ? r.tok_s.median / r.roofline : 0)
         << ", \"roofline_fraction_paired\": " << r.paired_fraction << ", \"probes_gb_s\": [";
      for (size_t k = 0; k < r.probes.size(); ++k) js << (k ? ", " : "") << r.probes[k] / 1e9;
      js << "]";
      if (r.of_depth0 > 0) {
        js << ", \"of_depth0\": " << r.of_depth0 << ", \"ceiling_of_depth0\": " << r.ceiling_of_depth0
           << ", \"kv_gb_s\": " << r.kv_gb_s << ", \"of_depth0_paired\": " << r.paired_of_depth0;
      }
      js << "}";
    }
    js << "\n  ],\n  \"cache_table\": [";
    for (size_t i = 0; i < table_rows.size(); ++i) {
      const CacheTableRow& r = table_rows[i];
      js << (i ? ",\n" : "\n") << "    {\"new_tokens\": " << r.new_tokens << ", \"cached_s\": " << J(r.cached_s)
         << ", \"uncached_s\": " << J(r.uncached_s) << ", \"speedup\": " << r.uncached_s.mean / r.cached_s.mean
         << ", \"same_tokens\": " << (r.same_tokens ? "true" : "false") << "}";
    }
    js << "\n  ]\n}\n";
    if (a.json == "-") {
      std::fputs(js.str().c_str(), stdout);
    } else {
      std::ofstream out(a.json);
      out << js.str();
      if (!out) return Fail("cannot write " + a.json);
      std::printf("\nwrote %s\n", a.json.c_str());
    }
  }
  return 0;
}

// Counts of at least 1. CLI11's PositiveNumber rejects 0 as "not in range 0 to 1.8e308".
const CLI::Validator kAtLeastOne = CLI::Validator(
    [](std::string& v) {
      int64_t n = 0;
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
      const bool ok = ec == std::errc() && end == v.data() + v.size() && n >= 1;
      return ok ? std::string() : "must be a whole number >= 1, got " + v;
    },
    "INT>=1");

RegisterCommand reg("bench", "Benchmark prefill, decode at KV depths, roofline, cached vs uncached",
                    [](CLI::App& sub) {
  auto a = std::make_shared<BenchArgs>();
  sub.add_option("-m,--model", a->model, "Model file (default: a synthetic model)");
  sub.add_flag("--no-mmap", a->no_mmap, "Load the weights into (huge-page) memory instead of mapping the file");
  sub.add_option("--preset", a->preset, "Preset of the synthetic model used without -m");
  sub.add_option("-t,--threads", a->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  sub.add_option("-r,--repeat", a->repeat, "Repetitions per measurement")->check(kAtLeastOne);
  sub.add_option("--pp", a->pp, "Prompt tokens for the prefill test")->check(kAtLeastOne);
  sub.add_option("--tg", a->tg, "New tokens for the decode tests")->check(kAtLeastOne);
  sub.add_option("--depth", a->depths, "KV depths for the decode test, e.g. 0,1024,4096,16384");
  sub.add_option("--kv-types", a->kv_types, "KV types for the decode tests, e.g. f32,f16,q8,q4");
  sub.add_option("--kv-layouts", a->kv_layouts, "KV layouts for the decode tests, e.g. paged,contiguous");
  sub.add_option("--table", a->table, "New-token counts for the cached vs uncached table");
  sub.add_option("--table-prompt", a->table_prompt, "Prompt tokens for the table")
      ->check(kAtLeastOne);
  sub.add_flag("--no-table", a->skip_table, "Skip the cached vs uncached table");
  sub.add_option("--json", a->json, "Also write the results as JSON to this file ('-' for stdout)");
  sub.add_option("--bandwidth-gib", a->bandwidth_gib, "Buffer size of the bandwidth probe (GiB)")
      ->check(CLI::Range(0.0625, 64.0));
  sub.add_flag("--callgrind", a->callgrind,
               "Fixed small single-threaded workload for instruction counts: "
               "valgrind --tool=callgrind kvcache bench --callgrind -m MODEL");
  a->kv.Add(sub);
  return [a] { return Run(*a); };
});

}  // namespace
}  // namespace kvc::cli
