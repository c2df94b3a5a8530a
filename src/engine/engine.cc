#include "engine/engine.h"

#include <algorithm>

#include "kvcache/kv_format.h"

namespace kvc {

const char* BlockStateName(BlockState s) {
  switch (s) {
    case BlockState::kFree: return "free";
    case BlockState::kUsed: return "used";
    case BlockState::kShared: return "shared";
    case BlockState::kCached: return "cached";
  }
  return "?";
}

const char* SequencePhaseName(SequencePhase p) {
  switch (p) {
    case SequencePhase::kWaiting: return "waiting";
    case SequencePhase::kPrefill: return "prefill";
    case SequencePhase::kDecode: return "decode";
  }
  return "?";
}

int32_t CacheSnapshot::Count(BlockState s) const {
  return static_cast<int32_t>(std::count(blocks.begin(), blocks.end(), s));
}

Result<std::unique_ptr<Engine>> Engine::Create(const ModelFile& model, ThreadPool* pool,
                                               const EngineOptions& options) {
  const ModelConfig& c = model.config();
  EngineLimits limits;
  limits.context_length = options.context_length > 0 ? options.context_length : c.context_length;
  limits.block_size = options.kv.block_size;
  limits.vocab_size = c.vocab_size;
  if (limits.context_length <= 0) return InvalidArgument("the context length must be positive");
  if (options.kv.layout != KVLayout::kPaged) {
    return InvalidArgument("serving many sequences needs the paged KV layout (--kv-layout paged)");
  }
  if (limits.block_size <= 0) return InvalidArgument("the KV block size must be positive");
  const int32_t per_seq = (limits.context_length + limits.block_size - 1) / limits.block_size;
  limits.num_blocks = options.num_blocks > 0
                          ? options.num_blocks
                          : per_seq * std::max(1, options.scheduler.max_running);
  Transformer shape_probe(model, pool);
  KVC_ASSIGN_OR_RETURN(KVSpec spec,
                       MakeKVSpec(shape_probe.KVShape(limits.context_length), options.kv));
  KVC_ASSIGN_OR_RETURN(std::shared_ptr<PagedKVPool> kv_pool,
                       PagedKVPool::Create(spec, limits.block_size, limits.num_blocks));
  return std::unique_ptr<Engine>(new Engine(model, pool, std::move(kv_pool), options, limits));
}

Engine::Engine(const ModelFile& model, ThreadPool* pool, std::shared_ptr<PagedKVPool> kv_pool,
               const EngineOptions& options, const EngineLimits& limits)
    : transformer_(model, pool), kv_pool_(kv_pool), scheduler_(kv_pool, options.scheduler),
      limits_(limits) {
  metrics_.blocks_total = limits.num_blocks;
  metrics_.block_size = limits.block_size;
  prefix_caching_ = options.scheduler.prefix_caching && PagedKVCache::SupportsSharing(kv_pool_->spec());
  FillSnapshot(&snapshot_);
}

Engine::~Engine() {
  Stop();
  // Requests still queued or running end with an error rather than leaving clients waiting.
  DrainInbox();
  while (!scheduler_.idle()) {
    Sequence* seq = !scheduler_.running().empty() ? scheduler_.running().front().get()
                                                  : scheduler_.waiting().front().get();
    Finish(seq, FinishReason::kError, Unsupported("the engine is shutting down"));
  }
}

Result<std::shared_ptr<RequestStream>> Engine::Submit(std::vector<int32_t> prompt,
                                                      const RequestOptions& options) {
  const int64_t n = static_cast<int64_t>(prompt.size());
  if (n == 0) return InvalidArgument("the prompt is empty (no tokens)");
  for (int32_t t : prompt) {
    if (t < 0 || t >= limits_.vocab_size) {
      return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary of " +
                             std::to_string(limits_.vocab_size));
    }
  }
  if (options.max_tokens < 1) return InvalidArgument("max_tokens must be at least 1");
  if (n + options.max_tokens > limits_.context_length) {
    return OutOfRange("this request needs " + std::to_string(n + options.max_tokens) +
                      " tokens (prompt " + std::to_string(n) + " + max_tokens " +
                      std::to_string(options.max_tokens) + ") but the context holds " +
                      std::to_string(limits_.context_length));
  }
  // The last sampled token is never fed back, so the cache holds at most n + max_tokens - 1.
  const int64_t blocks = (n + options.max_tokens - 1 + limits_.block_size - 1) / limits_.block_size;
  if (blocks > limits_.num_blocks) {
    return OutOfMemory("this request needs " + std::to_string(blocks) + " KV blocks but the pool has " +
                       std::to_string(limits_.num_blocks) + " in all; it can never fit");
  }
  auto stream = std::make_shared<RequestStream>();
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    inbox_.push_back(std::make_unique<Sequence>(next_id_++, std::move(prompt), options, stream));
    ++queued_;
  }
  inbox_cv_.notify_one();
  return stream;
}

