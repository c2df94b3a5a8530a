// Bad tokenizer data gives a Status naming the problem, never a crash.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "tokenizer/tokenizer.h"

namespace kvc {
namespace {

using ::testing::HasSubstr;

// A small valid vocabulary; `skip` leaves keys out so tests can break one thing at a time.
struct TinyVocab {
  std::string model = "llama";
  std::vector<std::string> tokens = {"<unk>",
                                     "<s>",
                                     "</s>",
                                     "\xE2\x96\x81"
                                     "a",
                                     "a",
                                     "b"};
  std::vector<float> scores = {0, 0, 0, -1, -2, -3};
  std::vector<int32_t> types = {2, 3, 3, 1, 1, 1};
  std::vector<std::string> merges = {"a b"};
  std::set<std::string> skip;

  GgufWriter Writer() const {
    GgufWriter w;
    auto want = [&](const char* key) { return skip.count(key) == 0; };
    if (want("tokenizer.ggml.model")) w.SetString("tokenizer.ggml.model", model);
    if (want("tokenizer.ggml.tokens")) w.SetStringArray("tokenizer.ggml.tokens", tokens);
    if (want("tokenizer.ggml.scores")) w.SetF32Array("tokenizer.ggml.scores", scores);
    if (want("tokenizer.ggml.token_type")) w.SetI32Array("tokenizer.ggml.token_type", types);
    if (want("tokenizer.ggml.merges") && model == "gpt2") {
      w.SetStringArray("tokenizer.ggml.merges", merges);
    }
    return w;
  }
};

// Parses the writer's image and loads its tokenizer (which copies what it needs).
Result<std::unique_ptr<Tokenizer>> Load(const GgufWriter& w) {
  const std::vector<uint8_t> image = w.Serialize();
  KVC_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> gguf,
                       GgufFile::Parse(image.data(), image.size(), "tiny.gguf"));
  return LoadGgufTokenizer(*gguf);
}

void ExpectError(const GgufWriter& w, StatusCode code, const std::string& text) {
  auto r = Load(w);
  ASSERT_FALSE(r.ok()) << "expected an error mentioning " << text;
  EXPECT_EQ(r.status().code(), code) << r.status().message();
  EXPECT_THAT(r.status().message(), HasSubstr(text));
}

TEST(GgufTokenizerErrors, TinyVocabLoads) {
  auto r = Load(TinyVocab().Writer());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value()->Encode("a", true), (std::vector<int32_t>{1, 3}));
}

TEST(GgufTokenizerErrors, MissingKeys) {
  for (const char* key : {"tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                          "tokenizer.ggml.token_type"}) {
    TinyVocab v;
    v.skip.insert(key);
    ExpectError(v.Writer(), StatusCode::kNotFound, key);
  }
  TinyVocab gpt2;
  gpt2.model = "gpt2";
  gpt2.skip.insert("tokenizer.ggml.merges");
  ExpectError(gpt2.Writer(), StatusCode::kNotFound, "tokenizer.ggml.merges");
}

TEST(GgufTokenizerErrors, ArrayLengthMismatches) {
  TinyVocab scores;
  scores.scores.pop_back();
  ExpectError(scores.Writer(), StatusCode::kCorrupt, "tokenizer.ggml.scores has 5 entries");
  TinyVocab types;
  types.types.push_back(1);
  ExpectError(types.Writer(), StatusCode::kCorrupt, "tokenizer.ggml.token_type has 7 entries");
  TinyVocab empty;
  empty.tokens.clear();
  empty.scores.clear();
  empty.types.clear();
  ExpectError(empty.Writer(), StatusCode::kCorrupt, "empty");
}

TEST(GgufTokenizerErrors, UnknownModelIsNamed) {
  TinyVocab v;
  v.model = "bert";
  ExpectError(v.Writer(), StatusCode::kUnsupported, "tokenizer model 'bert'");
}

TEST(GgufTokenizerErrors, BadValues) {
  TinyVocab type;
  type.types[4] = 9;
  ExpectError(type.Writer(), StatusCode::kCorrupt, "token_type[4] = 9");

  GgufWriter bos = TinyVocab().Writer();
  bos.SetU32("tokenizer.ggml.bos_token_id", 6);
  ExpectError(bos, StatusCode::kCorrupt, "BOS token id 6");

  GgufWriter tokens_type = TinyVocab().Writer();
  tokens_type.SetI32Array("tokenizer.ggml.tokens", {1, 2, 3, 4, 5, 6});
  ExpectError(tokens_type, StatusCode::kCorrupt, "tokenizer.ggml.tokens");

  GgufWriter prefix = TinyVocab().Writer();
  prefix.SetString("tokenizer.ggml.add_space_prefix", "yes");
  ExpectError(prefix, StatusCode::kCorrupt, "add_space_prefix");

  TinyVocab merge;
  merge.model = "gpt2";
  merge.merges = {"a b", "ab"};
  ExpectError(merge.Writer(), StatusCode::kCorrupt, "merge 1 ('ab')");

  TinyVocab gpt2;
  gpt2.model = "gpt2";
  GgufWriter pre = gpt2.Writer();
  pre.SetString("tokenizer.ggml.pre", "llama-bpe");
  ExpectError(pre, StatusCode::kUnsupported, "'llama-bpe'");
}

TEST(GgufTokenizerKeys, NoneSentinelAndSpacePrefix) {
  GgufWriter w = TinyVocab().Writer();
  w.SetU32("tokenizer.ggml.bos_token_id", 0xFFFFFFFFu);  // converters' "none"
  w.SetBool("tokenizer.ggml.add_space_prefix", false);
  auto r = Load(w);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r.value()->bos(), -1);
  // No BOS to add, no "▁" prefix: "a" is the plain token 4.
  EXPECT_EQ(r.value()->Encode("a", true), (std::vector<int32_t>{4}));
  EXPECT_EQ(r.value()->Decode({3}), " a");  // nothing to strip without the prefix
}

