#include "threading/thread_pool.h"

#include <immintrin.h>

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
}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::thread::hardware_concurrency());
  if (n_threads <= 0) n_threads = 1;
  n_threads_ = n_threads;
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

void ThreadPool::RunOnAll(const std::function<void(int)>& fn) {
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

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                             int64_t grain) {
  if (n <= 0) return;
  const int64_t by_grain = grain > 1 ? (n + grain - 1) / grain : n;
  const int parts = static_cast<int>(by_grain < n_threads_ ? by_grain : n_threads_);
  if (parts == 1) {
    fn(0, n, 0);
    return;
  }
  // One pointer of capture keeps the std::function inline (no heap allocation per loop).
  struct Loop {
    int64_t n;
    int parts;
    const std::function<void(int64_t, int64_t, int)>* fn;
  } loop{n, parts, &fn};
  const Loop* lp = &loop;
  RunOnAll([lp](int t) {
    if (t >= lp->parts) return;
    int64_t b, e;
    SplitRange(lp->n, lp->parts, t, &b, &e);
    (*lp->fn)(b, e, t);
  });
}

}  // namespace kvc
