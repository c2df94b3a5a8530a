// `kvcache tokenize` end to end: runs the built binary and checks what it prints.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace kvc {
namespace {

const std::string kBin = std::string(KVC_BIN_DIR) + "/kvcache";
const std::string kModels = std::string(KVC_SHARED_DIR) + "/models/";
const std::string kVectors = std::string(KVC_SHARED_DIR) + "/tokenizer-vectors/";

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

struct Output {
  std::string text;  // stdout and stderr together
  int exit_code = -1;
};

Output RunTokenize(const std::string& args) {
  Output out;
  FILE* p = popen((kBin + " tokenize " + args + " 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;) out.text.append(buf, n);
  const int status = pclose(p);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

class TokenizeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!Exists(kBin)) GTEST_SKIP() << "kvcache binary not built: " << kBin;
    for (const std::string& f :
         {kModels + "stories260K.gguf", kModels + "stories260K.bin", kModels + "tok512.bin"}) {
      if (!Exists(f)) GTEST_SKIP() << "../shared not found: " << f;
    }
  }
};

TEST_F(TokenizeCliTest, GgufAndLlama2cGiveTheSameIds) {
  Output gguf = RunTokenize("-m " + kModels + "stories260K.gguf -p 'Once upon a time' --bos");
  EXPECT_EQ(gguf.exit_code, 0) << gguf.text;
  EXPECT_EQ(gguf.text, "1 403 407 261 378\n");
  Output bin = RunTokenize("-m " + kModels + "stories260K.bin -z " + kModels +
                           "tok512.bin -p 'Once upon a time' --bos");
  EXPECT_EQ(bin.exit_code, 0) << bin.text;
  EXPECT_EQ(bin.text, "1 403 407 261 378\n");
  // No BOS unless asked, like llama.cpp's tokenize tool.
  EXPECT_EQ(RunTokenize("-m " + kModels + "stories260K.gguf -p 'Once upon a time'").text,
            "403 407 261 378\n");
}

TEST_F(TokenizeCliTest, Pieces) {
  Output out = RunTokenize("-m " + kModels + "stories260K.gguf -p 'Once upon' --bos --pieces");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.text, "1 '<s>'\n403 '\xE2\x96\x81Once'\n407 '\xE2\x96\x81upon'\n");
  // llama2.c's BOS piece is "\n<s>\n": escaped so that each token stays on one line.
  out = RunTokenize("-m " + kModels + "stories260K.bin -z " + kModels +
                    "tok512.bin -p 'Once' --bos --pieces");
  EXPECT_EQ(out.text, "1 '\\n<s>\\n'\n403 ' Once'\n");
}

TEST_F(TokenizeCliTest, VocabOnlyGguf) {
  const std::string vocab = kVectors + "ggml-vocab-gpt-2.gguf";
  if (!Exists(vocab)) GTEST_SKIP() << "../shared not found: " << vocab;
  Output out = RunTokenize("-m " + vocab + " -p 'Hello world'");
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.text, "15496 995\n");
}

TEST_F(TokenizeCliTest, ErrorsAreReported) {
  Output no_z = RunTokenize("-m " + kModels + "stories260K.bin -p hi");
  EXPECT_NE(no_z.exit_code, 0);
  EXPECT_EQ(no_z.text.rfind("error: ", 0), 0u) << no_z.text;
  EXPECT_NE(no_z.text.find("-z"), std::string::npos) << no_z.text;

  Output missing = RunTokenize("-m /nonexistent/model.gguf -p hi");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(missing.text.rfind("error: ", 0), 0u) << missing.text;

  // A tokenizer file that is not one: the checkpoint itself passed as -z.
  Output bad_tok =
      RunTokenize("-m " + kModels + "stories260K.bin -z " + kModels + "stories260K.gguf -p hi");
  EXPECT_NE(bad_tok.exit_code, 0);
  EXPECT_EQ(bad_tok.text.rfind("error: ", 0), 0u) << bad_tok.text;
}

}  // namespace
}  // namespace kvc
