// The real stories260K.gguf (converted by llama.cpp) must read with the expected metadata.
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "formats/gguf.h"

namespace kvc {
namespace {

TEST(StoriesGguf, Metadata) {
  const std::string path = std::string(KVC_SHARED_DIR) + "/models/stories260K.gguf";
  if (!std::ifstream(path).good()) GTEST_SKIP() << "../shared not found";
  auto r = GgufFile::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const GgufFile& f = **r;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.GetString("general.architecture").value(), "llama");
  EXPECT_EQ(f.GetUint("llama.block_count").value(), 5u);
  EXPECT_EQ(f.GetUint("llama.embedding_length").value(), 64u);
  EXPECT_EQ(f.GetUint("llama.feed_forward_length").value(), 172u);
  EXPECT_EQ(f.GetUint("llama.attention.head_count").value(), 8u);
  EXPECT_EQ(f.GetUint("llama.attention.head_count_kv").value(), 4u);
  EXPECT_EQ(f.GetUint("llama.context_length").value(), 512u);
  EXPECT_EQ(f.GetUint("llama.rope.dimension_count").value(), 8u);
  EXPECT_NEAR(f.GetFloat("llama.attention.layer_norm_rms_epsilon").value(), 1e-5, 1e-9);
  EXPECT_EQ(f.GetString("tokenizer.ggml.model").value(), "llama");
  EXPECT_EQ(f.GetUint("tokenizer.ggml.bos_token_id").value(), 1u);
  EXPECT_EQ(f.GetUint("tokenizer.ggml.eos_token_id").value(), 2u);
  auto tokens = f.GetStringArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[3], "<0x00>");
  EXPECT_EQ(f.GetFloatArray("tokenizer.ggml.scores")->size(), 512u);
  auto types = f.GetIntArray("tokenizer.ggml.token_type");
  ASSERT_TRUE(types.ok());
  EXPECT_EQ((*types)[3], 6);  // byte token

  EXPECT_EQ(f.tensors().size(), 3u + 5 * 9);
  const GgufTensorInfo* emb = f.FindTensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->dims, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ(emb->type, DType::kF32);
  EXPECT_EQ(emb->nbytes, 64u * 512 * 4);
  const GgufTensorInfo* k = f.FindTensor("blk.4.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->dims, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(k->AsMat().rows, 32);
  const GgufTensorInfo* down = f.FindTensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->dims, (std::vector<int64_t>{172, 64}));
  for (const GgufTensorInfo& t : f.tensors()) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % 32, 0u) << t.name;  // mmap is page-aligned
  }
  const float* norm = reinterpret_cast<const float*>(f.FindTensor("output_norm.weight")->data);
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(std::isfinite(norm[i]));
}

}  // namespace
}  // namespace kvc
