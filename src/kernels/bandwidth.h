// Streaming-read memory bandwidth of this machine: the ceiling for decode, whose matrix-vector
// products read every weight byte once per token.
#pragma once

#include <cstddef>
#include <cstdint>

#include "threading/thread_pool.h"

namespace kvc {

// Reads a `bytes`-sized buffer (rounded to 4 KiB; allocated, first-touched by the threads that
// read it, and freed inside) with every thread of the pool, each a contiguous share, `repeats`
// times after one warm-up pass. Returns the median bytes per second.
double MeasureReadBandwidth(ThreadPool* pool, size_t bytes, int repeats);

// Sums `bytes` (a multiple of 64) at `p` (64-byte aligned) as 64-bit words with wide loads;
// the result only keeps the reads from being optimized away.
uint64_t StreamRead(const void* p, size_t bytes);

}  // namespace kvc
