// llama2.c checkpoints: layout of a valid file, and every malformed header or size rejected.
#include "formats/llama2c.h"

#include <cstring>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "formats/gguf_writer.h"

namespace kvc {
namespace {

// A checkpoint whose floats count up from 0, so each pointer can be checked by value.
std::vector<uint8_t> Checkpoint(std::vector<int32_t> h, size_t n_floats) {
  std::vector<uint8_t> out(28 + 4 * n_floats);
  std::memcpy(out.data(), h.data(), 28);
  for (size_t i = 0; i < n_floats; ++i) {
    const float v = static_cast<float>(i);
    std::memcpy(out.data() + 28 + 4 * i, &v, 4);
  }
  return out;
}

// dim 8, hidden 16, 1 layer, 2 heads (head 4), 1 kv head (kv_dim 4), vocab 5, seq 3.
constexpr int64_t kEmb = 5 * 8, kAtt = 8, kQ = 64, kKv = 32, kO = 64, kFfn = 8, kW = 128, kFin = 8,
                  kFreq = 3 * 2;
constexpr size_t kShared = kEmb + kAtt + kQ + 2 * kKv + kO + kFfn + 3 * kW + kFin + 2 * kFreq;

Result<std::unique_ptr<Llama2cCheckpoint>> Parse(const std::vector<uint8_t>& bytes, size_t n,
                                                 std::vector<uint8_t>* keep) {
  keep->assign(bytes.begin(), bytes.begin() + n);
  keep->shrink_to_fit();
  return ParseLlama2c(keep->data(), keep->size(), "test.bin");
}

TEST(Llama2c, ParsesSharedClassifierLayout) {
  const auto bytes = Checkpoint({8, 16, 1, 2, 1, 5, 3}, kShared);
  std::vector<uint8_t> keep;
  auto r = Parse(bytes, bytes.size(), &keep);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Llama2cCheckpoint& ck = **r;
  EXPECT_EQ(ck.config.dim, 8);
  EXPECT_EQ(ck.config.hidden_dim, 16);
  EXPECT_EQ(ck.config.n_kv_heads, 1);
  EXPECT_EQ(ck.config.vocab_size, 5);
  EXPECT_TRUE(ck.config.shared_classifier);
  EXPECT_EQ(ck.token_embedding[0], 0.0f);
  EXPECT_EQ(ck.rms_att[0], kEmb);
  EXPECT_EQ(ck.wq[0], kEmb + kAtt);
  EXPECT_EQ(ck.wk[0], kEmb + kAtt + kQ);
  EXPECT_EQ(ck.wv[0], kEmb + kAtt + kQ + kKv);
  EXPECT_EQ(ck.wo[0], kEmb + kAtt + kQ + 2 * kKv);
  EXPECT_EQ(ck.w3[0], kEmb + kAtt + kQ + 2 * kKv + kO + kFfn + 2 * kW);
  EXPECT_EQ(ck.rms_final[0], kEmb + kAtt + kQ + 2 * kKv + kO + kFfn + 3 * kW);
  EXPECT_EQ(ck.wcls, ck.token_embedding);
}

TEST(Llama2c, ParsesSeparateClassifier) {
  const auto bytes = Checkpoint({8, 16, 1, 2, 1, -5, 3}, kShared + kEmb);
  std::vector<uint8_t> keep;
  auto r = Parse(bytes, bytes.size(), &keep);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_FALSE((*r)->config.shared_classifier);
  EXPECT_EQ((*r)->config.vocab_size, 5);
  EXPECT_EQ((*r)->wcls[0], static_cast<float>(kShared));
}

TEST(Llama2c, EveryWrongSizeFails) {
  const auto bytes = Checkpoint({8, 16, 1, 2, 1, 5, 3}, kShared + 1);
  std::vector<uint8_t> keep;
  for (size_t n = 0; n <= bytes.size(); ++n) {
    if (n == bytes.size() - 4) continue;  // the exact size
    auto r = Parse(bytes, n, &keep);
    ASSERT_FALSE(r.ok()) << n << " bytes parsed";
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
    EXPECT_EQ(r.status().message().rfind("test.bin: ", 0), 0u) << r.status().message();
  }
  auto trunc = Parse(bytes, 100, &keep);
  EXPECT_NE(trunc.status().message().find("truncated"), std::string::npos);
  // A shared-classifier header on a file that carries a classifier is the wrong size too.
  const auto extra = Checkpoint({8, 16, 1, 2, 1, 5, 3}, kShared + kEmb);
  EXPECT_NE(Parse(extra, extra.size(), &keep).status().message().find("header implies"),
            std::string::npos);
}

TEST(Llama2c, AbsurdHeaders) {
  const std::vector<std::vector<int32_t>> headers = {
      {0, 16, 1, 2, 1, 5, 3},           {-8, 16, 1, 2, 1, 5, 3},
      {8, 16, 0, 2, 1, 5, 3},           {8, 16, 1, 0, 1, 5, 3},
      {8, 16, 1, 2, 0, 5, 3},           {8, 16, 1, 2, 1, 0, 3},
      {8, 16, 1, 2, 1, INT32_MIN, 3},   {8, 16, 1, 2, 1, 5, 0},
      {1 << 30, 16, 1, 2, 1, 5, 3},     {8, 16, 100000, 2, 1, 5, 3},
      {8, 16, 1, 3, 1, 5, 3},           {8, 16, 1, 2, 3, 5, 3},
      {6, 16, 1, 2, 1, 5, 3},           {8, 16, 1, 4, 3, 5, 3},
      {0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff},
      {1 << 20, 1 << 20, 4096, 2, 1, 1 << 20, 1 << 20},  // in range; the size check must not overflow
  };
  for (const auto& h : headers) {
    const auto bytes = Checkpoint(h, 64);
    std::vector<uint8_t> keep;
    auto r = Parse(bytes, bytes.size(), &keep);
    ASSERT_FALSE(r.ok()) << h[0] << " " << h[1] << " " << h[2] << " " << h[3] << " " << h[4];
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt);
  }
  const auto bytes = Checkpoint({-8, 16, 1, 2, 1, 5, 3}, 64);
  std::vector<uint8_t> keep;
  EXPECT_NE(Parse(bytes, bytes.size(), &keep).status().message().find("dim -8"), std::string::npos);
}

TEST(Llama2c, RejectsGgufAndNewerExports) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  const std::vector<uint8_t> gguf = w.Serialize();
  EXPECT_TRUE(LooksLikeGguf(gguf.data(), gguf.size()));
  std::vector<uint8_t> keep;
  auto r = Parse(gguf, gguf.size(), &keep);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("GGUF"), std::string::npos) << r.status().message();
  auto v1 = Checkpoint({0x616b3432, 1, 8, 16, 1, 2, 1}, 64);
  auto rv = Parse(v1, v1.size(), &keep);
  ASSERT_FALSE(rv.ok());
  EXPECT_NE(rv.status().message().find("ak42"), std::string::npos);
  EXPECT_FALSE(LooksLikeGguf(v1.data(), 3));
}

TEST(Llama2c, OpenErrors) {
  auto missing = OpenLlama2c("/nonexistent/model.bin");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/model.bin"), std::string::npos);
}

const std::string kShared_ = KVC_SHARED_DIR;

TEST(Llama2c, OpensStories260K) {
  const std::string path = kShared_ + "/models/stories260K.bin";
  if (!std::ifstream(path).good()) GTEST_SKIP() << "../shared not found";
  auto r = OpenLlama2c(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Llama2cConfig& c = (*r)->config;
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.seq_len, 512);
  EXPECT_TRUE(c.shared_classifier);
  // The GGUF conversion of the same model is refused as a checkpoint, with a clear message.
  auto g = OpenLlama2c(kShared_ + "/models/stories260K.gguf");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("GGUF"), std::string::npos);
}

}  // namespace
}  // namespace kvc