class Llama2cTokenizerErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ifstream f(std::string(KVC_SHARED_DIR) + "/models/tok512.bin", std::ios::binary);
    if (!f) GTEST_SKIP() << "../shared not found: models/tok512.bin";
    bytes_.assign(std::istreambuf_iterator<char>(f), {});
  }
  void TearDown() override { std::remove(path_.c_str()); }
  const std::string& Write(const std::string& bytes) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
    return path_;
  }
  std::string bytes_;
  const std::string path_ = ::testing::TempDir() + "kvc_tok_" + std::to_string(::getpid()) + ".bin";
};

TEST_F(Llama2cTokenizerErrors, TruncatedFilesAreReported) {
  ASSERT_TRUE(LoadLlama2cTokenizer(Write(bytes_), 512).ok());
  for (size_t cut = 0; cut < bytes_.size(); cut += (cut < 64 ? 1 : 97)) {
    auto r = LoadLlama2cTokenizer(Write(bytes_.substr(0, cut)), 512);
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_EQ(r.status().code(), StatusCode::kCorrupt) << r.status().message();
    EXPECT_THAT(r.status().message(),
                ::testing::AnyOf(HasSubstr("truncated"), HasSubstr("too small")));
  }
  // Asking for more tokens than the file has is the same as a truncated file.
  auto r = LoadLlama2cTokenizer(Write(bytes_), 513);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("token 512 of 513: truncated"));
}

TEST_F(Llama2cTokenizerErrors, CorruptLengthsAndArguments) {
  std::string bad = bytes_;
  const int32_t huge = 1 << 30, negative = -5, zero = 0;
  std::memcpy(&bad[4 + 4], &huge, 4);  // length of token 0
  EXPECT_THAT(LoadLlama2cTokenizer(Write(bad), 512).status().message(),
              HasSubstr("token 0 of 512: length 1073741824"));
  std::memcpy(&bad[4 + 4], &negative, 4);
  EXPECT_EQ(LoadLlama2cTokenizer(Write(bad), 512).status().code(), StatusCode::kCorrupt);
  bad = bytes_;
  std::memcpy(&bad[0], &zero, 4);  // max_token_length
  EXPECT_THAT(LoadLlama2cTokenizer(Write(bad), 512).status().message(),
              HasSubstr("max_token_length 0"));
  EXPECT_EQ(LoadLlama2cTokenizer(Write(bytes_), 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(LoadLlama2cTokenizer("/nonexistent/tok.bin", 512).ok());
}

}  // namespace
}  // namespace kvc
