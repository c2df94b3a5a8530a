// kvcache serve: an OpenAI-compatible HTTP server over the multi-sequence engine (see
// docs/SERVING.md). Runs until SIGINT or SIGTERM.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/command.h"
#include "cli/kv_flags.h"
#include "cli/model_flags.h"

namespace kvc::cli {
namespace {

struct ServeArgs {
  ModelFlags model;
  EngineFlags engine;
  std::string alias;
  std::string host = "127.0.0.1";
  int port = 8080;
  int32_t default_max_tokens = 256;
  size_t max_body = 1 << 20;
  KVFlags kv;
};

int Run(const ServeArgs& a) {
  auto kv = a.kv.ToOptions();
  if (!kv.ok()) return Fail(kv.status().message());
  if (a.kv.sinks > 0 || a.kv.context_shift) return Fail("serve does not support --kv-sinks or --context-shift yet");
  auto loaded = a.model.Load();
  if (!loaded.ok()) return Fail(loaded.status().message());

  // Signals go to the sigwait below, not to whichever thread happens to run.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ServerOptions so;
  so.host = a.host;
  so.port = a.port;
  so.model_id = a.alias.empty() ? std::filesystem::path(a.model.model).stem().string() : a.alias;
  so.max_body_bytes = a.max_body;
  so.http_threads = std::max(8, 2 * a.engine.parallel + 4);
  so.default_max_tokens = a.default_max_tokens;
  auto server = LocalServer::Start(*loaded, a.model.threads, a.engine.ToOptions(a.model, kv.value()), so);
  if (!server.ok()) return Fail(server.status().message());
  const EngineLimits& lim = server.value()->engine().limits();
  std::fprintf(stderr,
               "kvcache serve: model '%s' on http://%s:%d | context %d | %d KV blocks of %d tokens "
               "(%s) | parallel %d | chat format %s | prefix cache %s\n",
               so.model_id.c_str(), a.host.c_str(), server.value()->port(), lim.context_length,
               lim.num_blocks, lim.block_size, KVFlags::Describe(kv.value()).c_str(), a.engine.parallel,
               ChatFormatName(server.value()->options().chat_format),
               a.engine.no_prefix_cache ? "off" : "on");
  std::fflush(stderr);
  int sig = 0;
  sigwait(&signals, &sig);
  std::fprintf(stderr, "kvcache serve: stopping (signal %d)\n", sig);
  server.value()->Stop();
  return 0;
}

RegisterCommand reg("serve", "Serve the model over an OpenAI-compatible HTTP API", [](CLI::App& sub) {
  auto a = std::make_shared<ServeArgs>();
  a->model.Add(sub, /*required=*/true, "Context length per sequence (0: the model's)");
  sub.add_option("--alias", a->alias, "Model id clients use (default: the file name without extension)");
  sub.add_option("--host", a->host, "Address to listen on");
  sub.add_option("--port", a->port, "Port (0: any free port)")->check(CLI::Range(0, 65535));
  a->engine.Add(sub);
  sub.add_option("--default-max-tokens", a->default_max_tokens, "max_tokens when a request gives none")
      ->check(CLI::Range(1, 1 << 30));
  sub.add_option("--max-body", a->max_body, "Largest request body in bytes");
  a->kv.Add(sub);
  return [a] { return Run(*a); };
});

}  // namespace
}  // namespace kvc::cli
