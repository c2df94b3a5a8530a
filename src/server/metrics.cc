#include "server/metrics.h"

#include <cstdio>

namespace kvc {
namespace {

void Metric(std::string* out, const char* name, const char* type, const char* help, double value) {
  char line[96];
  std::snprintf(line, sizeof(line), "%.6g", value);
  *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
          name + " " + line + "\n";
}

}  // namespace

std::string PrometheusText(const EngineMetrics& m, const ServerCounters& s) {
  std::string o;
  Metric(&o, "kvcache_kv_blocks_total", "gauge", "KV cache blocks in the shared pool.", m.blocks_total);
  Metric(&o, "kvcache_kv_blocks_used", "gauge", "Blocks referenced by running sequences.", m.blocks_used);
  Metric(&o, "kvcache_kv_blocks_cached", "gauge", "Blocks registered in the prefix cache.", m.blocks_cached);
  Metric(&o, "kvcache_kv_block_size_tokens", "gauge", "Tokens per KV block.", m.block_size);
  Metric(&o, "kvcache_prefix_hit_rate", "gauge", "Prompt tokens served from the prefix cache / prompt tokens.", m.PrefixHitRate());
  Metric(&o, "kvcache_prompt_tokens_total", "counter", "Prompt tokens admitted.", m.prompt_tokens);
  Metric(&o, "kvcache_prefix_hit_tokens_total", "counter", "Prompt tokens served from the prefix cache.", m.prefix_hit_tokens);
  Metric(&o, "kvcache_computed_tokens_total", "counter", "Tokens run through the model.", m.computed_tokens);
  Metric(&o, "kvcache_generated_tokens_total", "counter", "Tokens generated.", m.generated_tokens);
  Metric(&o, "kvcache_generation_tokens_per_second", "gauge", "Generated tokens per second of engine time.", m.GeneratedTokensPerSecond());
  Metric(&o, "kvcache_requests_running", "gauge", "Sequences in the running batch.", m.running);
  Metric(&o, "kvcache_queue_length", "gauge", "Requests waiting for admission.", m.waiting);
  Metric(&o, "kvcache_requests_finished_total", "counter", "Requests the engine finished.", m.requests_finished);
  Metric(&o, "kvcache_preemptions_total", "counter", "Sequences preempted (recomputed later) for memory.", m.preemptions);
  Metric(&o, "kvcache_evictions_total", "counter", "Cached blocks evicted (LRU) for memory.", m.evictions);
  Metric(&o, "kvcache_engine_steps_total", "counter", "Engine steps (batched forward passes).", m.steps);
  Metric(&o, "kvcache_http_requests_total", "counter", "Completion requests received.", s.requests);
  Metric(&o, "kvcache_http_errors_total", "counter", "Completion requests answered with an error.", s.errors);
  return o;
}

}  // namespace kvc
