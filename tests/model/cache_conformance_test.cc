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
  auto cache = MakeKVCache(tf.KVShape(static_cast<int32_t>(seq.size())),
                           {.layout = KVLayout::kContiguous});
  std::vector<float> logits(tf.config().vocab_size);
  SeqChunk c{seq, 0, cache.value().get(), logits.data(), false};
  EXPECT_TRUE(tf.Forward({&c, 1}).ok());
  return logits;
}

// A storage configuration and the error it may add to the logits, relative to max |logit|.
struct Storage {
  std::string name;
  KVType k, v;
  KVGrouping grouping = KVGrouping::kPerToken;
  int32_t group = 8;
  int32_t residual = 0;
  double rel_tol = 0;
};

const Storage kStorages[] = {
    {"f32", KVType::kF32, KVType::kF32, KVGrouping::kPerToken, 8, 0, 1e-5},
    {"f16", KVType::kF16, KVType::kF16, KVGrouping::kPerToken, 8, 0, 2e-3},
    {"bf16", KVType::kBF16, KVType::kBF16, KVGrouping::kPerToken, 8, 0, 2e-2},
    {"q8", KVType::kQ8, KVType::kQ8, KVGrouping::kPerToken, 8, 0, 3e-2},
    {"q8_residual5", KVType::kQ8, KVType::kQ8, KVGrouping::kPerToken, 8, 5, 3e-2},
    {"q4", KVType::kQ4, KVType::kQ4, KVGrouping::kPerToken, 8, 0, 0.25},
    {"q4_residual6", KVType::kQ4, KVType::kQ4, KVGrouping::kPerToken, 8, 6, 0.25},
    {"q2", KVType::kQ2, KVType::kQ2, KVGrouping::kPerToken, 8, 0, 1.0},
    {"q4_kivi", KVType::kQ4, KVType::kQ4, KVGrouping::kKivi, 4, 8, 0.25},
    {"q2_kivi", KVType::kQ2, KVType::kQ2, KVGrouping::kKivi, 4, 8, 1.0},
    {"k8_v4", KVType::kQ8, KVType::kQ4, KVGrouping::kPerToken, 16, 0, 0.25},
};

using Param = std::tuple<std::string, KVLayout, Storage>;

class CacheConformance : public ::testing::TestWithParam<Param> {};

