// A fixed pool of worker threads for data-parallel loops. The calling thread takes part, so a
// pool of N threads has N-1 workers. Dispatch is a spin-then-sleep barrier: decode issues
// hundreds of small parallel loops per token, so waking threads must be cheap.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/function_ref.h"

namespace kvc {

class ThreadPool {
 public:
  // `n_threads` <= 0 means all hardware threads.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(begin, end, thread_index) over [0, n), every index exactly once, and returns when
  // all are done. Each participating thread owns a contiguous share and runs it front to back in
  // chunks that halve (long first ones, short last ones); a thread that finishes early takes
  // chunks from the back of a share still in work, so a thread slowed by its core (a noisy
  // neighbour, a smaller core) does not hold up the loop.
  // fn may thus run several times per thread, always on contiguous ranges. Each thread's share
  // is at least `grain` items, so small loops run on fewer threads (or inline) instead of paying
  // for a dispatch that costs more than the work. Not reentrant: do not call from inside fn.
  // fn is referenced, not copied: no heap allocation, whatever the lambda captures.
  void ParallelFor(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn, int64_t grain = 1);

  // How many shares ParallelFor(n, fn, grain) cuts [0, n) into; share i is SplitRange(n, parts,
  // i). Fewer than size() when the grain allows fewer.
  int Parts(int64_t n, int64_t grain = 1) const {
    const int64_t by_grain = grain > 1 ? (n + grain - 1) / grain : n;
    return static_cast<int>(by_grain < n_threads_ ? by_grain : n_threads_);
  }

  // Items per thread so that each gets at least `min_work` units when one item costs
  // `work_per_item` (for ParallelFor's grain).
  static int64_t GrainFor(double work_per_item, double min_work = kMinWorkPerThread) {
    return work_per_item >= min_work ? 1 : static_cast<int64_t>(min_work / work_per_item) + 1;
  }
  // About 10 us of vector work: below this a cross-thread dispatch does not pay.
  static constexpr double kMinWorkPerThread = 1 << 18;

  // Runs fn(thread_index) once on every thread.
  void RunOnAll(FunctionRef<void(int)> fn);

 private:
  void WorkerLoop(int index);

  // A thread's share of a ParallelFor, [begin, end) packed into one word so that the owner
  // (taking from the front) and a thief (taking from the back) claim items with one CAS.
  struct alignas(64) Share {
    std::atomic<uint64_t> range{0};
  };
  std::unique_ptr<Share[]> shares_;

  int n_threads_;
  std::vector<std::thread> workers_;
  const FunctionRef<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

// Splits [0, n) into `parts` near-equal ranges; returns range `i`.
inline void SplitRange(int64_t n, int parts, int i, int64_t* begin, int64_t* end) {
  const int64_t base = n / parts, rem = n % parts;
  *begin = i * base + (i < rem ? i : rem);
  *end = *begin + base + (i < rem ? 1 : 0);
}

}  // namespace kvc
