// The attention kernels against a naive reference: every slot is read back through the view with
// the scalar reference codecs (blocks, KIVI channel groups or the f32 ring) and attention is
// computed in double with an ordinary softmax. Covers both kernels (the tiled one for per-token
// rows with head_dim % 16 == 0, the general one for the rest), GQA, layouts, element types,
// residual windows, sliding windows and prefill chunks (several causal queries).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "core/fp16.h"
#include "kernels/attention.h"
#include "kernels/attention_internal.h"
#include "kvcache/kv_cache_factory.h"
#include "quant/kv_quant.h"
#include "quant/kv_tiles.h"

namespace kvc {
namespace {

struct Case {
  int32_t n_heads, n_kv_heads, head_dim;
  KVType type_k, type_v;
  KVGrouping grouping = KVGrouping::kPerToken;
  KVLayout layout = KVLayout::kPaged;
  int32_t block_size = 16;
  int32_t residual = 0;
  int32_t window = 0;
  int32_t group = 32;
  float value_offset = 0;  // added to the unit-normal values (shifted groups: q4 Z and S < 0)
};

std::string Name(const Case& c) {
  const char* types[] = {"f32", "f16", "bf16", "q8", "q4", "q2"};
  return std::to_string(c.n_heads) + "x" + std::to_string(c.n_kv_heads) + " hd" +
         std::to_string(c.head_dim) + " " + types[int(c.type_k)] + "/" + types[int(c.type_v)] +
         (c.grouping == KVGrouping::kKivi ? " kivi" : "") + " " + KVLayoutName(c.layout) + " b" +
         std::to_string(c.block_size) + " r" + std::to_string(c.residual) + " w" +
         std::to_string(c.window) + " g" + std::to_string(c.group);
}

// Slot t of head h, decoded by the reference codecs.
std::vector<float> ReadSlot(const KVView& kv, const KVSideView& s, int32_t h, int32_t t) {
  std::vector<float> row(kv.head_dim);
  if (t >= s.n_stored) {
    const float* r = kv.Residual(s, h, t);
    row.assign(r, r + kv.head_dim);
  } else if (s.kivi) {
    DequantizeKVChannelGroupRow(s.type, kv.Stored(s, h, t), kv.head_dim, s.group, t % s.group, row.data());
  } else {
    std::vector<uint8_t> buf(s.row_bytes);
    DequantizeKVRowRef(s.type, StoredRow(kv, s, h, t, buf.data()), kv.head_dim, s.group, row.data());
  }
  return row;
}

// Where the tiled kernel cuts [lo, hi) into steps for one query: a decode query (n_q == 1) has
// its stored slots split into ranges (DecodeSplitStart, 2 threads here), each going in steps of
// up to 64 slots starting at multiples of 16 (the range's first slot rounded down). Only stored
// steps round value weights (AttentionRoundsValueWeights); the ring's slots, however split, are
// weighed exactly.
std::vector<std::pair<int32_t, int32_t>> KernelTiles(int32_t lo, int32_t hi, int32_t n_q,
                                                     int32_t n_stored) {
  const int32_t splits = n_q == 1 ? DecodeSplitCount(lo, hi, 2) : 1;
  const int32_t stored = std::clamp(n_stored, lo, hi);
  std::vector<std::pair<int32_t, int32_t>> tiles;
  for (int32_t i = 0; i < splits; ++i) {
    const int32_t a = DecodeSplitStart(lo, stored, splits, i);
    const int32_t b = i + 1 == splits ? stored : DecodeSplitStart(lo, stored, splits, i + 1);
    for (int32_t c0 = a / 16 * 16; c0 < b; c0 += 64) {
      tiles.emplace_back(std::max(a, c0), std::min(b, c0 + 64));
    }
  }
  if (stored < hi) tiles.emplace_back(stored, hi);  // the ring: exact weights, however split
  return tiles;
}

// |S| of group g of stored value slot t (rows: per group the codes, then the f16 scale; q4: then
// the zero point).
double ValueScale(const KVView& kv, int32_t h, int32_t t, int32_t g) {
  const KVSideView& s = kv.v;
  const int32_t group = std::min(s.group, kv.head_dim);
  const int32_t codes = s.type == KVType::kQ8 ? group : group / 2, params = s.type == KVType::kQ8 ? 2 : 3;
  std::vector<uint8_t> buf(s.row_bytes);
  const uint8_t* row = StoredRow(kv, s, h, t, buf.data());
  uint16_t bits;
  std::memcpy(&bits, row + g * (codes + params) + codes, 2);
  return std::fabs(F16ToF32(bits));
}

struct Expected {
  std::vector<float> out;
  std::vector<double> tolerance;  // per output: 2e-5, plus what ambiguous weight roundings allow
};

// softmax(q k^T / sqrt(d)) v in double for query i at slot pos0 + i, with the kernel's documented
// roundings: the query (AttentionRoundsQuery) and the value weights (AttentionRoundsValueWeights).
// A weight whose rounding is within 1e-3 of a tie may round either way in the kernel's float
// arithmetic: that slot's share is added to the tolerance.
Expected Reference(const Case& c, const std::vector<float>& q, int32_t n_q, int32_t pos0,
                   const KVView& kv, bool round_query) {
  const int32_t hd = c.head_dim, group = c.n_heads / c.n_kv_heads;
  const bool round_weights = round_query && AttentionRoundsValueWeights(kv);
  const int32_t vg = std::min(kv.v.group, hd);
  Expected e{std::vector<float>(static_cast<size_t>(n_q) * c.n_heads * hd),
             std::vector<double>(static_cast<size_t>(n_q) * c.n_heads * hd, 2e-5)};
  for (int32_t i = 0; i < n_q; ++i) {
    const int32_t pos = pos0 + i;
    int32_t lo = c.window > 0 ? std::max(0, pos - c.window + 1) : 0;
    lo = std::max(lo, kv.first_token);
    for (int32_t h = 0; h < c.n_heads; ++h) {
      const int32_t kvh = h / group;
      const float* qh = q.data() + (static_cast<size_t>(i) * c.n_heads + h) * hd;
      // Stored q8/q4 keys may be scored with the query rounded to int8 per key group.
      std::vector<float> rounded(qh, qh + hd);
      if (round_query && AttentionRoundsQuery(kv)) {
        std::vector<int8_t> codes(hd);
        for (int32_t g0 = 0; g0 < hd; g0 += kv.k.group) {
          const float scale = RoundQueryGroup(qh + g0, kv.k.group, codes.data() + g0);
          for (int32_t d = g0; d < g0 + kv.k.group; ++d) rounded[d] = scale * codes[d];
        }
      }
      std::vector<double> score;
      double mx = -1e300;
      for (int32_t t = lo; t <= pos; ++t) {
        const std::vector<float> k = ReadSlot(kv, kv.k, kvh, t);
        const float* qt = t < kv.k.n_stored ? rounded.data() : qh;
        double s = 0;
        for (int32_t d = 0; d < hd; ++d) s += double(qt[d]) * k[d];
        score.push_back(s / std::sqrt(double(hd)));
        mx = std::max(mx, score.back());
      }
      double sum = 0;
      for (double x : score) sum += std::exp(x - mx);
      std::vector<double> o(hd, 0.0);
      std::vector<double> ambiguous(hd, 0.0);  // what near-tie roundings may move each output
      for (const auto& [t0, t1] : KernelTiles(lo, pos + 1, n_q, kv.v.n_stored)) {
        const bool rounds = round_weights && t1 <= kv.v.n_stored && t1 <= kv.k.n_stored;
        double tile_max = -1e300;
        for (int32_t t = t0; t < t1; ++t) tile_max = std::max(tile_max, score[t - lo]);
        std::vector<double> s_max(hd / vg, 0.0);
        if (rounds) {
          for (int32_t t = t0; t < t1; ++t) {
            for (int32_t g = 0; g < hd / vg; ++g) s_max[g] = std::max(s_max[g], ValueScale(kv, kvh, t, g));
          }
        }
        for (int32_t t = t0; t < t1; ++t) {
          const double p = std::exp(score[t - lo] - mx) / sum;
          const std::vector<float> v = ReadSlot(kv, kv.v, kvh, t);
          for (int32_t d = 0; d < hd; ++d) {
            const int32_t g = d / vg;
            if (!rounds) {
              o[d] += p * v[d];
              continue;
            }
            const double sv = ValueScale(kv, kvh, t, g);
            if (sv == 0 || s_max[g] == 0) continue;  // the group decodes to 0
            const double x = 255 * std::exp(score[t - lo] - tile_max) * sv / s_max[g];
            const double unit = std::exp(tile_max - mx) / sum * s_max[g] / 255;  // weight of u = 1
            o[d] += std::nearbyint(x) * unit * v[d] / sv;
            if (std::fabs(x - std::floor(x) - 0.5) < 1e-3) ambiguous[d] += unit * std::fabs(v[d] / sv);
          }
        }
      }
      const size_t at = (static_cast<size_t>(i) * c.n_heads + h) * hd;
      for (int32_t d = 0; d < hd; ++d) {
        e.out[at + d] = static_cast<float>(o[d]);
        e.tolerance[at + d] += ambiguous[d];
      }
    }
  }
  return e;
}

// Runs the kernel on a cache filled with random rows; returns the largest deviation from the
// reference beyond each output's tolerance (the reference with the kernel's roundings, or the
// exact one).
double MaxError(const Case& c, int32_t depth, int32_t n_q, bool round_query = true) {
  SCOPED_TRACE(Name(c) + " depth " + std::to_string(depth) + " n_q " + std::to_string(n_q));
  KVSpec shape;
  shape.n_layers = 1;
  shape.n_kv_heads = c.n_kv_heads;
  shape.head_dim = c.head_dim;
  shape.max_tokens = depth + n_q;
  auto cache = MakeKVCache(shape, {.layout = c.layout, .block_size = c.block_size, .type_k = c.type_k,
                                   .type_v = c.type_v, .group = c.group, .grouping = c.grouping,
                                   .residual = c.residual, .window = c.window});
  EXPECT_TRUE(cache.ok()) << cache.status().message();
  if (!cache.ok()) return 1e9;
  std::mt19937 rng(depth * 31 + n_q);
  std::normal_distribution<float> normal;
  const int32_t width = c.n_kv_heads * c.head_dim;
  // Appended in chunks as a model would (prefill, then the query chunk), so residual rings fill
  // and quantize as they do in use.
  for (int32_t pos = 0; pos < depth + n_q;) {
    const int32_t n = pos < depth ? std::min(depth - pos, 40) : n_q;
    std::vector<float> k(static_cast<size_t>(n) * width), v(k.size());
    for (float& x : k) x = normal(rng);
    for (float& x : v) x = normal(rng) + c.value_offset;
    EXPECT_TRUE(cache.value()->Reserve(n).ok());
    cache.value()->Write(0, pos, n, k.data(), v.data());
    cache.value()->Commit(pos + n);
    pos += n;
  }
  std::vector<float> q(static_cast<size_t>(n_q) * c.n_heads * c.head_dim);
  for (float& x : q) x = normal(rng);
  std::vector<float> out(q.size(), -1.0f);
  const KVView view = cache.value()->View(0, depth + n_q);
  ThreadPool pool(2);
  Attention({c.n_heads, c.n_kv_heads, c.head_dim, c.window}, q.data(), n_q, depth, view, out.data(), &pool);
  const Expected want = Reference(c, q, n_q, depth, view, round_query);
  double max_err = 0;  // beyond the tolerance of each output
  for (size_t i = 0; i < out.size(); ++i) {
    max_err = std::max(max_err, std::fabs(out[i] - want.out[i]) - (want.tolerance[i] - 2e-5));
  }
  return max_err;
}

void Check(const Case& c, int32_t depth, int32_t n_q) {
  SCOPED_TRACE(Name(c) + " depth " + std::to_string(depth) + " n_q " + std::to_string(n_q));
  EXPECT_LT(MaxError(c, depth, n_q), 2e-5);
}

TEST(AttentionKernel, PerTokenTypesAndLayouts) {
  const KVType all[] = {KVType::kF32, KVType::kF16, KVType::kBF16, KVType::kQ8, KVType::kQ4, KVType::kQ2};
  for (KVType t : all) {
    for (KVLayout layout : {KVLayout::kContiguous, KVLayout::kPaged}) {
      Case c{8, 2, 64, t, t};
      c.layout = layout;
      Check(c, 300, 1);
    }
  }
  // Mixed sides: keys and values of different types (and residual rings) end tiles separately.
  Check({4, 4, 32, KVType::kQ4, KVType::kF16, KVGrouping::kPerToken, KVLayout::kPaged, 16, 24}, 200, 1);
  Check({4, 1, 32, KVType::kF32, KVType::kQ8, KVGrouping::kPerToken, KVLayout::kPaged, 16, 0}, 200, 1);
}

TEST(AttentionKernel, HeadShapesAndGroups) {
  for (KVType t : {KVType::kQ8, KVType::kQ4}) {
    for (int32_t hd : {16, 32, 48, 80, 128, 256}) {
      Case c{4, 2, hd, t, t};
      c.group = 16;
      Check(c, 150, 1);
    }
    Case c{4, 1, 256, t, t};  // one group: segments of 64 within it
    c.group = 256;
    Check(c, 100, 1);
  }
  // Tiles of different types on each side.
  Check({8, 2, 64, KVType::kQ4, KVType::kQ8}, 200, 1);
  Check({8, 2, 128, KVType::kQ8, KVType::kQ4, KVGrouping::kPerToken, KVLayout::kPaged, 32, 0, 0, 64}, 200, 2);
  Check({32, 8, 64, KVType::kF16, KVType::kF16}, 130, 1);  // llama-3.2-1b: 4 query heads per KV head
  Check({7, 1, 64, KVType::kQ8, KVType::kF32}, 100, 1);    // multi-query, odd group
  Check({6, 3, 64, KVType::kQ8, KVType::kQ8, KVGrouping::kPerToken, KVLayout::kPaged, 16, 0, 0, 16}, 100, 1);
  Check({6, 3, 64, KVType::kQ4, KVType::kQ4, KVGrouping::kPerToken, KVLayout::kPaged, 16, 0, 0, 64}, 100, 1);
}

// Float rows scored in place (AVX-512 builds): query heads in blocks of 4, 2 and 1 per KV head,
// every head size the row kernel takes, keys and values of different float types, and tails of
// a tile shorter than one reduction.
TEST(AttentionKernel, FloatRowsGroupsAndTypes) {
  for (int32_t heads : {1, 2, 3, 5, 7, 8}) Check({heads, 1, 64, KVType::kF16, KVType::kF16}, 150, 1);
  for (int32_t hd : {32, 128, 256}) Check({8, 2, hd, KVType::kF16, KVType::kF16}, 99, 1);
  Check({8, 2, 64, KVType::kBF16, KVType::kF32}, 70, 1);
  Check({12, 4, 64, KVType::kF32, KVType::kBF16, KVGrouping::kPerToken, KVLayout::kPaged, 5}, 21, 1);
  Check({8, 2, 64, KVType::kF16, KVType::kF16}, 2, 1);
}

TEST(AttentionKernel, GeneralKernelShapes) {
  // Not tiled: head_dim 8 (stories260K), groups that are not a multiple of 16, KIVI keys.
  Check({8, 4, 8, KVType::kQ8, KVType::kQ8, KVGrouping::kPerToken, KVLayout::kPaged, 16, 0, 0, 8}, 120, 1);
  Check({4, 2, 24, KVType::kF16, KVType::kF16}, 120, 1);
  Check({4, 2, 64, KVType::kQ4, KVType::kQ4, KVGrouping::kPerToken, KVLayout::kPaged, 16, 0, 0, 8}, 120, 1);
  for (KVType t : {KVType::kQ4, KVType::kQ2}) {
    Check({4, 2, 64, t, t, KVGrouping::kKivi, KVLayout::kPaged, 32, 32}, 200, 1);
    Check({4, 2, 64, t, t, KVGrouping::kKivi, KVLayout::kContiguous, 16, 32}, 200, 3);
  }
}

TEST(AttentionKernel, ResidualWindowsAndOddBlocks) {
  for (KVType t : {KVType::kQ8, KVType::kQ4, KVType::kQ2}) {
    Check({4, 2, 64, t, t, KVGrouping::kPerToken, KVLayout::kPaged, 16, 128}, 300, 1);
    Check({4, 2, 64, t, t, KVGrouping::kPerToken, KVLayout::kPaged, 5, 7}, 97, 1);
  }
  Check({4, 2, 64, KVType::kF16, KVType::kF16, KVGrouping::kPerToken, KVLayout::kGrowable, 16}, 300, 1);
  Check({4, 2, 64, KVType::kF16, KVType::kF16, KVGrouping::kPerToken, KVLayout::kPaged, 3}, 100, 1);
}

TEST(AttentionKernel, SlidingWindow) {
  for (KVLayout layout : {KVLayout::kContiguous, KVLayout::kPaged}) {
    for (KVType t : {KVType::kF32, KVType::kQ8}) {
      Case c{4, 2, 64, t, t};
      c.layout = layout;
      c.window = 37;
      Check(c, 200, 1);
      Check(c, 200, 5);
    }
  }
}

TEST(AttentionKernel, DecodeSplitAcrossThreads) {
  // Long enough that one decode query is split into ranges (one per thread) whose softmax states
  // are merged; each range takes a share of the stored slots and of the residual ring, and
  // ranges start past a window's first slot.
  Check({8, 2, 64, KVType::kF16, KVType::kF16}, 1100, 1);
  Check({8, 2, 64, KVType::kQ4, KVType::kQ4, KVGrouping::kPerToken, KVLayout::kPaged, 16, 128}, 1100, 1);
  Check({8, 2, 64, KVType::kQ8, KVType::kQ8, KVGrouping::kPerToken, KVLayout::kContiguous, 16, 0, 700}, 1300, 1);
}

TEST(AttentionKernel, DecodeSplitsCoverTheSlotsInWholeSteps) {
  EXPECT_EQ(DecodeSplitCount(0, 200, 2), 1);    // under 256 slots: one range
  EXPECT_EQ(DecodeSplitCount(0, 16385, 2), 2);  // one per thread
  EXPECT_EQ(DecodeSplitCount(0, 700, 4), 2);    // of at least 256 slots
  EXPECT_EQ(DecodeSplitCount(100, 16385, 1), 1);
  for (const auto& [lo, hi, threads] : {std::tuple{0, 1100, 4}, {37, 16385, 2}, {700, 1301, 3}, {5, 9000, 8}}) {
    const int32_t splits = DecodeSplitCount(lo, hi, threads);
    int32_t prev = DecodeSplitStart(lo, hi, splits, 0);
    EXPECT_EQ(prev, lo);
    for (int32_t i = 1; i < splits; ++i) {
      const int32_t start = DecodeSplitStart(lo, hi, splits, i);
      EXPECT_EQ(start % 64, 0) << lo << " " << hi << " split " << i;
      EXPECT_GT(start, prev) << lo << " " << hi << " split " << i;
      EXPECT_LT(start, hi);
      prev = start;
    }
  }
}

TEST(AttentionKernel, RingSpansCoverTheRowsOfARangeAcrossTheWrap) {
  // The rows a decode range reads from the residual ring, prefetched while its stored slots are
  // attended: exactly those of slots [r0, r1) of one head, slot t at t % capacity.
  constexpr int32_t kHeads = 2, kCap = 8, kHd = 16;
  std::vector<float> k_ring(kHeads * kCap * kHd), v_ring(kHeads * kCap * kHd);
  KVView kv;
  kv.head_dim = kHd;
  kv.k.ring = k_ring.data();
  kv.v.ring = v_ring.data();
  kv.k.ring_capacity = kv.v.ring_capacity = kCap;
  const size_t row = kHd * sizeof(float);
  for (const auto& [h, r0, r1] : {std::tuple{1, 5, 11}, {0, 16, 24}, {1, 3, 6}, {0, 7, 7}}) {
    const attention_internal::PrefetchSpans spans = attention_internal::RingSpans(kv, h, r0, r1);
    size_t bytes = 0;
    for (int32_t i = 0; i < spans.n; ++i) bytes += spans.bytes[i];
    EXPECT_EQ(bytes, 2 * (r1 - r0) * row) << h << " " << r0 << " " << r1;
    for (const KVSideView* side : {&kv.k, &kv.v}) {
      for (int32_t t = r0; t < r1; ++t) {
        const auto* p = reinterpret_cast<const uint8_t*>(kv.Residual(*side, h, t));
        bool covered = false;
        for (int32_t i = 0; i < spans.n; ++i) {
          covered |= p >= spans.start[i] && p + row <= spans.start[i] + spans.bytes[i];
        }
        EXPECT_TRUE(covered) << "slot " << t << " of [" << r0 << ", " << r1 << ") head " << h;
      }
    }
  }
  kv.v.ring = nullptr;  // a side without a ring adds nothing
  EXPECT_EQ(attention_internal::RingSpans(kv, 0, 5, 11).n, 2);
}

TEST(AttentionKernel, RoundQueryGroup) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (int32_t g : {16, 32, 64}) {
    std::vector<float> q(g);
    for (float& x : q) x = std::clamp(3 * normal(rng), -8.0f, 8.0f);
    q[g / 3] = 0.5f;  // rounds to a tie-free code; the extreme below maps to exactly 127
    q[g / 2] = -9.0f;
    std::vector<int8_t> codes(g);
    const float scale = RoundQueryGroup(q.data(), g, codes.data());
    EXPECT_FLOAT_EQ(scale, 9.0f / 127);
    EXPECT_EQ(codes[g / 2], -127);
    for (int32_t i = 0; i < g; ++i) {
      EXPECT_LE(std::abs(int(codes[i])), 127);
      EXPECT_LE(std::fabs(codes[i] * scale - q[i]), scale * 0.5f * 1.0001f) << i;
    }
  }
  std::vector<float> zeros(32, 0.0f);
  std::vector<int8_t> codes(32, 1);
  EXPECT_EQ(RoundQueryGroup(zeros.data(), 32, codes.data()), 0.0f);
  for (int8_t c : codes) EXPECT_EQ(c, 0);
  zeros[3] = std::nanf("");  // a broken activation: code 0, the rest still rounds
  zeros[5] = -2.0f;
  EXPECT_FLOAT_EQ(RoundQueryGroup(zeros.data(), 32, codes.data()), 2.0f / 127);
  EXPECT_EQ(codes[3], 0);
  EXPECT_EQ(codes[5], -127);
}

TEST(AttentionKernel, Int8KeysEveryValueTypeAndShape) {
  // The int8 key path (q8/q4 keys): every value type, head dims 32-256, group sizes, GQA groups
  // that do and do not fill a register batch of heads (7 heads per KV head), partial tiles and
  // blocks that split tiles; decode split over threads and prefill chunks.
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  {  // this build has the path: the cases below exercise it, not the float fallback
    KVSpec shape{.n_layers = 1, .n_kv_heads = 1, .head_dim = 64, .max_tokens = 16};
    auto cache = MakeKVCache(shape, {.type_k = KVType::kQ8, .type_v = KVType::kQ8, .residual = 0});
    ASSERT_TRUE(cache.ok());
    EXPECT_TRUE(AttentionRoundsQuery(cache.value()->View(0, 0)));
  }
#endif
  const KVType values[] = {KVType::kF32, KVType::kF16, KVType::kBF16, KVType::kQ8, KVType::kQ4};
  for (KVType k : {KVType::kQ8, KVType::kQ4}) {
    for (KVType v : values) Check({8, 2, 64, k, v, KVGrouping::kPerToken, KVLayout::kPaged, 5}, 301, 1);
    for (int32_t hd : {32, 128, 256}) {
      for (int32_t g : {16, 32, 64, 128}) {
        if ((k == KVType::kQ4 && g == 16) || g > hd) continue;
        Check({7, 1, hd, k, k, KVGrouping::kPerToken, KVLayout::kPaged, 16, 0, 0, g}, 83, 1);
      }
    }
    Check({4, 4, 64, k, KVType::kQ8, KVGrouping::kPerToken, KVLayout::kContiguous, 16, 0, 0, 16}, 700, 1);
    Check({32, 8, 64, k, k}, 40, 20);
  }
}

TEST(AttentionKernel, ShiftedValueGroups) {
  // Values far from zero: q4 stores all-positive groups with a negative scale and all-negative
  // ones with a large zero point; both kernels' value paths must decode them as the codec does.
  for (float offset : {6.0f, -6.0f, 1.5f}) {
    for (KVType k : {KVType::kQ8, KVType::kQ4}) {
      Case c{8, 2, 64, k, KVType::kQ4};
      c.value_offset = offset;
      Check(c, 300, 1);
      c.head_dim = 32;
      Check(c, 130, 3);
    }
    Check({8, 2, 64, KVType::kF16, KVType::kQ4, KVGrouping::kPerToken, KVLayout::kPaged, 16, 0, 0, 32, offset}, 200, 1);
  }
}

TEST(AttentionKernel, QueryRoundingErrorIsSmall) {
  // Against the exact query (no rounding), outputs move by much less than the values' spread
  // (unit normal here); q8 and q4 keys quantize coarser than the query does.
  for (KVType k : {KVType::kQ8, KVType::kQ4}) {
    const Case c{8, 2, 64, k, KVType::kF32};
    EXPECT_LT(MaxError(c, 500, 1, /*round_query=*/false), 2e-2);
  }
}

TEST(AttentionKernel, PrefillChunkIsCausal) {
  Check({8, 2, 64, KVType::kF16, KVType::kF16}, 0, 70);
  Check({8, 2, 64, KVType::kQ8, KVType::kQ8}, 33, 40);
  Check({4, 2, 8, KVType::kF32, KVType::kF32}, 10, 20);
}

// Float sides run prefill chunks as blocks of queries (attention_prefill.cc): blocks of 32 / group
// queries, partial blocks, chunks after earlier slots, tiles cut at odd block sizes, windows that
// start mid-block, every float type and both GQA extremes (one query head per KV head: 32
// queries a block; 32 per KV head: one).
TEST(AttentionKernel, PrefillQueryBlocks) {
  for (KVType t : {KVType::kF32, KVType::kF16, KVType::kBF16}) {
    for (KVLayout layout : {KVLayout::kContiguous, KVLayout::kPaged}) {
      Case c{8, 2, 64, t, t};
      c.layout = layout;
      Check(c, 0, 37);
      Check(c, 90, 19);
    }
  }
  for (int32_t hd : {16, 48, 80, 128, 256}) Check({4, 2, hd, KVType::kF16, KVType::kF16}, 20, 45);
  Check({4, 4, 32, KVType::kF16, KVType::kF16}, 10, 70);     // group 1
  Check({32, 1, 32, KVType::kF32, KVType::kF16}, 5, 3);      // group 32, mixed sides
  Check({6, 2, 64, KVType::kBF16, KVType::kF32, KVGrouping::kPerToken, KVLayout::kPaged, 5}, 41, 23);
  Check({8, 2, 64, KVType::kF16, KVType::kF16, KVGrouping::kPerToken, KVLayout::kGrowable, 16}, 64, 64);
  Case w{8, 2, 64, KVType::kF16, KVType::kF16};
  w.window = 13;
  Check(w, 30, 40);
  w.window = 100;
  Check(w, 150, 33);
}

}  // namespace
}  // namespace kvc