// Prefill 7 tokens, then 24 one-token decode steps; at every step the cached logits must match
// recomputing the whole sequence (the reference keeps f32 K/V, so quantized storage shows up as
// bounded error and f32 storage must be exact).
TEST_P(CacheConformance, CachedDecodeEqualsRecompute) {
  const auto& [preset, layout, st] = GetParam();
  auto m = ModelFile::Open(testing::SynthModelPath(preset));
  ASSERT_TRUE(m.ok()) << m.status().message();
  ThreadPool pool(2);
  Transformer tf(*m.value(), &pool);
  const int32_t vocab = tf.config().vocab_size;
  KVCacheOptions opt{.layout = layout, .block_size = 4, .type_k = st.k, .type_v = st.v,
                     .group = st.group, .grouping = st.grouping, .residual = st.residual};
  auto cache = MakeKVCache(tf.KVShape(64), opt);
  ASSERT_TRUE(cache.ok()) << cache.status().message();
  std::vector<int32_t> seq = {1, 17, 300, 42, 99, 7, 256};
  std::vector<float> logits(vocab);
  SeqChunk prefill{seq, 0, cache.value().get(), logits.data(), false};
  ASSERT_TRUE(tf.Forward({&prefill, 1}).ok());
  double worst = 0;
  for (int step = 0; step < 24; ++step) {
    const std::vector<float> ref = Recompute(tf, seq);
    double max_ref = 0;
    for (float x : ref) max_ref = std::max(max_ref, double(std::fabs(x)));
    const double diff = MaxAbsDiff(logits, ref);
    worst = std::max(worst, diff / std::max(1.0, max_ref));
    if (st.k == KVType::kF32 && st.v == KVType::kF32) {
      ASSERT_LT(diff, 1e-4) << "step " << step;
    }
    ASSERT_LT(diff, st.rel_tol * std::max(1.0, max_ref)) << "step " << step;
    // Decode the reference's greedy choice so every configuration follows one trajectory.
    seq.push_back(Argmax(ref.data(), vocab));
    SeqChunk one{std::span<const int32_t>(seq).last(1), static_cast<int32_t>(seq.size()) - 1,
                 cache.value().get(), logits.data(), false};
    ASSERT_TRUE(tf.Forward({&one, 1}).ok());
  }
  EXPECT_EQ(cache.value()->size(), static_cast<int32_t>(seq.size()));
  RecordProperty("worst_relative_error", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(
    AllLayoutsTypes, CacheConformance,
    ::testing::Combine(::testing::Values("tiny", "tiny-gpt2"),
                       ::testing::Values(KVLayout::kContiguous, KVLayout::kGrowable, KVLayout::kPaged),
                       ::testing::ValuesIn(kStorages)),
    [](const auto& info) {
      std::string name = std::get<0>(info.param) + "_" + KVLayoutName(std::get<1>(info.param)) +
                         "_" + std::get<2>(info.param).name;
      for (char& c : name) if (c == '-') c = '_';
      return name;
    });

// Sliding window: cached decode with a window equals the naive reference with the same window,
// on every layout, and the paged layout's memory stays bounded by the window.
class WindowConformance : public ::testing::TestWithParam<std::tuple<std::string, KVLayout>> {};

TEST_P(WindowConformance, MatchesWindowedReference) {
  const auto& [preset, layout] = GetParam();
  auto m = ModelFile::Open(testing::SynthModelPath(preset));
  ASSERT_TRUE(m.ok());
  ThreadPool pool(2);
  Transformer tf(*m.value(), &pool);
  const int32_t vocab = tf.config().vocab_size, window = 6;
  auto cache = MakeKVCache(tf.KVShape(64), {.layout = layout, .block_size = 4, .window = window});
  ASSERT_TRUE(cache.ok()) << cache.status().message();
  std::vector<int32_t> seq = {1, 17, 300, 42, 99, 7, 256, 3, 8, 12};
  std::vector<float> logits(seq.size() * vocab);
  SeqChunk pre{seq, 0, cache.value().get(), logits.data(), true};
  ASSERT_TRUE(tf.Forward({&pre, 1}).ok());
  std::vector<std::vector<float>> got;
  for (size_t p = 0; p < seq.size(); ++p) got.emplace_back(logits.begin() + p * vocab, logits.begin() + (p + 1) * vocab);
  size_t max_bytes = 0;
  for (int step = 0; step < 20; ++step) {
    seq.push_back(Argmax(got.back().data(), vocab));
    std::vector<float> l(vocab);
    SeqChunk one{std::span<const int32_t>(seq).last(1), static_cast<int32_t>(seq.size()) - 1,
                 cache.value().get(), l.data(), false};
    ASSERT_TRUE(tf.Forward({&one, 1}).ok());
    got.push_back(l);
    max_bytes = std::max(max_bytes, cache.value()->BytesAllocated());
  }
  seq.pop_back();  // the last sampled token was never run
  const auto naive = testing::NaiveForward(*m.value(), seq, window);
  ASSERT_EQ(naive.size(), got.size() - 1);
  for (size_t p = 0; p < naive.size(); ++p) {
    double diff = 0;
    for (int32_t i = 0; i < vocab; ++i) diff = std::max(diff, std::fabs(got[p][i] - naive[p][i]));
    EXPECT_LT(diff, 1e-4) << "position " << p;
  }
  if (layout == KVLayout::kPaged) {
    // The window plus the blocks at its two ends, never the whole sequence.
    const size_t per_token = cache.value()->BytesAllocated() / std::max<size_t>(1, 1);
    (void)per_token;
    const auto* spec = &cache.value()->spec();
    const size_t token_bytes = 2ull * spec->n_layers * spec->n_kv_heads * spec->head_dim * 4;
    EXPECT_LE(max_bytes, token_bytes * (window + 2 * 4));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, WindowConformance,
    ::testing::Combine(::testing::Values("tiny", "tiny-gpt2"),
                       ::testing::Values(KVLayout::kContiguous, KVLayout::kGrowable, KVLayout::kPaged)),
    [](const auto& info) {
      std::string name = std::get<0>(info.param) + "_" + KVLayoutName(std::get<1>(info.param));
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
  auto cache = MakeKVCache(tf.KVShape(16), {});
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
