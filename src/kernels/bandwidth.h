// Streaming-read memory bandwidth of this machine: the ceiling for decode, whose matrix-vector
// products read every weight byte once per token.
#pragma once

#include <cstddef>
#include <cstdint>

#include "threading/thread_pool.h"

namespace kvc {

// A buffer of `bytes` (rounded to 4 KiB per thread; first-touched by the threads that read it)
// kept for repeated probes, so that a probe between two measurements costs only its reads.
class ReadBandwidthProbe {
 public:
  ReadBandwidthProbe(ThreadPool* pool, size_t bytes);
  ~ReadBandwidthProbe();
  ReadBandwidthProbe(const ReadBandwidthProbe&) = delete;
  ReadBandwidthProbe& operator=(const ReadBandwidthProbe&) = delete;

  // Reads the buffer with every thread of the pool, each a contiguous share, `repeats` times
  // after one warm-up pass. Returns the median bytes per second (0 without memory).
  double Measure(int repeats);

 private:
  ThreadPool* pool_;
  size_t share_ = 0;
  uint8_t* buf_ = nullptr;
};

// One probe of a buffer allocated and freed inside.
double MeasureReadBandwidth(ThreadPool* pool, size_t bytes, int repeats);

// Sums `bytes` (a multiple of 64) at `p` (64-byte aligned) as 64-bit words with wide loads;
// the result only keeps the reads from being optimized away.
uint64_t StreamRead(const void* p, size_t bytes);

}  // namespace kvc