void Engine::DrainInbox() {
  std::vector<std::unique_ptr<Sequence>> fresh;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    fresh.swap(inbox_);
  }
  queued_ -= static_cast<int32_t>(fresh.size());
  for (auto& s : fresh) scheduler_.Add(std::move(s));
}

void Engine::Finish(Sequence* seq, FinishReason reason, Status status) {
  std::unique_ptr<Sequence> done = scheduler_.Remove(seq);
  if (!done) return;
  TokenEvent e;
  e.done = true;
  e.finish = reason;
  e.status = std::move(status);
  e.stats = done->stats;
  done->stream->Push(std::move(e));
  std::lock_guard<std::mutex> lock(metrics_mu_);
  ++metrics_.requests_finished;
}

bool Engine::Step() {
  DrainInbox();
  const auto t0 = Clock::now();
  // Clients that went away free their memory first.
  std::vector<Sequence*> gone;
  for (const auto* q : {&scheduler_.running(), &scheduler_.waiting()})
    for (const auto& s : *q)
      if (s->stream->cancelled()) gone.push_back(s.get());
  for (Sequence* s : gone) Finish(s, FinishReason::kCancelled);

  const std::vector<ScheduledChunk> plan = scheduler_.Schedule();
  if (plan.empty()) {
    PublishMetrics(0, 0, 0);
    return !gone.empty();
  }
  const int32_t vocab = limits_.vocab_size;
  logits_.resize(plan.size() * static_cast<size_t>(vocab));
  std::vector<SeqChunk> batch;
  int64_t computed = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    Sequence* s = plan[i].seq;
    SeqChunk c;
    c.tokens = std::span<const int32_t>(s->tokens).subspan(s->computed(), plan[i].n);
    c.pos0 = s->computed();
    c.kv = s->cache.get();
    // Logits only for a chunk that reaches the end of the known tokens.
    c.logits = plan[i].n == s->pending() ? logits_.data() + i * vocab : nullptr;
    batch.push_back(c);
    computed += plan[i].n;
  }
  if (Status st = transformer_.Forward(batch); !st.ok()) {
    for (const ScheduledChunk& c : plan) Finish(c.seq, FinishReason::kError, st);
    PublishMetrics(0, 0, 0);
    return true;
  }
  int64_t generated = 0;
  for (size_t i = 0; i < plan.size(); ++i) {
    Sequence* s = plan[i].seq;
    scheduler_.Committed(s);
    if (!batch[i].logits) continue;  // mid-prefill
    const int32_t next = s->sampler.Sample(batch[i].logits, vocab);
    if (s->stats.generated_tokens == 0) {
      s->stats.first_token_seconds = std::chrono::duration<double>(Clock::now() - s->arrival).count();
    }
    if (next == s->options.eos_token) {
      Finish(s, FinishReason::kStop);
      continue;
    }
    s->tokens.push_back(next);
    ++s->stats.generated_tokens;
    ++generated;
    TokenEvent e;
    e.token = next;
    s->stream->Push(e);
    if (s->stats.generated_tokens >= s->options.max_tokens) Finish(s, FinishReason::kLength);
  }
  PublishMetrics(std::chrono::duration<double>(Clock::now() - t0).count(), computed, generated);
  return true;
}

