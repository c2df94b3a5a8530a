// The sampler against a naive reference of its definition (sampling/sampler.h): survivors by
// sorting the whole vocabulary, the draw by a plain walk, and the drawn frequencies against
// probabilities computed in double.
#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

namespace kvc {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

int32_t RefArgmax(const std::vector<float>& x) {
  int32_t best = -1;
  for (int32_t i = 0; i < static_cast<int32_t>(x.size()); ++i) {
    if (!std::isnan(x[i]) && (best < 0 || x[i] > x[best])) best = i;
  }
  return best < 0 ? 0 : best;
}

// One draw as sampler.h defines it, written the obvious way.
int32_t RefSample(const std::vector<float>& x, const SamplingParams& p, std::mt19937_64& rng) {
  const int32_t n = static_cast<int32_t>(x.size());
  const int32_t top = RefArgmax(x);
  if (!(p.temperature > 0) || n <= 1) return top;
  const float inv_t = 1.0f / p.temperature;
  if (!std::isfinite(x[top]) || !(inv_t < kInf)) return top;
  std::vector<float> w(n);
  SamplingWeights(x.data(), n, x[top], inv_t, w.data());
  auto walk = [&](const std::vector<int32_t>& order) {
    double total = 0;
    for (int32_t i : order) total += w[i];
    const double r = std::uniform_real_distribution<double>(0.0, total)(rng);
    double acc = 0;
    int32_t last = -1;
    for (int32_t i : order) {
      if (!(w[i] > 0)) continue;
      acc += w[i];
      last = i;
      if (r < acc) return i;
    }
    return last;
  };
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  const bool cut_k = p.top_k > 0 && p.top_k < n;
  if (!cut_k && p.top_p >= 1) return walk(order);  // no cut: index order
  auto key = [&](int32_t i) { return std::isnan(x[i]) ? -kInf : x[i]; };
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return key(a) > key(b); });
  if (cut_k) order.resize(p.top_k);
  if (p.top_p < 1) {
    double total = 0;
    for (int32_t i : order) total += w[i];
    double mass = 0;
    for (size_t j = 0; j < order.size(); ++j) {
      mass += w[order[j]];
      if (mass >= p.top_p * total) {
        order.resize(j + 1);
        break;
      }
    }
  }
  return walk(order);
}

std::vector<float> RandomLogits(int32_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> x(n);
  for (float& v : x) v = g(rng);
  return x;
}

// Draws `draws` tokens with the sampler and with the reference from the same seed.
void ExpectSameDraws(const std::vector<float>& x, const SamplingParams& p, int draws) {
  Sampler s(p);
  std::mt19937_64 rng(p.seed);
  for (int d = 0; d < draws; ++d) {
    const int32_t got = s.Sample(x.data(), static_cast<int32_t>(x.size()));
    ASSERT_EQ(got, RefSample(x, p, rng)) << "n " << x.size() << " T " << p.temperature << " top_k "
                                         << p.top_k << " top_p " << p.top_p << " draw " << d;
  }
}

// The totals of the no-cut and top-p-alone paths are summed in another order than the
// reference's (lanes, blocks), so a draw within ~1e-16 of a boundary could differ; these fixed
// seeds do not meet one, and every other path is exact.
TEST(Sampler, MatchesTheReference) {
  for (int32_t n : {1, 2, 5, 17, 100, 1000, 32000}) {
    for (float sigma : {1.0f, 4.0f}) {
      const std::vector<float> x = RandomLogits(n, sigma, static_cast<uint32_t>(n * 7 + sigma));
      const int draws = n >= 10000 ? 3 : 12;
      for (float t : {0.0f, 0.3f, 1.0f, 2.5f}) {
        for (int32_t k : {0, 1, 5, 40, n, n + 3}) {
          for (float p : {0.0f, 0.5f, 0.95f, 1.0f}) {
            ExpectSameDraws(x, {t, k, p, static_cast<uint64_t>(n + k)}, draws);
          }
        }
      }
    }
  }
}

