// `kvcache memory` end to end (the worked examples as printed, the table, errors) and
// ConfigFromGguf on metadata-only GGUFs.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>

#include "cli/cli_runner.h"
#include "formats/gguf_writer.h"
#include "model/config_from_gguf.h"
#include "model/test_models.h"

namespace kvc {
namespace {

using testing::CliResult;
using testing::RunKvcache;

// Expects a successful run whose stdout contains every one of `needles`.
void ExpectOut(const std::string& args, const std::vector<std::string>& needles) {
  const CliResult r = RunKvcache("memory " + args);
  ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.err;
  for (const std::string& n : needles) {
    EXPECT_NE(r.out.find(n), std::string::npos) << "'" << n << "' missing from `" << args << "`:\n"
                                                << r.out;
  }
}

// Expects a failure with "error: " and `needle` on stderr.
void ExpectError(const std::string& args, const std::string& needle) {
  const CliResult r = RunKvcache("memory " + args);
  EXPECT_NE(r.exit_code, 0) << args;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << args << ": " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << args << ": " << r.err;
}

TEST(MemoryCmd, Batch32Ctx2048Fp32) {
  ExpectOut("--layers 32 --kv-heads 32 --head-dim 128 -c 2048 -b 32 --kv-type f32",
            {"       = 2 x 32 x 2,048 x 32 x 32 x 128 x 4\n", "       = 68,719,476,736 bytes\n",
             "total: 68,719,476,736 bytes = 64 GiB = ~68.719 GB\n"});
}

TEST(MemoryCmd, Llama2_7BFp16) {
  const std::string per_token = "per token: 524,288 bytes = 512 KiB (K 262,144 + V 262,144)";
  ExpectOut(
      "--preset llama-2-7b -c 1024 --kv-type f16",
      {"= 2 x 1 x 1,024 x 32 x 32 x 128 x 2\n", per_token, "total: 536,870,912 bytes = 512 MiB"});
  ExpectOut("--preset llama-2-7b -c 4096 --kv-type f16",
            {per_token, "total: 2,147,483,648 bytes = 2 GiB"});
  ExpectOut("--preset llama-2-7b -c 10000 --kv-type f16",
            {per_token, "total: 5,242,880,000 bytes = ~4.883 GiB = ~5.243 GB\n",
             "note: 10,000 tokens exceed the model's context length 4096"});
  // The default context is the model's.
  ExpectOut("--preset llama-2-7b --kv-type f16", {"batch 1 x 4,096 tokens", "= 2 GiB"});
}

TEST(MemoryCmd, Gpt3_175B) {
  for (const char* ctx : {"544", "512+32"}) {
    ExpectOut(std::string("--preset gpt3-175b -b 64 -c ") + ctx + " --kv-type f16",
              {"96 layers, 96 kv heads, head_dim 128", "= 2 x 64 x 544 x 96 x 96 x 128 x 2\n",
               "total: 164,282,499,072 bytes"});
  }
}

TEST(MemoryCmd, QuantizedTermsAndBreakdown) {
  ExpectOut("--preset llama-2-7b -c 4096 --kv-type q4",
            {"= 2 x 1 x 3,968 x 32 x 32 x 128 x 19/32  = 617,611,264  K+V q4\n",
             "+ 2 x 1 x 128 x 32 x 32 x 128 x 4        = 134,217,728  K+V f32 residual\n",
             "K q4: 16 B codes + 3 B scale/zero-point per group of 32\n",
             "  scales/zero-points   48,758,784\n", "total: 751,828,992 bytes = 717 MiB"});
  ExpectOut("--preset llama-2-7b -c 1000 --kv-type q8 --kv-residual 0",
            {"x 34/32\n", "K q8: 32 B codes + 2 B scale per group of 32"});
  ExpectOut("--preset llama-2-7b -c 1000 --kv-type-k q8 --kv-type-v q2 --kv-group 64",
            {"(K and V differ", "x 66/64  = 117,866,496  K q8\n", "x 19/64  =  33,931,264  V q2\n",
             "+ 2 x 1 x 128 x 32 x 32 x 128 x 4      = 134,217,728  K+V f32 residual\n"});
  // KIVI keys leave the ring in whole 32-token groups (4000 slots); values share those slots.
  ExpectOut("--preset llama-2-7b -c 4100 --kv-type q4 --kv-grouping kivi",
            {"= 1 x 1 x 4,000 x 32 x 32 x 128 x 19/32  = 311,296,000  K q4 (KIVI)\n",
             "+ 1 x 1 x 28 x 32 x 32 x 128 x 19/32     =   2,179,072  V q4 slot rounding\n",
             "per group of 32 tokens of one channel", "total: 756,809,728 bytes"});
}

TEST(MemoryCmd, WindowAndBlocks) {
  // mistral-7b's own sliding window applies unless --kv-window says otherwise.
  ExpectOut("--preset mistral-7b -b 4 --kv-type f16",
            {"sliding window 4,096", "= 2 x 4 x 4,096 x 32 x 8 x 128 x 2\n"});
  ExpectOut("--preset mistral-7b -c 8192 --kv-window 0 --kv-type f16",
            {"= 2 x 1 x 8,192 x 32 x 8 x 128 x 2\n"});
  ExpectOut("--preset llama-2-7b -c 4100 --kv-type f16 --kv-layout paged --kv-block 16",
            {"paged layout (blocks of 16 tokens)", "+ 2 x 1 x 12 x 32 x 32 x 128 x 2",
             "K+V f16 block rounding", "(12 empty slots/seq)", "total: 2,155,872,256 bytes"});
}

TEST(MemoryCmd, TableOverEveryType) {
  const CliResult r = RunKvcache("memory --preset llama-2-7b -c 4096");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("= 1,073,741,824 x bytes_per_element"), std::string::npos) << r.out;
  for (const char* row : {"\nf32   -          4 ", "\nf16   -          2 ", "\nbf16  -          2 ",
                          "\nq8    per-token  34/32 ", "\nq4    per-token  19/32 ", "\nq4    kivi ",
                          "\nq2    per-token  11/32 ", "\nq2    kivi "}) {
    EXPECT_NE(r.out.find(row), std::string::npos) << "row '" << row << "' missing:\n" << r.out;
  }
  EXPECT_NE(r.out.find("4,294,967,296  4 GiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("751,828,992  717 MiB"), std::string::npos) << r.out;
}

// stories260K's shape: head_dim 8 clips the group to 8 (q4: 7 bytes per 8 elements).
TEST(MemoryCmd, HeadDim8) {
  ExpectOut("--layers 5 --kv-heads 4 --head-dim 8 -c 512 --kv-type q4 --kv-residual 0",
            {"x 7/8\n", "per token: 280 bytes", "total: 143,360 bytes = 140 KiB"});
}

TEST(MemoryCmd, SharedStoriesGguf) {
  KVC_REQUIRE_SHARED("models/stories260K.gguf");
  ExpectOut("-m " + testing::SharedPath("models/stories260K.gguf") + " --kv-type f32",
            {"5 layers, 4 kv heads, head_dim 8, context 512", "= 2 x 1 x 512 x 5 x 4 x 8 x 4\n",
             "total: 655,360 bytes = 640 KiB"});
}

TEST(MemoryCmd, Errors) {
  ExpectError("--preset no-such-model", "unknown model preset 'no-such-model' (known: tiny,");
  ExpectError("--kv-type f16", "no model: give -m FILE.gguf, --preset NAME (tiny,");
  ExpectError("-m /no/such/file.gguf", "/no/such/file.gguf");
  ExpectError("--preset tiny -c abc", "--ctx: 'abc' is not a number");
  ExpectError("--preset tiny -c 12+", "--ctx: '12+' is not a number");
  ExpectError("--preset tiny -b 0", "--batch: '0' is not a number >= 1");
  ExpectError("--preset tiny -b -3", "--batch");
  ExpectError("--preset tiny --kv-type q3", "unknown --kv-type 'q3'");
  ExpectError("--preset tiny --kv-layout ring", "unknown KV layout 'ring'");
  ExpectError("--preset tiny --kv-grouping rows", "unknown --kv-grouping 'rows'");
  ExpectError("--layers 32 --kv-heads 32 -c 100", "missing --head-dim");
  ExpectError("--layers 32 --kv-heads 32 --head-dim 128", "-c/--ctx TOKENS is required");
  ExpectError("--layers 32 --kv-heads 32 --head-dim 96 -c 10 --kv-type q4 --kv-group 64",
              "head_dim 96 is not a multiple of the group size 64");
  ExpectError("--preset tiny -c 99999999999999 -b 99999999999999 --layers 99999999999999",
              "exceed 2^64 bytes");
  ExpectError("--preset tiny -m x.gguf", "either -m or --preset");
}

class GgufConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        std::filesystem::temp_directory_path() / ("kvc_memory_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A llama-style GGUF with only metadata and a token embedding; `edit` drops or adds keys.
  std::string Write(const std::string& name, const std::function<void(GgufWriter&)>& edit = {}) {
    GgufWriter w;
    w.SetString("general.architecture", "llama");
    w.SetU32("llama.embedding_length", 64);
    w.SetU32("llama.block_count", 5);
    w.SetU32("llama.attention.head_count", 8);
    w.SetU32("llama.attention.head_count_kv", 4);
    w.SetU32("llama.feed_forward_length", 172);
    w.SetU32("llama.context_length", 512);
    EXPECT_TRUE(
        w.AddTensor("token_embd.weight", DType::kF32, {64, 32}, std::vector<uint8_t>(64 * 32 * 4))
            .ok());
    if (edit) edit(w);
    const std::string path = (dir_ / name).string();
    EXPECT_TRUE(w.Write(path).ok());
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(GgufConfig, ReadsTheShapeFromMetadata) {
  auto c = ReadConfigFromGguf(Write("a.gguf"));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->n_layers, 5);
  EXPECT_EQ(c->n_heads, 8);
  EXPECT_EQ(c->n_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 8);
  EXPECT_EQ(c->context_length, 512);
  EXPECT_EQ(c->vocab_size, 32);
  EXPECT_EQ(c->sliding_window, 0);
  EXPECT_TRUE(c->tied_embeddings);
  // key_length overrides dim / heads; sliding_window and mistral are read; kv heads default.
  c = ReadConfigFromGguf(Write("b.gguf", [](GgufWriter& w) {
    w.SetString("general.architecture", "mistral");
    w.SetU32("mistral.embedding_length", 64);
    w.SetU32("mistral.block_count", 2);
    w.SetU32("mistral.attention.head_count", 4);
    w.SetU32("mistral.feed_forward_length", 128);
    w.SetU32("mistral.context_length", 1024);
    w.SetU32("mistral.attention.key_length", 32);
    w.SetU32("mistral.attention.sliding_window", 256);
  }));
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->head_dim, 32);
  EXPECT_EQ(c->n_kv_heads, 4);
  EXPECT_EQ(c->sliding_window, 256);
}

TEST_F(GgufConfig, CliPlansFromMetadataOnly) {
  const std::string path = Write("m.gguf");
  ExpectOut("-m " + path + " --kv-type f16",
            {"5 layers, 4 kv heads, head_dim 8, context 512", "total: 327,680 bytes = 320 KiB"});
  // Without a token embedding the shape is still known (vocab unknown: not needed here).
  GgufWriter w;
  w.SetString("general.architecture", "gpt2");
  for (auto [k, v] : {std::pair{"gpt2.embedding_length", 768},
                      {"gpt2.block_count", 12},
                      {"gpt2.attention.head_count", 12},
                      {"gpt2.feed_forward_length", 3072},
                      {"gpt2.context_length", 1024}}) {
    w.SetU32(k, v);
  }
  const std::string bare = (dir_ / "bare.gguf").string();
  ASSERT_TRUE(w.Write(bare).ok());
  ExpectOut("-m " + bare + " --kv-type f16 -c 1024",
            {"12 layers, 12 kv heads, head_dim 64", "total: 37,748,736 bytes = 36 MiB"});
}

TEST_F(GgufConfig, MissingOrBadKeysAreErrors) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("llama.embedding_length", 64);
  const std::string partial = (dir_ / "partial.gguf").string();
  ASSERT_TRUE(w.Write(partial).ok());
  ExpectError("-m " + partial, "missing metadata 'llama.block_count'");
  EXPECT_EQ(ReadConfigFromGguf(partial).status().code(), StatusCode::kNotFound);

  ExpectError("-m " + Write("rwkv.gguf",
                            [](GgufWriter& w) { w.SetString("general.architecture", "rwkv"); }),
              "unsupported architecture 'rwkv'");
  ExpectError("-m " + Write("zero.gguf", [](GgufWriter& w) { w.SetU32("llama.block_count", 0); }),
              "'llama.block_count' = 0 is out of range");
  ExpectError("-m " + Write("gqa.gguf",
                            [](GgufWriter& w) { w.SetU32("llama.attention.head_count_kv", 3); }),
              "not a multiple of head_count_kv 3");
  const std::string junk = (dir_ / "junk.gguf").string();
  std::FILE* f = std::fopen(junk.c_str(), "wb");
  std::fputs("not a gguf file at all, just some text", f);
  std::fclose(f);
  ExpectError("-m " + junk, "not a GGUF file");
}

}  // namespace
}  // namespace kvc
