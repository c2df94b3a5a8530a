#include "threading/thread_pool.h"

#include <immintrin.h>

#include <algorithm>

#include "core/status.h"

namespace kvc {
namespace {
inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}
// Spinning keeps dispatch latency in microseconds when cores are free; bounded so that on an
// oversubscribed machine (shared CI, parallel tests) waiting threads yield their core instead.
constexpr int kSpinIterations = 1 << 12;

// An owner claims half of what is left of its share, down to 1/kMinChunksPerShare of it (and at
// least the grain): a handful of claims, the last ones short, so a thread slowed by its core
// leaves the other little to finish alone. Per decode token (Q8_0 llama-3.2-1b, 2 threads) this
// measured 3-4% faster than 8 equal chunks (docs/BENCHMARKS.md).
constexpr int64_t kMinChunksPerShare = 64;

inline uint64_t Pack(int64_t begin, int64_t end) {
  return static_cast<uint64_t>(begin) << 32 | static_cast<uint32_t>(end);
}
inline int64_t BeginOf(uint64_t r) { return static_cast<int64_t>(r >> 32); }
inline int64_t EndOf(uint64_t r) { return static_cast<int64_t>(r & 0xffffffffu); }

// Claims items of `share`: from its front (the owner) half of the rest, at least `chunk`, or from
// its back (a thief) half of the rest, at least `grain`.
// Returns false once the share is empty.
inline bool Claim(std::atomic<uint64_t>& share, int64_t chunk, int64_t grain, bool front, int64_t* b,
                  int64_t* e) {
  uint64_t r = share.load(std::memory_order_acquire);
  for (;;) {
    const int64_t begin = BeginOf(r), end = EndOf(r);
    if (begin >= end) return false;
    const int64_t take = std::min(end - begin, std::max(front ? chunk : grain, (end - begin + 1) / 2));
    const uint64_t next = front ? Pack(begin + take, end) : Pack(begin, end - take);
    if (share.compare_exchange_weak(r, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
      *b = front ? begin : end - take;
      *e = front ? begin + take : end;
      return true;
    }
  }
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (n_threads <= 0) n_threads = 1;
  n_threads_ = n_threads;
  shares_ = std::make_unique<Share[]>(n_threads_);
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    // Spin briefly (the next parallel loop usually comes within microseconds), then sleep.
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen && spins < kSpinIterations) {
      CpuRelax();
      ++spins;
    }
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    (*job_)(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::RunOnAll(FunctionRef<void(int)> fn) {
  if (n_threads_ == 1) {
    fn(0);
    return;
  }
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  fn(0);
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < kSpinIterations) CpuRelax();
    else std::this_thread::yield();
  }
  job_ = nullptr;
}

void ThreadPool::ParallelFor(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn,
                             int64_t grain) {
  if (n <= 0) return;
  const int parts = Parts(n, grain);
  if (parts == 1) {
    fn(0, n, 0);
    return;
  }
  KVC_CHECK(n < (int64_t{1} << 31));  // a share packs its bounds into 32 bits each
  int64_t chunk = grain;
  for (int t = 0; t < parts; ++t) {
    int64_t b, e;
    SplitRange(n, parts, t, &b, &e);
    shares_[t].range.store(Pack(b, e), std::memory_order_relaxed);
    chunk = std::max(chunk, (e - b + kMinChunksPerShare - 1) / kMinChunksPerShare);
  }
  RunOnAll([&](int t) {  // RunOnAll publishes the shares to the workers
    if (t >= parts) return;
    int64_t b, e;
    while (Claim(shares_[t].range, chunk, grain, true, &b, &e)) fn(b, e, t);
    for (int i = 1; i < parts; ++i) {
      std::atomic<uint64_t>& other = shares_[(t + i) % parts].range;
      while (Claim(other, chunk, grain, false, &b, &e)) fn(b, e, t);
    }
  });
}

}  // namespace kvc