TEST(Sampler, TiesGoToTheLowerIndex) {
  const std::vector<float> x(100, 0.5f);
  Sampler s({1.0f, 3, 1.0f, 7});
  std::vector<int> seen(100, 0);
  for (int d = 0; d < 300; ++d) ++seen[s.Sample(x.data(), 100)];
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i] > 0, i < 3) << i;
  // A nucleus of one: the first of the tied best.
  Sampler one({1.0f, 0, 0.0f, 7});
  EXPECT_EQ(one.Sample(x.data(), 100), 0);
  ExpectSameDraws(x, {1.0f, 3, 0.5f, 9}, 50);
  ExpectSameDraws(x, {1.0f, 0, 0.5f, 9}, 50);
}

TEST(Sampler, NeverDrawsNaNOrMinusInfinity) {
  std::vector<float> x = RandomLogits(300, 0.5f, 3);
  for (int i = 0; i < 300; i += 3) x[i] = i % 2 ? kNaN : -kInf;
  for (const SamplingParams& p :
       {SamplingParams{1.0f, 0, 1.0f, 1}, SamplingParams{1.0f, 150, 1.0f, 1},
        SamplingParams{1.0f, 0, 0.999f, 1}, SamplingParams{2.0f, 250, 0.99f, 1}}) {
    Sampler s(p);
    for (int d = 0; d < 400; ++d) EXPECT_NE(s.Sample(x.data(), 300) % 3, 0);
    ExpectSameDraws(x, p, 50);
  }
  // NaNs first, before the heap has seen anything else.
  std::vector<float> y = {kNaN, kNaN, 1.0f, kNaN, 2.0f};
  Sampler k3({1.0f, 3, 1.0f, 2});
  for (int d = 0; d < 100; ++d) {
    const int32_t t = k3.Sample(y.data(), 5);
    EXPECT_TRUE(t == 2 || t == 4) << t;
  }
}

// A NaN beside the best token in any lane of a 16-token chunk must not hide it from the chunk
// tests that skip chunks whole (top-k's heap, top-p's candidates).
TEST(Sampler, NaNDoesNotHideTheBestOfItsChunk) {
  for (int32_t p = 0; p < 16; ++p) {
    for (int32_t q = 0; q < 16; ++q) {
      if (p == q) continue;
      std::vector<float> x = RandomLogits(48, 0.3f, 10);
      x[16 + p] = kNaN;
      x[16 + q] = 5.0f;
      EXPECT_EQ(Sampler({1.0f, 1, 1.0f, 1}).Sample(x.data(), 48), 16 + q) << p << " " << q;
      EXPECT_EQ(Sampler({1.0f, 0, 0.0f, 1}).Sample(x.data(), 48), 16 + q) << p << " " << q;
    }
  }
}

TEST(Sampler, NonFiniteLogitsAndTemperatures) {
  const std::vector<float> all_nan(5, kNaN), all_minus_inf(5, -kInf);
  std::vector<float> plus_inf = RandomLogits(40, 1.0f, 4);
  plus_inf[23] = kInf;
  Sampler s({1.0f, 0, 1.0f, 1});
  EXPECT_EQ(s.Sample(all_nan.data(), 5), 0);
  EXPECT_EQ(s.Sample(all_minus_inf.data(), 5), 0);
  EXPECT_EQ(s.Sample(plus_inf.data(), 40), 23);
  const std::vector<float> x = RandomLogits(40, 1.0f, 5);
  EXPECT_EQ(Sampler({1e-40f, 0, 1.0f, 1}).Sample(x.data(), 40), RefArgmax(x));  // 1 / T overflows
  EXPECT_EQ(Sampler({kNaN, 0, 1.0f, 1}).Sample(x.data(), 40), RefArgmax(x));
}

