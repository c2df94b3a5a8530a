// Continuous batching over one paged pool: every step, running sequences (oldest first) get
// their next chunk (one token when decoding, up to the token budget when prefilling), then
// waiting requests are admitted while the budget, the parallel limit and the memory plan allow.
// Cache room for each planned chunk is reserved here (prepare); the engine then runs one Forward
// (apply). When the pool runs out, the newest running sequence is preempted: its blocks are
// released and it is recomputed later (its full blocks usually come back from the prefix cache).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "engine/sequence.h"
#include "kvcache/paged_kv_cache.h"

namespace kvc {

struct SchedulerOptions {
  int32_t max_running = 8;     // sequences decoding together (--parallel)
  int32_t step_tokens = 256;   // tokens per step (chunked prefill budget), >= max_running
  bool prefix_caching = true;  // reuse cached full blocks of matching prefixes
};

struct ScheduledChunk {
  Sequence* seq;
  int32_t n;  // tokens of seq->tokens from seq->computed()
};

struct SchedulerCounters {
  int64_t preemptions = 0;
  int64_t admitted_prompt_tokens = 0;  // over first admissions
  int64_t prefix_hit_tokens = 0;       // of those, served from the cache
};

class Scheduler {
 public:
  // `pool` must outlive the scheduler.
  Scheduler(std::shared_ptr<PagedKVPool> pool, const SchedulerOptions& options);

  // Queues a request (at the back).
  void Add(std::unique_ptr<Sequence> seq);

  // Plans one step and reserves cache room for every chunk (each Reserve succeeded, so the
  // Forward over them cannot run out of blocks). Empty when there is nothing to run.
  std::vector<ScheduledChunk> Schedule();

  // After a step: registers the sequence's newly filled full blocks in the prefix cache.
  void Committed(Sequence* seq);

  // Removes a running or waiting sequence (finished, cancelled, failed); its blocks go back.
  std::unique_ptr<Sequence> Remove(Sequence* seq);

  const std::deque<std::unique_ptr<Sequence>>& running() const { return running_; }
  const std::deque<std::unique_ptr<Sequence>>& waiting() const { return waiting_; }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  const SchedulerCounters& counters() const { return counters_; }
  uint64_t hash_seed() const { return seed_; }

 private:
  // Releases the newest running sequence's cache and puts it first in line.
  void PreemptNewest();
  // Tries to start the first waiting sequence with a chunk of at most `budget` tokens.
  bool Admit(int32_t budget, std::vector<ScheduledChunk>* plan);

  std::shared_ptr<PagedKVPool> pool_;
  SchedulerOptions options_;
  bool sharing_;
  uint64_t seed_;
  std::deque<std::unique_ptr<Sequence>> running_;  // admission order: front = oldest
  std::deque<std::unique_ptr<Sequence>> waiting_;
  SchedulerCounters counters_;
};

}  // namespace kvc
