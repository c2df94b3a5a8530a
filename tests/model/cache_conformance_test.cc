// The conformance suite every cache configuration must pass: on both architectures, logits of
// cached decode (prefill + one token per step) equal full recomputation at every step, exactly
// for f32 storage and within a bounded error for reduced precision. Also the forward pass
// against the naive double-precision reference on synthetic models of both architectures.
#include <cmath>
#include <tuple>

#include <gtest/gtest.h>

#include "kvcache/kv_cache_factory.h"
#include "model/naive_forward.h"
#include "model/synth_fixture.h"
#include "model/transformer.h"
#include "sampling/sampler.h"

namespace kvc {
namespace {

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

// Logits of the last token of `seq` by full recomputation with an f32 contiguous cache.
std::vector<float> Recompute(Transformer& tf, const std::vector<int32_t>& seq) {
  auto cache = MakeKVCache(tf.MakeKVSpec(DType::kF32, static_cast<int32_t>(seq.size())),
                           {KVLayout::kContiguous, 16, DType::kF32});
  std::vector<float> logits(tf.config().vocab_size);
  SeqChunk c{seq, 0, cache.value().get(), logits.data(), false};
  EXPECT_TRUE(tf.Forward({&c, 1}).ok());
  return logits;
}

using Param = std::tuple<std::string, KVLayout, DType>;

class CacheConformance : public ::testing::TestWithParam<Param> {};

TEST_P(CacheConformance, CachedDecodeEqualsRecompute) {
  const auto& [preset, layout, type] = GetParam();
  auto m = ModelFile::Open(testing::SynthModelPath(preset));
  ASSERT_TRUE(m.ok()) << m.status().message();
  ThreadPool pool(2);
  Transformer tf(*m.value(), &pool);
  const int32_t vocab = tf.config().vocab_size;
  KVCacheOptions opt{layout, 4, type};  // small blocks: sequences span many blocks
  auto cache = MakeKVCache(tf.MakeKVSpec(type, 64), opt);
  ASSERT_TRUE(cache.ok());
  std::vector<int32_t> seq = {1, 17, 300, 42, 99, 7, 256};
  std::vector<float> logits(vocab);
  SeqChunk prefill{seq, 0, cache.value().get(), logits.data(), false};
  ASSERT_TRUE(tf.Forward({&prefill, 1}).ok());
  // f32 storage must be exact up to summation order; f16/bf16 keep 11/8 significant bits.
  const double tol = type == DType::kF32 ? 1e-4 : type == DType::kF16 ? 2e-2 : 1.5e-1;
  for (int step = 0; step < 24; ++step) {
    const double diff = MaxAbsDiff(logits, Recompute(tf, seq));
    ASSERT_LT(diff, tol) << "step " << step;
    seq.push_back(Argmax(logits.data(), vocab));
    SeqChunk one{std::span<const int32_t>(seq).last(1), static_cast<int32_t>(seq.size()) - 1,
                 cache.value().get(), logits.data(), false};
    ASSERT_TRUE(tf.Forward({&one, 1}).ok());
  }
  EXPECT_EQ(cache.value()->size(), static_cast<int32_t>(seq.size()));
}

INSTANTIATE_TEST_SUITE_P(
    AllLayoutsTypes, CacheConformance,
    ::testing::Combine(::testing::Values("tiny", "tiny-gpt2"),
                       ::testing::Values(KVLayout::kContiguous, KVLayout::kGrowable, KVLayout::kPaged),
                       ::testing::Values(DType::kF32, DType::kF16, DType::kBF16)),
    [](const auto& info) {
      std::string name = std::get<0>(info.param) + "_" + KVLayoutName(std::get<1>(info.param)) +
                         "_" + std::string(DTypeName(std::get<2>(info.param)));
      for (char& c : name) if (c == '-') c = '_';
      return name;
    });

class NaiveReference : public ::testing::TestWithParam<std::tuple<std::string, DType>> {};

TEST_P(NaiveReference, PrefillAndDecodeMatch) {
  const auto& [preset, wtype] = GetParam();
  auto m = ModelFile::Open(testing::SynthModelPath(preset, wtype));
  ASSERT_TRUE(m.ok()) << m.status().message();
  const std::vector<int32_t> tokens = {1, 5, 260, 33, 480, 2, 77, 300, 12, 9};
  const auto naive = testing::NaiveForward(*m.value(), tokens);
  ThreadPool pool(2);
  Transformer tf(*m.value(), &pool);
  const int32_t vocab = tf.config().vocab_size;
  // Prefill the first 6 tokens (all logits), then decode the rest one at a time.
  auto cache = MakeKVCache(tf.MakeKVSpec(DType::kF32, 16), {});
  std::vector<float> logits(6 * vocab);
  SeqChunk pre{std::span<const int32_t>(tokens).first(6), 0, cache.value().get(), logits.data(), true};
  ASSERT_TRUE(tf.Forward({&pre, 1}).ok());
  std::vector<std::vector<float>> got;
  for (int p = 0; p < 6; ++p) got.emplace_back(logits.begin() + p * vocab, logits.begin() + (p + 1) * vocab);
  for (size_t p = 6; p < tokens.size(); ++p) {
    std::vector<float> l(vocab);
    SeqChunk one{std::span<const int32_t>(tokens).subspan(p, 1), static_cast<int32_t>(p),
                 cache.value().get(), l.data(), false};
    ASSERT_TRUE(tf.Forward({&one, 1}).ok());
    got.push_back(l);
  }
  // Quantized weights: activations are quantized to 8 bits for integer dot products; BF16
  // weights: activations are rounded to bf16 (8-bit mantissa) for the bf16 dot instructions.
  // Both bound the error well above f32 rounding.
  const double rel = wtype == DType::kF32 ? 1e-5 : wtype == DType::kF16 ? 2e-3 : 4e-2;
  for (size_t p = 0; p < tokens.size(); ++p) {
    double max_diff = 0, max_ref = 0;
    for (int32_t i = 0; i < vocab; ++i) {
      max_diff = std::max(max_diff, std::fabs(got[p][i] - naive[p][i]));
      max_ref = std::max(max_ref, std::fabs(naive[p][i]));
    }
    EXPECT_LT(max_diff, rel * std::max(1.0, max_ref)) << preset << " position " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Archs, NaiveReference,
    ::testing::Combine(::testing::Values("tiny", "tiny-gpt2"),
                       ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0)),
    [](const auto& info) {
      std::string name = std::get<0>(info.param) + "_" + std::string(DTypeName(std::get<1>(info.param)));
      for (char& c : name) if (c == '-') c = '_';
      return name;
    });

}  // namespace
}  // namespace kvc
