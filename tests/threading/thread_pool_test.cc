// ThreadPool: ParallelFor covers every index exactly once in contiguous chunks (with 1, 2, 3
// threads, n below the thread count, grains), a thread that finishes early takes over the rest
// of a slow thread's share, RunOnAll visits each thread once, repeated dispatch is race-free,
// and dispatch does not allocate.
#include "threading/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <new>
#include <thread>
#include <utility>
#include <vector>

#include "core/heap_counter.h"

namespace kvc {
namespace {

struct Chunk {
  int64_t begin, end;
  int thread;
};

std::vector<Chunk> RunLoop(ThreadPool* pool, int64_t n, int64_t grain, std::vector<int>* hits) {
  hits->assign(n, 0);
  std::mutex mu;
  std::vector<Chunk> chunks;
  std::vector<std::atomic<int>> counts(n);
  pool->ParallelFor(
      n,
      [&](int64_t b, int64_t e, int t) {
        for (int64_t i = b; i < e; ++i) counts[i].fetch_add(1);
        std::lock_guard<std::mutex> lock(mu);
        chunks.push_back({b, e, t});
      },
      grain);
  for (int64_t i = 0; i < n; ++i) (*hits)[i] = counts[i].load();
  return chunks;
}

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 5, 64, 1001}) {
      std::vector<int> hits;
      const std::vector<Chunk> chunks = RunLoop(&pool, n, 1, &hits);
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << threads << " threads, n " << n;
      // Contiguous, non-empty chunks on valid threads. Per share: its owner takes half of what is
      // left, down to 1/64 of the share, so at most log2(64) + 2 = 8 claims, and the others at
      // most floor(log2(share)) + 1, since each of those takes at least half of what is left.
      for (const Chunk& c : chunks) {
        EXPECT_LT(c.begin, c.end);
        EXPECT_GE(c.thread, 0);
        EXPECT_LT(c.thread, threads);
      }
      const int64_t share = (n + threads - 1) / threads;
      int64_t log2 = 0;
      while ((int64_t{2} << log2) <= share) ++log2;
      EXPECT_LE(static_cast<int64_t>(chunks.size()), std::min<int64_t>(n, threads) * (8 + log2 + 1));
      // Whoever claims from a share first, its owner or a thief, takes at least half of it: the
      // long first chunks that keep the matvec kernels' streams long.
      if (n == 0) continue;
      int64_t b0, e0, longest = 0;
      SplitRange(n, static_cast<int>(std::min<int64_t>(n, threads)), 0, &b0, &e0);
      for (const Chunk& c : chunks) {
        if (c.end <= e0) longest = std::max(longest, c.end - c.begin);
      }
      EXPECT_GE(longest, (e0 + 1) / 2) << threads << " threads, n " << n;
    }
  }
}

TEST(ThreadPool, GrainLimitsTheNumberOfChunks) {
  ThreadPool pool(3);
  for (const auto& [n, grain] : {std::pair<int64_t, int64_t>{10, 4}, {10, 100}, {7, 3}, {9, 3}}) {
    std::vector<int> hits;
    const std::vector<Chunk> chunks = RunLoop(&pool, n, grain, &hits);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1);
    EXPECT_LE(static_cast<int64_t>(chunks.size()), (n + grain - 1) / grain);
  }
}

// The calling thread (index 0) owns the first half and blocks in its first chunk until some index
// of that half has run on the worker: the worker must take over the rest of the caller's share
// from its back. The wait is bounded so that a broken pool fails instead of hanging.
TEST(ThreadPool, AnIdleThreadTakesOverASlowShare) {
  ThreadPool pool(2);
  constexpr int64_t n = 64;
  std::vector<std::atomic<int>> ran_on(n), runs(n);
  std::atomic<bool> taken{false};
  pool.ParallelFor(n, [&](int64_t b, int64_t e, int t) {
    for (int64_t i = b; i < e; ++i) {
      ran_on[i].store(t);
      runs[i].fetch_add(1);
      if (t == 1 && i < n / 2) taken.store(true);
    }
    if (t == 0 && b == 0) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!taken.load() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    }
  });
  ASSERT_TRUE(taken.load()) << "the worker never took over part of the caller's share";
  // The worker ran its own half and took the caller's from the back. (When the caller is
  // descheduled before its first chunk, the worker may take all of it, index 0 included.)
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(runs[i].load(), 1) << i;
  EXPECT_EQ(ran_on[n / 2 - 1].load(), 1);
  for (int64_t i = n / 2; i < n; ++i) EXPECT_EQ(ran_on[i].load(), 1) << i;
}

TEST(ThreadPool, SplitRangeIsBalanced) {
  for (int64_t n : {0, 1, 7, 100}) {
    for (int parts : {1, 2, 3, 8}) {
      int64_t expect_begin = 0;
      for (int i = 0; i < parts; ++i) {
        int64_t b, e;
        SplitRange(n, parts, i, &b, &e);
        EXPECT_EQ(b, expect_begin);
        EXPECT_LE(e - b, n / parts + 1);
        EXPECT_GE(e - b, n / parts);
        expect_begin = e;
      }
      EXPECT_EQ(expect_begin, n);
    }
  }
}

TEST(ThreadPool, RunOnAllVisitsEachThreadOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    std::vector<std::atomic<int>> seen(threads);
    pool.RunOnAll([&](int t) { seen[t].fetch_add(1); });
    for (int t = 0; t < threads; ++t) EXPECT_EQ(seen[t].load(), 1);
  }
}

TEST(ThreadPool, ManyDispatchesStayConsistent) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  for (int rep = 0; rep < 20000; ++rep) {
    pool.ParallelFor(rep % 7 + 1, [&](int64_t b, int64_t e, int) { total.fetch_add(e - b); });
  }
  int64_t expect = 0;
  for (int rep = 0; rep < 20000; ++rep) expect += rep % 7 + 1;
  EXPECT_EQ(total.load(), expect);
}

TEST(ThreadPool, DispatchDoesNotAllocate) {
  ThreadPool pool(2);
  std::atomic<int64_t> sink{0};
  const int64_t a = 1, b = 1, c = 1;  // more captures than std::function keeps inline
  auto body = [&sink, &a, &b, &c](int64_t lo, int64_t hi, int) {
    sink.fetch_add((hi - lo) * a * b * c);
  };
  pool.ParallelFor(100, body);
  const long before = testing::HeapAllocations();
  for (int i = 0; i < 1000; ++i) pool.ParallelFor(100, body);
  EXPECT_EQ(testing::HeapAllocations() - before, 0);
  EXPECT_EQ(sink.load(), 1001 * 100);
}

}  // namespace
}  // namespace kvc
