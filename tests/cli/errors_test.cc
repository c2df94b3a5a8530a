// Bad input through the CLI: a clear "error: ..." naming the problem and a non-zero exit,
// never a crash or a hang.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "cli/cli_runner.h"
#include "model/synth_fixture.h"
#include "model/test_models.h"

namespace kvc {
namespace {

using testing::RunKvcache;

void ExpectError(const std::string& args, const std::string& needle) {
  const auto r = RunKvcache(args);
  EXPECT_NE(r.exit_code, 0) << args;
  EXPECT_LT(r.exit_code, 128) << "crashed: " << args << "\n" << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\nstderr: " << r.err;
}

// A file in the temp directory that lives as long as the expression that uses its path.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& bytes)
      : path_(std::filesystem::temp_directory_path() / ("kvc_cli_" + std::to_string(::getpid()) + name)) {
    std::ofstream(path_, std::ios::binary) << bytes;
  }
  ~TempFile() {
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(CliErrors, MissingModelFile) {
  ExpectError("generate -m /nonexistent/model.gguf -p hi -n 1", "file not found: /nonexistent/model.gguf");
}

TEST(CliErrors, NotAModel) {
  ExpectError("generate -m " + TempFile("junk.bin", "this is not a model at all, just text").path() + " -n 1",
              "invalid llama2.c checkpoint");
  ExpectError("generate -m " + TempFile("bad.gguf", std::string("GGUF\x07\x00\x00\x00", 8) + std::string(32, '\0')).path() + " -n 1",
              "unsupported GGUF version 7");
}

TEST(CliErrors, TruncatedGguf) {
  const std::string full = testing::ReadFile(testing::SynthModelPath("tiny"));
  ExpectError("generate -m " + TempFile("trunc.gguf", full.substr(0, full.size() / 2)).path() + " -n 1",
              "runs past the end of the file");
}

TEST(CliErrors, PromptLongerThanContext) {
  std::string prompt;
  for (int i = 0; i < 400; ++i) prompt += "word ";
  ExpectError("generate -m " + testing::SynthModelPath("tiny") + " -p '" + prompt + "' -n 4",
              "context");
}

TEST(CliErrors, GenerationBeyondContext) {
  ExpectError("generate -m " + testing::SynthModelPath("tiny") + " -p hi -n 100000", "exceed the context");
}

TEST(CliErrors, InvalidOptions) {
  const std::string m = testing::SynthModelPath("tiny");
  ExpectError("generate -m " + m + " -n -5", "-n");
  ExpectError("generate -m " + m + " --top-p 3", "top-p");
  ExpectError("generate -m " + m + " --kv-type q9", "unknown KV cache type 'q9'");
  ExpectError("generate -m " + m + " --kv-layout weird", "unknown KV layout 'weird'");
  ExpectError("generate -m " + m + " --kv-block 0 -n 2", "--kv-block");
  ExpectError("generate -p hi", "model");
  ExpectError("frobnicate", "subcommand");
}

TEST(CliErrors, Llama2cWithoutTokenizer) {
  KVC_REQUIRE_SHARED("models/stories260K.bin");
  ExpectError("generate -m " + testing::SharedPath("models/stories260K.bin") + " -n 4", "-z TOKENIZER");
}

TEST(CliGenerate, SyntheticGpt2StreamsTextAndStats) {
  const auto r = RunKvcache("generate -m " + testing::SynthModelPath("tiny-gpt2") +
                            " -p 'Hello world' -n 16 --temp 0.7 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("Hello world", 0), 0u) << r.out;
  EXPECT_NE(r.err.find("decode"), std::string::npos);
  // Same seed, same text.
  const auto again = RunKvcache("generate -m " + testing::SynthModelPath("tiny-gpt2") +
                                " -p 'Hello world' -n 16 --temp 0.7 --seed 3");
  EXPECT_EQ(r.out, again.out);
}

}  // namespace
}  // namespace kvc

namespace kvc {
namespace {

// Past the context: an error without a policy; with sinks, context shift or a window (rotary
// positions) generation goes on, and the cache stays bounded by the policy.
TEST(CliGenerate, PastTheContextNeedsAPolicy) {
  const std::string m = testing::SynthModelPath("tiny");  // context 256
  ExpectError("generate -m " + m + " -p hi -n 400 --temp 0", "--context-shift");
  for (const char* policy : {"--kv-sinks 4 --kv-window 60", "--context-shift", "--kv-window 64"}) {
    const auto r = RunKvcache("generate -m " + m + " -p hi -n 400 --temp 0 --ignore-eos " + policy);
    EXPECT_EQ(r.exit_code, 0) << policy << "\n" << r.err;
    EXPECT_NE(r.err.find("(400 tokens"), std::string::npos) << policy << "\n" << r.err;
  }
  ExpectError("generate -m " + m + " -p hi -n 10 --kv-sinks 4", "--kv-sinks needs --kv-window");
  ExpectError("generate -m " + m + " -p hi -n 10 --kv-sinks 4 --kv-window 8 --no-kv-cache", "need the KV cache");
}

}  // namespace
}  // namespace kvc
