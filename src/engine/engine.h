// The multi-sequence engine: one thread owns every sequence, the scheduler and the model, and
// runs steps that batch all running sequences into one Forward (each chunk reads its own block
// table in the shared paged pool). Clients submit from any thread and read tokens from their
// RequestStream; nothing a client does waits on another client's request.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"
#include "kvcache/kv_cache_factory.h"
#include "model/model_file.h"
#include "model/transformer.h"
#include "threading/thread_pool.h"

namespace kvc {

struct EngineOptions {
  int32_t context_length = 0;  // positions per sequence; 0: the model's
  int32_t num_blocks = 0;      // blocks in the shared pool; 0: max_running full contexts
  KVCacheOptions kv;           // element types and block size (the layout is always paged)
  SchedulerOptions scheduler;
};

// A snapshot for /metrics and tests.
struct EngineMetrics {
  int32_t blocks_total = 0;
  int32_t blocks_used = 0;       // referenced by a sequence
  int32_t blocks_cached = 0;     // registered in the prefix cache (referenced or not)
  int32_t block_size = 0;
  int32_t running = 0;
  int32_t waiting = 0;           // queued, not yet (or no longer) running
  int64_t requests_finished = 0;
  int64_t prompt_tokens = 0;     // admitted prompt tokens
  int64_t prefix_hit_tokens = 0;  // of those, served from the prefix cache
  int64_t computed_tokens = 0;   // tokens run through the model
  int64_t generated_tokens = 0;
  int64_t preemptions = 0;
  int64_t evictions = 0;
  int64_t steps = 0;
  double busy_seconds = 0;       // time spent in steps

  double PrefixHitRate() const { return prompt_tokens ? double(prefix_hit_tokens) / prompt_tokens : 0; }
  double GeneratedTokensPerSecond() const { return busy_seconds > 0 ? generated_tokens / busy_seconds : 0; }
};

// What the live page (GET /v1/cache) shows of the shared pool, published by the engine thread
// at the end of every step (so it is always one consistent moment).
enum class BlockState : uint8_t {
  kFree,    // on the free list
  kUsed,    // referenced by exactly one sequence
  kShared,  // referenced by more than one (prefix-cache hits, forks)
  kCached,  // registered in the prefix cache and unreferenced: reusable, evicted LRU when needed
};
const char* BlockStateName(BlockState s);  // "free", "used", "shared", "cached"

enum class SequencePhase { kWaiting, kPrefill, kDecode };
const char* SequencePhaseName(SequencePhase p);  // "waiting", "prefill", "decode"

struct SequenceSnapshot {
  int64_t id = 0;
  SequencePhase phase = SequencePhase::kWaiting;
  int32_t prompt_tokens = 0;
  int32_t generated_tokens = 0;
  int32_t cached_tokens = 0;    // prompt tokens served from the prefix cache (first admission)
  int32_t computed_tokens = 0;  // tokens whose K/V are in the cache now
  int32_t max_tokens = 0;
  int32_t preemptions = 0;
  std::vector<BlockId> blocks;  // block table: physical block of each logical block, in order
  size_t bytes = 0;             // KV bytes its cache holds (a shared block counts in each holder)
};

struct CacheSnapshot {
  // Fixed for the engine's life.
  int32_t num_blocks = 0;
  int32_t block_size = 0;
  size_t bytes_per_block = 0;  // K + V, all layers
  std::string kv_type;         // "f32", or "q8/f16" when K and V differ
  bool prefix_caching = false;
  // At the end of the last step.
  std::vector<BlockState> blocks;     // per physical block
  std::vector<uint8_t> registered;    // per block: 1 when registered in the prefix cache
  std::vector<int32_t> refs;          // per block: reference count
  std::vector<SequenceSnapshot> sequences;  // running (oldest first), then waiting (next first)
  EngineMetrics metrics;

  int32_t Count(BlockState s) const;
};

struct EngineLimits {
  int32_t context_length = 0;
  int32_t num_blocks = 0;
  int32_t block_size = 0;
  int32_t vocab_size = 0;
};

class Engine {
 public:
  // `model` and `pool` must outlive the engine. Fails on bad cache options or no memory.
  static Result<std::unique_ptr<Engine>> Create(const ModelFile& model, ThreadPool* pool,
                                                const EngineOptions& options);
  ~Engine();

  // Thread-safe. Checks the request against the limits now (empty prompt, bad token ids,
  // context overflow, a request the whole pool could never hold) and queues it.
  Result<std::shared_ptr<RequestStream>> Submit(std::vector<int32_t> prompt,
                                                const RequestOptions& options);

  // Runs the step loop on a background thread until Stop (or destruction).
  void Start();
  void Stop();

  // Single-threaded driving (tests, batch tools; not together with Start): one step, false when
  // there was nothing to do; or steps until every request is done.
  bool Step();
  void RunUntilIdle();

  EngineMetrics Metrics() const;
  // Thread-safe: the pool and sequences as of the end of the last step.
  CacheSnapshot Snapshot() const;
  const EngineLimits& limits() const { return limits_; }

 private:
  Engine(const ModelFile& model, ThreadPool* pool, std::shared_ptr<PagedKVPool> kv_pool,
         const EngineOptions& options, const EngineLimits& limits);
  void Loop();
  void DrainInbox();
  void Finish(Sequence* seq, FinishReason reason, Status status = Status::Ok());
  void PublishMetrics(double step_seconds, int64_t computed, int64_t generated);
  void FillSnapshot(CacheSnapshot* out) const;  // engine thread

  Transformer transformer_;
  std::shared_ptr<PagedKVPool> kv_pool_;
  Scheduler scheduler_;
  EngineLimits limits_;
  std::vector<float> logits_;  // [chunks, vocab]

  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::vector<std::unique_ptr<Sequence>> inbox_;
  int64_t next_id_ = 1;
  bool stop_ = false;
  std::thread thread_;

  mutable std::mutex metrics_mu_;
  EngineMetrics metrics_;
  CacheSnapshot snapshot_;          // under metrics_mu_
  CacheSnapshot snapshot_scratch_;  // engine thread: filled, then swapped with snapshot_
  bool prefix_caching_ = false;
  std::atomic<int32_t> queued_{0};  // submitted, not yet seen by the engine thread
};

}  // namespace kvc
