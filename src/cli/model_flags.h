// The options shared by the commands that load and run a model (generate, serve, bench-serve):
// the model file and its tokenizer, the context length, the thread count; and, for the commands
// that serve (serve, bench-serve), the engine's scheduling options and the in-process server.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/generator.h"
#include "server/http_server.h"
#include "threading/thread_pool.h"

namespace kvc::cli {

// -m, -z, -c, -t.
struct ModelFlags {
  std::string model;
  std::string tokenizer;
  int32_t ctx = 0;
  int32_t threads = 0;
  bool no_mmap = false;

  // Adds the flags to `app`. `required`: -m must be given; `ctx_help` describes -c.
  void Add(CLI::App& app, bool required = true,
           const std::string& ctx_help = "Context length (0: the model's)");
  Result<LoadedModel> Load() const {
    return LoadedModel::Load(model, tokenizer, no_mmap ? MappedFile::Mode::kLoad : MappedFile::Mode::kMap);
  }
};

// --parallel, --kv-blocks, --step-tokens, --no-prefix-cache: how the engine schedules requests.
struct EngineFlags {
  int32_t parallel = 4;
  int32_t kv_blocks = 0;
  int32_t step_tokens = 256;
  bool no_prefix_cache = false;

  // `prefix_flag`: also --no-prefix-cache.
  void Add(CLI::App& app, bool prefix_flag = true);
  // The engine's options with `kv` (a paged layout) and the model flags' context length.
  EngineOptions ToOptions(const ModelFlags& m, const KVCacheOptions& kv) const;
};

// The chat format a model's GGUF template names (plain when it has none).
ChatFormat ModelChatFormat(const LoadedModel& model);

// An engine and its HTTP server in this process (kvcache serve, bench-serve -m): started by
// Start, stopped (server first) by Stop or destruction.
class LocalServer {
 public:
  // `model` must outlive the server. `so.chat_format` is set from the model.
  static Result<std::unique_ptr<LocalServer>> Start(const LoadedModel& model, int32_t threads,
                                                    const EngineOptions& eo, ServerOptions so);
  ~LocalServer();
  void Stop();

  int port() const { return server_->port(); }
  Engine& engine() { return *engine_; }
  const ServerOptions& options() const { return options_; }
  int32_t threads() const { return static_cast<int32_t>(pool_->size()); }

 private:
  LocalServer() = default;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<HttpServer> server_;
  ServerOptions options_;
};

}  // namespace kvc::cli
