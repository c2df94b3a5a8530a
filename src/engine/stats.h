// Summary statistics for repeated measurements (benchmarks report medians and spread).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace kvc {

struct Summary {
  double mean = 0, stdev = 0, median = 0, min = 0, max = 0;
};

inline Summary Summarize(std::vector<double> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  for (double x : v) s.mean += x;
  s.mean /= n;
  for (double x : v) s.stdev += (x - s.mean) * (x - s.mean);
  s.stdev = n > 1 ? std::sqrt(s.stdev / (n - 1)) : 0;
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  return s;
}

}  // namespace kvc
