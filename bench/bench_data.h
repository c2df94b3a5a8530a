// Inputs shared by the micro-benchmarks.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace kvc {

// n draws of N(0, sigma^2) from a seeded Mersenne twister: the same values on every run.
inline std::vector<float> NormalVector(int64_t n, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = g(rng);
  return v;
}

}  // namespace kvc
