// The streaming-read probe that MatVec throughput is compared against.
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "kernels/bandwidth.h"

namespace kvc {
namespace {

TEST(Bandwidth, StreamReadSumsEveryWord) {
  for (size_t bytes : {size_t{64}, size_t{128}, size_t{192}, size_t{4096}, size_t{1 << 20}}) {
    auto* p = static_cast<uint64_t*>(std::aligned_alloc(64, bytes));
    uint64_t expect = 0;
    for (size_t i = 0; i < bytes / 8; ++i) expect += p[i] = i * 2654435761u;
    EXPECT_EQ(StreamRead(p, bytes), expect) << bytes;
    std::free(p);
  }
}

TEST(Bandwidth, MeasureReadBandwidthIsPlausible) {
  ThreadPool pool(2);
  const double bps = MeasureReadBandwidth(&pool, size_t{32} << 20, 3);
  EXPECT_TRUE(std::isfinite(bps));
  EXPECT_GT(bps, 1e8);   // more than 100 MB/s
  EXPECT_LT(bps, 1e13);  // less than 10 TB/s
}

}  // namespace
}  // namespace kvc
