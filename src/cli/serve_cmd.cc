// kvcache serve: an OpenAI-compatible HTTP server over the multi-sequence engine (see
// docs/SERVING.md). Runs until SIGINT or SIGTERM.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/kv_flags.h"
#include "engine/engine.h"
#include "engine/generator.h"
#include "formats/gguf.h"
#include "server/http_server.h"

namespace kvc::cli {
namespace {

struct ServeArgs {
  std::string model;
  std::string tokenizer;
  std::string alias;
  std::string host = "127.0.0.1";
  int port = 8080;
  int32_t parallel = 4;
  int32_t ctx = 0;
  int32_t threads = 0;
  int32_t kv_blocks = 0;
  int32_t step_tokens = 256;
  int32_t default_max_tokens = 256;
  size_t max_body = 1 << 20;
  bool no_prefix_cache = false;
  KVFlags kv;
};

int Run(const ServeArgs& a) {
  auto kv = a.kv.ToOptions();
  if (!kv.ok()) return Fail(kv.status().message());
  if (a.kv.sinks > 0 || a.kv.context_shift) return Fail("serve does not support --kv-sinks or --context-shift yet");
  auto loaded = LoadedModel::Load(a.model, a.tokenizer);
  if (!loaded.ok()) return Fail(loaded.status().message());

  // Signals go to the sigwait below, not to whichever thread happens to run.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ThreadPool pool(a.threads);
  EngineOptions eo;
  eo.context_length = a.ctx;
  eo.num_blocks = a.kv_blocks;
  eo.kv = kv.value();
  eo.scheduler.max_running = a.parallel;
  eo.scheduler.step_tokens = a.step_tokens;
  eo.scheduler.prefix_caching = !a.no_prefix_cache;
  auto engine = Engine::Create(*loaded->file, &pool, eo);
  if (!engine.ok()) return Fail(engine.status().message());
  engine.value()->Start();

  ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.model_id = a.alias.empty() ? std::filesystem::path(a.model).stem().string() : a.alias;
  so.max_body_bytes = a.max_body;
  so.http_threads = std::max(8, 2 * a.parallel + 4);
  so.default_max_tokens = a.default_max_tokens;
  std::string chat_template;
  if (const GgufFile* g = loaded->file->gguf()) {
    if (auto t = g->GetString("tokenizer.chat_template"); t.ok()) chat_template = t.value();
  }
  so.chat_format = DetectChatFormat(chat_template);
  HttpServer server(*engine.value(), *loaded->tokenizer, so);
  if (Status st = server.Start(); !st.ok()) return Fail(st.message());
  const EngineLimits& lim = engine.value()->limits();
  std::fprintf(stderr,
               "kvcache serve: model '%s' on http://%s:%d | context %d | %d KV blocks of %d tokens "
               "(%s) | parallel %d | chat format %s | prefix cache %s\n",
               so.model_id.c_str(), a.host.c_str(), server.port(), lim.context_length, lim.num_blocks,
               lim.block_size, KVFlags::Describe(kv.value()).c_str(), a.parallel,
               ChatFormatName(so.chat_format), a.no_prefix_cache ? "off" : "on");
  std::fflush(stderr);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "kvcache serve: stopping (signal %d)\n", sig);
  server.Stop();
  engine.value()->Stop();
  return 0;
}

RegisterCommand reg("serve", "Serve the model over an OpenAI-compatible HTTP API", [](CLI::App& sub) {
  auto a = std::make_shared<ServeArgs>();
  sub.add_option("-m,--model", a->model, "Model file (GGUF or llama2.c .bin)")->required();
  sub.add_option("-z,--tokenizer", a->tokenizer, "llama2.c tokenizer file (for .bin models)");
  sub.add_option("--alias", a->alias, "Model id clients use (default: the file name without extension)");
  sub.add_option("--host", a->host, "Address to listen on");
  sub.add_option("--port", a->port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
  sub.add_option("--parallel", a->parallel, "Sequences decoded together")->check(CLI::Range(1, 1024));
  sub.add_option("-c,--ctx-size", a->ctx, "Context length per sequence (0: the model's)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("-t,--threads", a->threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  sub.add_option("--kv-blocks", a->kv_blocks, "Blocks in the shared KV pool (0: --parallel full contexts)")
      ->check(CLI::NonNegativeNumber);
  sub.add_option("--step-tokens", a->step_tokens, "Tokens per engine step (chunked prefill budget)")
      ->check(CLI::Range(1, 1 << 20));
  sub.add_option("--default-max-tokens", a->default_max_tokens, "max_tokens when a request gives none")
      ->check(CLI::Range(1, 1 << 30));
  sub.add_option("--max-body", a->max_body, "Largest request body in bytes");
  sub.add_flag("--no-prefix-cache", a->no_prefix_cache, "Do not reuse cached blocks of shared prefixes");
  a->kv.Add(sub);
  return [a] { return Run(*a); };
});

}  // namespace
}  // namespace kvc::cli