// The drawn frequencies of each path against its probabilities, computed in double with
// std::exp: the reference above shares SamplingWeights, so this checks the definition itself.
TEST(Sampler, DrawsTheRightDistribution) {
  const std::vector<float> x = {1.0f, 3.0f, -2.0f, 2.5f, 0.0f, 3.0f, 1.5f, -1.0f};
  const int32_t n = static_cast<int32_t>(x.size());
  struct Case {
    SamplingParams p;
    std::vector<int32_t> support;  // survivors, best first
  };
  // Sorted: 1 (3.0), 5 (3.0), 3 (2.5), 6 (1.5), 0 (1.0), 4, 7, 2.
  const Case cases[] = {
      {{1.0f, 0, 1.0f, 11}, {1, 5, 3, 6, 0, 4, 7, 2}},
      {{0.7f, 3, 1.0f, 12}, {1, 5, 3}},
      {{1.0f, 0, 0.9f, 13}, {1, 5, 3, 6}},  // running masses 0.33, 0.66, 0.86, 0.93
      {{1.0f, 4, 0.75f, 14}, {1, 5, 3}},    // within the 4: 0.35, 0.71, 0.92
  };
  for (const Case& c : cases) {
    std::vector<double> prob(n, 0.0);
    double total = 0;
    for (int32_t i : c.support) total += prob[i] = std::exp((x[i] - 3.0) / c.p.temperature);
    for (double& q : prob) q /= total;
    Sampler s(c.p);
    const int draws = 40000;
    std::vector<int> seen(n, 0);
    for (int d = 0; d < draws; ++d) ++seen[s.Sample(x.data(), n)];
    for (int32_t i = 0; i < n; ++i) {
      const double sd = std::sqrt(draws * prob[i] * (1 - prob[i]));
      EXPECT_NEAR(seen[i], draws * prob[i], 5 * sd + 1)
          << "token " << i << " top_k " << c.p.top_k << " top_p " << c.p.top_p;
    }
  }
}

TEST(Sampler, SameSeedSameTokens) {
  const std::vector<float> x = RandomLogits(1000, 1.0f, 6);
  for (const SamplingParams& p :
       {SamplingParams{1.0f, 0, 1.0f, 5}, SamplingParams{0.8f, 40, 0.95f, 5},
        SamplingParams{0.8f, 0, 0.9f, 5}}) {
    Sampler a(p), b(p), c({p.temperature, p.top_k, p.top_p, p.seed + 1});
    int differ = 0;
    for (int d = 0; d < 100; ++d) {
      const int32_t ta = a.Sample(x.data(), 1000);
      EXPECT_EQ(ta, b.Sample(x.data(), 1000));
      differ += ta != c.Sample(x.data(), 1000);
    }
    EXPECT_GT(differ, 0);
  }
}

TEST(Sampler, ArgmaxIsTheFirstLargestNonNaN) {
  std::mt19937 rng(8);
  for (int32_t n : {1, 3, 16, 17, 100, 1000}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> x = RandomLogits(n, 1.0f, rng());
      for (float& v : x) {
        if (rng() % 7 == 0) v = kNaN;
        if (rng() % 5 == 0) v = std::round(v);  // ties
      }
      EXPECT_EQ(Argmax(x.data(), n), RefArgmax(x));
    }
  }
}

TEST(Sampler, WeightsAreExponentialsWhereverTheLogitStands) {
  std::vector<float> x = RandomLogits(1000, 20.0f, 9);
  x[5] = kNaN;
  x[6] = -kInf;
  const float max = *std::max_element(x.begin() + 7, x.end());
  for (float inv_t : {0.5f, 1.0f, 3.0f}) {
    std::vector<float> w(x.size());
    SamplingWeights(x.data(), 1000, max, inv_t, w.data());
    EXPECT_EQ(w[5], 0.0f);
    EXPECT_EQ(w[6], 0.0f);
    for (size_t i = 7; i < x.size(); ++i) {
      const double d = (x[i] - max) * inv_t;  // the exponent in float, as the definition says
      if (d < -87.5) {
        EXPECT_EQ(w[i], 0.0f);
      } else if (d > -86.5) {
        EXPECT_NEAR(w[i], std::exp(d), 1e-6 * std::exp(d)) << x[i];
      }
    }
    // The same logits at every offset (vector body and tail) weigh the same, bit for bit.
    for (int32_t off = 1; off < 16; ++off) {
      std::vector<float> shifted(x.begin() + off, x.begin() + off + 33), ws(33);
      SamplingWeights(shifted.data(), 33, max, inv_t, ws.data());
      for (int32_t i = 0; i < 33; ++i) EXPECT_EQ(ws[i], w[off + i]);
    }
  }
}

}  // namespace
}  // namespace kvc
