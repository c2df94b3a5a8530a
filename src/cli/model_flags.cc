#include "cli/model_flags.h"

#include <algorithm>

#include "formats/gguf.h"

namespace kvc::cli {

void ModelFlags::Add(CLI::App& app, bool required, const std::string& ctx_help) {
  auto* m = app.add_option("-m,--model", model, "Model file (GGUF or llama2.c .bin)");
  if (required) m->required();
  app.add_option("-z,--tokenizer", tokenizer, "llama2.c tokenizer file (for .bin models)");
  app.add_option("-c,--ctx-size", ctx, ctx_help)->check(CLI::NonNegativeNumber);
  app.add_option("-t,--threads", threads, "Threads (0: all cores)")->check(CLI::NonNegativeNumber);
  app.add_flag("--no-mmap", no_mmap,
               "Load the weights into (huge-page) memory instead of mapping the file: slower start, "
               "faster decode");
}

void EngineFlags::Add(CLI::App& app, bool prefix_flag) {
  app.add_option("--parallel", parallel, "Sequences decoded together")->check(CLI::Range(1, 1024));
  app.add_option("--kv-blocks", kv_blocks, "Blocks in the shared KV pool (0: --parallel full contexts)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--step-tokens", step_tokens, "Tokens per engine step (chunked prefill budget)")
      ->check(CLI::Range(1, 1 << 20));
  if (prefix_flag) {
    app.add_flag("--no-prefix-cache", no_prefix_cache, "Do not reuse cached blocks of shared prefixes");
  }
}

EngineOptions EngineFlags::ToOptions(const ModelFlags& m, const KVCacheOptions& kv) const {
  EngineOptions eo;
  eo.context_length = m.ctx;
  eo.num_blocks = kv_blocks;
  eo.kv = kv;
  eo.scheduler.max_running = parallel;
  eo.scheduler.step_tokens = step_tokens;
  eo.scheduler.prefix_caching = !no_prefix_cache;
  return eo;
}

ChatFormat ModelChatFormat(const LoadedModel& model) {
  std::string chat_template;
  if (const GgufFile* g = model.file->gguf()) {
    if (auto t = g->GetString("tokenizer.chat_template"); t.ok()) chat_template = t.value();
  }
  return DetectChatFormat(chat_template);
}

Result<std::unique_ptr<LocalServer>> LocalServer::Start(const LoadedModel& model, int32_t threads,
                                                        const EngineOptions& eo, ServerOptions so) {
  std::unique_ptr<LocalServer> s(new LocalServer());
  s->pool_ = std::make_unique<ThreadPool>(threads);
  KVC_ASSIGN_OR_RETURN(s->engine_, Engine::Create(*model.file, s->pool_.get(), eo));
  s->engine_->Start();
  so.chat_format = ModelChatFormat(model);
  s->options_ = so;
  s->server_ = std::make_unique<HttpServer>(*s->engine_, *model.tokenizer, so);
  KVC_RETURN_IF_ERROR(s->server_->Start());
  return s;
}

LocalServer::~LocalServer() { Stop(); }

void LocalServer::Stop() {
  if (server_) server_->Stop();
  if (engine_) engine_->Stop();
}

}  // namespace kvc::cli
