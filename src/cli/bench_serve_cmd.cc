// kvcache bench-serve: drives an OpenAI-compatible server with concurrent streaming clients and
// reports throughput, time to first token, inter-token latency, the prefix-cache hit rate and
// the second-turn TTFT of conversations (see docs/SERVING.md). Either against a running server
// (--url) or against servers it starts in this process (-m), with and without prefix caching.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "cli/kv_flags.h"
#include "cli/model_flags.h"
#include "server/load_client.h"

namespace kvc::cli {
namespace {

using json = nlohmann::ordered_json;

struct BenchServeArgs {
  ModelFlags model;
  EngineFlags engine;
  KVFlags kv;
  std::string url;
  std::string clients = "1,4,16";
  std::string prefix_cache = "both";
  std::string json_path;
  LoadOptions load;
};

// One server configuration's results.
struct Run {
  std::string label;  // "on", "off" or "server" (--url: unknown)
  int32_t prompt_tokens = 0;  // mean over the first level's requests
  std::vector<LoadLevelResult> levels;
  MultiTurnResult multi_turn;
};

Result<std::vector<int32_t>> ParseClients(const std::string& s) {
  std::vector<int32_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (*end != '\0' || v < 1 || v > 1024) return InvalidArgument("bad --clients entry '" + item + "' (1..1024)");
    out.push_back(static_cast<int32_t>(v));
  }
  if (out.empty()) return InvalidArgument("--clients needs at least one number");
  return out;
}

std::string Ms(double seconds) {
  char buf[32];
  const char* format = seconds >= 0.1 ? "%.0f" : seconds >= 0.01 ? "%.1f" : seconds >= 0.001 ? "%.2f" : "%.3f";
  std::snprintf(buf, sizeof(buf), format, seconds * 1e3);
  return buf;
}

std::string Fixed(double v, int digits) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string Triple(const Percentiles& p) {
  if (p.count == 0) return "-";
  return Ms(p.p50) + " / " + Ms(p.p90) + " / " + Ms(p.p99);
}

json Json(const Percentiles& p) {
  return {{"count", p.count}, {"mean", p.mean * 1e3}, {"p50", p.p50 * 1e3}, {"p90", p.p90 * 1e3},
          {"p99", p.p99 * 1e3}};
}

// The workload against one server: calibration, every concurrency level, the multi-turn scenario.
Result<Run> Drive(const LoadClient& client, const LoadOptions& load, const std::vector<int32_t>& levels,
                  const std::string& label) {
  Run run;
  run.label = label;
  LoadGenerator gen(client, load);
  KVC_RETURN_IF_ERROR(gen.Prepare());
  for (size_t i = 0; i < levels.size(); ++i) {
    LoadLevelResult r = gen.RunLevel(levels[i], static_cast<int32_t>(i));
    std::fprintf(stderr, "  prefix cache %s, %d clients: %d requests in %.2f s, %.1f tok/s, TTFT p50 %s ms\n",
                 label.c_str(), r.clients, r.requests, r.seconds, r.TokensPerSecond(), Ms(r.ttft.p50).c_str());
    if (r.errors > 0) std::fprintf(stderr, "  %d requests failed; first: %s\n", r.errors, r.first_error.c_str());
    if (r.requests > r.errors && run.prompt_tokens == 0) {
      run.prompt_tokens = static_cast<int32_t>(r.prompt_tokens / (r.requests - r.errors));
    }
    run.levels.push_back(std::move(r));
  }
  if (load.conversations > 0) {
    run.multi_turn = gen.RunMultiTurn();
    const MultiTurnResult& m = run.multi_turn;
    std::fprintf(stderr, "  prefix cache %s, multi-turn: turn 2 TTFT p50 %s ms (%.0f of %.0f prompt tokens cached)\n",
                 label.c_str(), Ms(m.turn2_ttft.p50).c_str(), m.turn2_cached_tokens, m.turn2_prompt_tokens);
    if (m.errors > 0) std::fprintf(stderr, "  %d conversations failed; first: %s\n", m.errors, m.first_error.c_str());
  }
  return run;
}

int Main(const BenchServeArgs& a) {
  if (a.url.empty() == a.model.model.empty()) return Fail("give either --url of a running server or -m MODEL");
  auto levels = ParseClients(a.clients);
  if (!levels.ok()) return Fail(levels.status().message());
  if (a.prefix_cache != "both" && a.prefix_cache != "on" && a.prefix_cache != "off") {
    return Fail("--prefix-cache must be both, on or off");
  }
  LoadOptions load = a.load;
  const int32_t max_clients = *std::max_element(levels->begin(), levels->end());
  std::vector<Run> runs;
  json config = {{"clients", *levels}, {"max_tokens", load.max_tokens}, {"requests_per_level", load.requests},
                 {"conversations", load.conversations}, {"temperature", 0}};
  std::string title;

  if (!a.url.empty()) {
    auto addr = ParseServerUrl(a.url);
    if (!addr.ok()) return Fail(addr.status().message());
    LoadClient client(addr.value());
    auto id = client.FirstModelId();
    if (!id.ok()) return Fail(id.status().message());
    load.model = id.value();
    title = "server " + a.url + ", model '" + load.model + "'";
    config["url"] = a.url;
    config["system_tokens"] = load.system_tokens;
    std::fprintf(stderr, "bench-serve: %s\n", title.c_str());
    auto run = Drive(client, load, levels.value(), "server");
    if (!run.ok()) return Fail(run.status().message());
    runs.push_back(std::move(run.value()));
  } else {
    auto kv = a.kv.ToOptions();
    if (!kv.ok()) return Fail(kv.status().message());
    if (a.kv.sinks > 0 || a.kv.context_shift) return Fail("bench-serve does not support --kv-sinks or --context-shift");
    auto loaded = a.model.Load();
    if (!loaded.ok()) return Fail(loaded.status().message());
    EngineFlags ef = a.engine;
    if (ef.parallel <= 0) ef.parallel = max_clients;
    ServerOptions so;
    so.host = "127.0.0.1";
    so.port = 0;
    so.model_id = std::filesystem::path(a.model.model).stem().string();
    so.http_threads = std::max({8, 2 * ef.parallel + 4, max_clients + 8});
    load.model = so.model_id;
    std::vector<bool> modes;
    if (a.prefix_cache != "off") modes.push_back(true);
    if (a.prefix_cache != "on") modes.push_back(false);
    for (bool on : modes) {
      ef.no_prefix_cache = !on;
      auto server = LocalServer::Start(*loaded, a.model.threads, ef.ToOptions(a.model, kv.value()), so);
      if (!server.ok()) return Fail(server.status().message());
      const EngineLimits& lim = server.value()->engine().limits();
      if (title.empty()) {
        // A request holds the system prompt, the chat template's words, a question and
        // max_tokens: keep it inside the context.
        const int32_t room = lim.context_length - load.max_tokens - 96;
        if (room < 16) return Fail("the context (" + std::to_string(lim.context_length) + ") is too small for --max-tokens " +
                                   std::to_string(load.max_tokens));
        if (load.system_tokens > room) {
          std::fprintf(stderr, "bench-serve: --system-tokens %d does not fit a %d-token context; using %d\n",
                       load.system_tokens, lim.context_length, room);
          load.system_tokens = room;
        }
        title = "model '" + so.model_id + "' in process: context " + std::to_string(lim.context_length) + ", " +
                std::to_string(lim.num_blocks) + " KV blocks of " + std::to_string(lim.block_size) + " (" +
                KVFlags::Describe(kv.value()) + "), parallel " + std::to_string(ef.parallel) + ", " +
                std::to_string(server.value()->threads()) + " threads";
        config["model"] = a.model.model;
        config["context"] = lim.context_length;
        config["kv_blocks"] = lim.num_blocks;
        config["kv_block_size"] = lim.block_size;
        config["kv"] = KVFlags::Describe(kv.value());
        config["parallel"] = ef.parallel;
        config["threads"] = server.value()->threads();
        config["step_tokens"] = ef.step_tokens;
        config["system_tokens"] = load.system_tokens;
        std::fprintf(stderr, "bench-serve: %s\n", title.c_str());
      }
      LoadClient client(ServerAddress{"127.0.0.1", server.value()->port()});
      auto run = Drive(client, load, levels.value(), on ? "on" : "off");
      server.value()->Stop();
      if (!run.ok()) return Fail(run.status().message());
      runs.push_back(std::move(run.value()));
    }
  }

  // Markdown.
  std::printf("## bench-serve: %s\n\n", title.c_str());
  std::printf("Streamed chat requests of ~%d prompt tokens (a shared system prompt of ~%d tokens + a distinct "
              "question), greedy, max_tokens %d; latencies in ms (p50 / p90 / p99).\n\n",
              runs.empty() ? 0 : runs[0].prompt_tokens, load.system_tokens, load.max_tokens);
  std::printf("| prefix cache | clients | requests | errors | req/s | gen tok/s | TTFT ms | ITL ms | prefix hit rate |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  int64_t errors = 0;
  std::string first_error;
  for (const Run& r : runs) {
    for (const LoadLevelResult& l : r.levels) {
      errors += l.errors;
      if (first_error.empty()) first_error = l.first_error;
      std::printf("| %s | %d | %d | %d | %s | %s | %s | %s | %s |\n", r.label.c_str(), l.clients, l.requests,
                  l.errors, Fixed(l.RequestsPerSecond(), 2).c_str(), Fixed(l.TokensPerSecond(), 1).c_str(),
                  Triple(l.ttft).c_str(), Triple(l.itl).c_str(),
                  l.prefix_hit_rate >= 0 ? Fixed(l.prefix_hit_rate, 2).c_str() : "n/a");
    }
  }
  if (load.conversations > 0) {
    std::printf("\nMulti-turn: %d conversations one after another; turn 2 = turn 1's messages + its answer + a new "
                "question.\n\n", load.conversations);
    std::printf("| prefix cache | turn 1 TTFT ms (p50) | turn 2 TTFT ms (p50 / p90 / p99) | turn 2 prompt tokens | "
                "turn 2 cached tokens |\n|---|---|---|---|---|\n");
    for (const Run& r : runs) {
      const MultiTurnResult& m = r.multi_turn;
      errors += m.errors;
      if (first_error.empty()) first_error = m.first_error;
      std::printf("| %s | %s | %s | %.0f | %.0f |\n", r.label.c_str(),
                  m.turn1_ttft.count ? Ms(m.turn1_ttft.p50).c_str() : "-", Triple(m.turn2_ttft).c_str(),
                  m.turn2_prompt_tokens, m.turn2_cached_tokens);
    }
  }
  std::fflush(stdout);

  if (!a.json_path.empty()) {
    json out = {{"command", "bench-serve"}, {"config", config}, {"runs", json::array()}};
    for (const Run& r : runs) {
      json levels_json = json::array();
      for (const LoadLevelResult& l : r.levels) {
        levels_json.push_back({{"clients", l.clients},
                               {"requests", l.requests},
                               {"errors", l.errors},
                               {"seconds", l.seconds},
                               {"requests_per_second", l.RequestsPerSecond()},
                               {"generated_tokens", l.generated_tokens},
                               {"generated_tokens_per_second", l.TokensPerSecond()},
                               {"prompt_tokens", l.prompt_tokens},
                               {"cached_tokens", l.cached_tokens},
                               {"ttft_ms", Json(l.ttft)},
                               {"itl_ms", Json(l.itl)},
                               {"prefix_hit_rate", l.prefix_hit_rate >= 0 ? json(l.prefix_hit_rate) : json()}});
      }
      const MultiTurnResult& m = r.multi_turn;
      out["runs"].push_back({{"prefix_cache", r.label},
                             {"prompt_tokens_mean", r.prompt_tokens},
                             {"levels", levels_json},
                             {"multi_turn", {{"conversations", m.conversations},
                                             {"errors", m.errors},
                                             {"turn1_ttft_ms", Json(m.turn1_ttft)},
                                             {"turn2_ttft_ms", Json(m.turn2_ttft)},
                                             {"turn2_prompt_tokens", m.turn2_prompt_tokens},
                                             {"turn2_cached_tokens", m.turn2_cached_tokens}}}});
    }
    std::ofstream f(a.json_path);
    f << out.dump(2) << "\n";
    if (!f) return Fail("cannot write " + a.json_path);
  }
  if (errors > 0) return Fail(std::to_string(errors) + " requests failed; first: " + first_error);
  return 0;
}

RegisterCommand reg("bench-serve", "Benchmark serving: concurrent streaming clients, TTFT, ITL, prefix reuse",
                    [](CLI::App& sub) {
  auto a = std::make_shared<BenchServeArgs>();
  a->engine.parallel = 0;  // default: the largest --clients value
  sub.add_option("--url", a->url, "A running server (http://HOST:PORT) instead of -m");
  a->model.Add(sub, /*required=*/false,
               "Context length per sequence of the in-process server (0: the model's)");
  sub.add_option("--clients", a->clients, "Concurrency levels, e.g. 1,4,16");
  sub.add_option("--requests", a->load.requests, "Requests per level (0: max(8, 4 x clients))")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--max-tokens", a->load.max_tokens, "max_tokens of each request")->check(CLI::Range(1, 1 << 20));
  sub.add_option("--system-tokens", a->load.system_tokens, "Length of the shared system prompt in tokens")
      ->check(CLI::Range(1, 1 << 20));
  sub.add_option("--conversations", a->load.conversations, "Conversations of the multi-turn scenario (0: skip)")
      ->check(CLI::Range(0, 1 << 16));
  sub.add_option("--prefix-cache", a->prefix_cache, "With -m: run with prefix caching on, off or both");
  sub.add_option("--json", a->json_path, "Also write the results as JSON to this file");
  a->engine.Add(sub, /*prefix_flag=*/false);
  a->kv.Add(sub);
  return [a] { return Main(*a); };
});

}  // namespace
}  // namespace kvc::cli
