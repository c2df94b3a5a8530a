// The forward pass against llama2.c's logits, against a naive double-precision reference, and
// cached decode against full recomputation, on the real stories260K / stories-distill models.
#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "kvcache/contiguous_kv_cache.h"
#include "model/naive_forward.h"
#include "model/test_models.h"
#include "model/transformer.h"

namespace kvc {
namespace {

using testing::SharedPath;

struct ReferenceLogits {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
};

// Parses "pos P token T logits L0 L1 ...".
ReferenceLogits ReadLogits(const std::string& path) {
  ReferenceLogits r;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string w;
    int pos, tok;
    ls >> w >> pos >> w >> tok >> w;
    std::vector<float> l;
    float v;
    while (ls >> v) l.push_back(v);
    r.tokens.push_back(tok);
    r.logits.push_back(std::move(l));
  }
  return r;
}

class ForwardOnSharedModel : public ::testing::TestWithParam<std::string> {};

TEST_P(ForwardOnSharedModel, MatchesLlama2cLogits) {
  const std::string name = GetParam();
  KVC_REQUIRE_SHARED("models/" + name + ".gguf");
  for (const std::string ext : {".gguf", ".bin"}) {
    auto m = ModelFile::Open(SharedPath("models/" + name + ext));
    ASSERT_TRUE(m.ok()) << m.status().message();
    const ReferenceLogits ref = ReadLogits(SharedPath("models/" + name + ".once-upon-a-time.logits.txt"));
    ASSERT_EQ(ref.tokens.size(), 16u);
    ThreadPool pool(2);
    Transformer tf(*m.value(), &pool);
    const ModelConfig& c = tf.config();
    ContiguousKVCache cache(tf.KVShape(c.context_length), {});
    std::vector<float> logits(ref.tokens.size() * c.vocab_size);
    // Prefill all 16 positions at once, logits for each.
    SeqChunk chunk{ref.tokens, 0, &cache, logits.data(), true};
    ASSERT_TRUE(tf.Forward({&chunk, 1}).ok());
    double max_diff = 0;
    for (size_t p = 0; p < ref.tokens.size(); ++p) {
      ASSERT_EQ(ref.logits[p].size(), static_cast<size_t>(c.vocab_size));
      for (int32_t i = 0; i < c.vocab_size; ++i) {
        max_diff = std::max(max_diff, std::fabs(double(logits[p * c.vocab_size + i]) - ref.logits[p][i]));
      }
    }
    // The file has 6 decimals; f32 summation order differs from llama2.c.
    EXPECT_LT(max_diff, 2e-4) << name << ext;
  }
}

TEST_P(ForwardOnSharedModel, PrefillMatchesNaiveReference) {
  const std::string name = GetParam();
  KVC_REQUIRE_SHARED("models/" + name + ".gguf");
  auto m = ModelFile::Open(SharedPath("models/" + name + ".gguf"));
  ASSERT_TRUE(m.ok());
  const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315};
  const auto naive = testing::NaiveForward(*m.value(), tokens);
  ThreadPool pool(2);
  Transformer tf(*m.value(), &pool);
  const int32_t vocab = tf.config().vocab_size;
  ContiguousKVCache cache(tf.KVShape(64), {});
  std::vector<float> logits(tokens.size() * vocab);
  SeqChunk chunk{tokens, 0, &cache, logits.data(), true};
  ASSERT_TRUE(tf.Forward({&chunk, 1}).ok());
  for (size_t p = 0; p < tokens.size(); ++p) {
    double max_diff = 0, max_ref = 0;
    for (int32_t i = 0; i < vocab; ++i) {
      max_diff = std::max(max_diff, std::fabs(logits[p * vocab + i] - naive[p][i]));
      max_ref = std::max(max_ref, std::fabs(naive[p][i]));
    }
    EXPECT_LT(max_diff, 1e-5 * std::max(1.0, max_ref) * 10) << "position " << p;
  }
}

TEST_P(ForwardOnSharedModel, CachedDecodeEqualsRecompute) {
  const std::string name = GetParam();
  KVC_REQUIRE_SHARED("models/" + name + ".gguf");
  auto m = ModelFile::Open(SharedPath("models/" + name + ".gguf"));
  ASSERT_TRUE(m.ok());
  ThreadPool pool(2);
  Transformer tf(*m.value(), &pool);
  const int32_t vocab = tf.config().vocab_size;
  std::vector<int32_t> seq = {1, 403, 407, 261, 378};
  ContiguousKVCache cached(tf.KVShape(64), {.growable = true, .initial_tokens = 2});
  std::vector<float> a(vocab), b(vocab);
  SeqChunk first{seq, 0, &cached, a.data(), false};
  ASSERT_TRUE(tf.Forward({&first, 1}).ok());
  for (int step = 0; step < 40; ++step) {
    ContiguousKVCache scratch(tf.KVShape(64), {});
    SeqChunk full{seq, 0, &scratch, b.data(), false};
    ASSERT_TRUE(tf.Forward({&full, 1}).ok());
    double max_diff = 0;
    for (int32_t i = 0; i < vocab; ++i) max_diff = std::max(max_diff, double(std::fabs(a[i] - b[i])));
    ASSERT_LT(max_diff, 1e-4) << "step " << step;
    int32_t next = 0;
    for (int32_t i = 1; i < vocab; ++i) if (a[i] > a[next]) next = i;
    seq.push_back(next);
    SeqChunk one{std::span<const int32_t>(seq).last(1), static_cast<int32_t>(seq.size()) - 1, &cached, a.data(), false};
    ASSERT_TRUE(tf.Forward({&one, 1}).ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ForwardOnSharedModel,
                         ::testing::Values("stories260K", "stories-distill-h32"));

}  // namespace
}  // namespace kvc
