#include "engine/scheduler.h"

#include <algorithm>

#include "kvcache/block_hash.h"
#include "kvcache/prefix_index.h"

namespace kvc {

Scheduler::Scheduler(std::shared_ptr<PagedKVPool> pool, const SchedulerOptions& options)
    : pool_(std::move(pool)), options_(options),
      sharing_(options.prefix_caching && PagedKVCache::SupportsSharing(pool_->spec())),
      seed_(BlockHashSeed(pool_->spec(), pool_->block_size())) {
  options_.max_running = std::max(1, options_.max_running);
  options_.step_tokens = std::max(options_.step_tokens, options_.max_running);
}

void Scheduler::Add(std::unique_ptr<Sequence> seq) { waiting_.push_back(std::move(seq)); }

void Scheduler::PreemptNewest() {
  std::unique_ptr<Sequence> victim = std::move(running_.back());
  running_.pop_back();
  victim->cache.reset();  // registered blocks stay cached (LRU) for the recompute
  victim->hashes.clear();
  ++victim->stats.preemptions;
  ++counters_.preemptions;
  waiting_.push_front(std::move(victim));
}

std::vector<ScheduledChunk> Scheduler::Schedule() {
  std::vector<ScheduledChunk> plan;
  int32_t budget = options_.step_tokens;
  bool preempted = false;
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i].get();
    const int32_t n = std::min(seq->pending(), budget);
    if (n <= 0) {
      ++i;
      continue;
    }
    bool placed = true;
    while (!seq->cache->Reserve(n).ok()) {
      preempted = true;
      const bool self = running_.back().get() == seq;
      PreemptNewest();
      if (self) {
        placed = false;
        break;
      }
    }
    if (!placed) break;  // seq was the newest: nothing after it remains
    plan.push_back({seq, n});
    budget -= n;
    ++i;
  }
  // No admissions in a step that had to preempt: memory is short already.
  while (!preempted && budget > 0 && !waiting_.empty() &&
         static_cast<int32_t>(running_.size()) < options_.max_running) {
    const int32_t before = budget;
    if (!Admit(budget, &plan)) break;
    budget -= plan.back().n;
    if (budget == before) break;
  }
  return plan;
}

bool Scheduler::Admit(int32_t budget, std::vector<ScheduledChunk>* plan) {
  Sequence* seq = waiting_.front().get();
  const int32_t bs = pool_->block_size();
  BlockPool& blocks = pool_->blocks();
  auto cache = std::make_unique<PagedKVCache>(pool_);
  PrefixMatch match;
  if (sharing_) {
    match = MatchPrefix(blocks, seed_, bs, seq->tokens);
    if (!match.blocks.empty() && !cache->AdoptPrefix(match.blocks).ok()) match = {};
  }
  // The exact memory plan: every block the rest of the known tokens needs must be available now
  // (hit blocks taken off the LRU by AdoptPrefix are no longer counted as available).
  const int32_t total_blocks = (static_cast<int32_t>(seq->tokens.size()) + bs - 1) / bs;
  const int32_t need = total_blocks - static_cast<int32_t>(match.blocks.size());
  const int32_t n = std::min(static_cast<int32_t>(seq->tokens.size()) - match.tokens, budget);
  if (need > blocks.num_available() || !cache->Reserve(n).ok()) return false;  // cache released
  seq->cache = std::move(cache);
  seq->hashes = std::move(match.hashes);
  if (!seq->admitted_once) {
    seq->admitted_once = true;
    seq->stats.cached_tokens = match.tokens;
    seq->stats.queue_seconds = std::chrono::duration<double>(Clock::now() - seq->arrival).count();
    counters_.admitted_prompt_tokens += seq->prompt_len;
    counters_.prefix_hit_tokens += match.tokens;
  }
  running_.push_back(std::move(waiting_.front()));
  waiting_.pop_front();
  plan->push_back({seq, n});
  return true;
}

void Scheduler::Committed(Sequence* seq) {
  if (!sharing_ || !seq->cache) return;
  RegisterFullBlocks(pool_->blocks(), seed_, pool_->block_size(),
                     std::span<const int32_t>(seq->tokens).first(seq->computed()),
                     seq->cache->table(), &seq->hashes);
}

std::unique_ptr<Sequence> Scheduler::Remove(Sequence* seq) {
  for (auto* q : {&running_, &waiting_}) {
    auto it = std::find_if(q->begin(), q->end(), [&](const auto& p) { return p.get() == seq; });
    if (it == q->end()) continue;
    std::unique_ptr<Sequence> out = std::move(*it);
    q->erase(it);
    out->cache.reset();
    return out;
  }
  return nullptr;
}

}  // namespace kvc