void Engine::FillSnapshot(CacheSnapshot* out) const {
  const BlockPool& bp = kv_pool_->blocks();
  const int32_t n = bp.num_blocks();
  out->blocks.resize(n);
  out->registered.resize(n);
  out->refs.resize(n);
  for (BlockId b = 0; b < n; ++b) {
    const int32_t refs = bp.ref_count(b);
    const bool registered = bp.is_cached(b);
    out->refs[b] = refs;
    out->registered[b] = registered ? 1 : 0;
    out->blocks[b] = refs > 1    ? BlockState::kShared
                     : refs == 1 ? BlockState::kUsed
                     : registered ? BlockState::kCached
                                  : BlockState::kFree;
  }
  // Reuses the previous snapshot's vectors: no allocation per step once they have grown.
  size_t i = 0;
  for (const auto* q : {&scheduler_.running(), &scheduler_.waiting()}) {
    for (const auto& seq : *q) {
      if (i == out->sequences.size()) out->sequences.emplace_back();
      SequenceSnapshot& v = out->sequences[i++];
      v.id = seq->id;
      v.prompt_tokens = seq->prompt_len;
      v.generated_tokens = seq->stats.generated_tokens;
      v.cached_tokens = seq->stats.cached_tokens;
      v.computed_tokens = seq->computed();
      v.max_tokens = seq->options.max_tokens;
      v.preemptions = seq->stats.preemptions;
      v.blocks.clear();
      v.bytes = 0;
      if (!seq->cache) {
        v.phase = SequencePhase::kWaiting;
        continue;
      }
      // Prefill until every known token but the last sampled one has been computed (a
      // preempted sequence recomputes its generated tokens too).
      v.phase = seq->pending() > 1 || seq->stats.generated_tokens == 0 ? SequencePhase::kPrefill
                                                                       : SequencePhase::kDecode;
      for (BlockId b : seq->cache->table())
        if (b != PagedKVCache::kReleased) v.blocks.push_back(b);
      v.bytes = seq->cache->BytesAllocated();
    }
  }
  out->sequences.resize(i);
}

CacheSnapshot Engine::Snapshot() const {
  CacheSnapshot s;
  {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    s = snapshot_;
    s.metrics = metrics_;
  }
  s.metrics.waiting += queued_.load();
  const KVSpec& spec = kv_pool_->spec();
  s.num_blocks = limits_.num_blocks;
  s.block_size = limits_.block_size;
  s.bytes_per_block = kv_pool_->BytesPerBlock();
  s.kv_type = KVTypeName(spec.type_k);
  if (spec.type_v != spec.type_k) s.kv_type += std::string("/") + KVTypeName(spec.type_v);
  s.prefix_caching = prefix_caching_;
  return s;
}

void Engine::PublishMetrics(double step_seconds, int64_t computed, int64_t generated) {
  const BlockPool& bp = kv_pool_->blocks();
  FillSnapshot(&snapshot_scratch_);
  std::lock_guard<std::mutex> lock(metrics_mu_);
  std::swap(snapshot_, snapshot_scratch_);
  EngineMetrics& m = metrics_;
  m.blocks_used = bp.num_used() - bp.num_evictable();
  m.blocks_cached = bp.num_cached();
  m.running = static_cast<int32_t>(scheduler_.running().size());
  m.waiting = static_cast<int32_t>(scheduler_.waiting().size());
  m.prompt_tokens = scheduler_.counters().admitted_prompt_tokens;
  m.prefix_hit_tokens = scheduler_.counters().prefix_hit_tokens;
  m.preemptions = scheduler_.counters().preemptions;
  m.evictions = bp.num_evictions();
  m.computed_tokens += computed;
  m.generated_tokens += generated;
  if (computed > 0) ++m.steps;
  m.busy_seconds += step_seconds;
}

void Engine::RunUntilIdle() {
  while (Step()) {
  }
}

void Engine::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(inbox_mu_);
      inbox_cv_.wait(lock, [&] { return stop_ || !inbox_.empty() || !scheduler_.idle(); });
      if (stop_) return;
    }
    Step();
  }
}

void Engine::Start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] { Loop(); });
}

void Engine::Stop() {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    stop_ = true;
  }
  inbox_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

EngineMetrics Engine::Metrics() const {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  EngineMetrics m = metrics_;
  m.waiting += queued_.load();
  return m;
}

}  // namespace kvc
