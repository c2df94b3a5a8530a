// End to end: `kvcache generate` on the real stories models prints exactly llama2.c's text,
// from GGUF and from the llama2.c checkpoint, with and without the KV cache, mapped or loaded.
#include <gtest/gtest.h>

#include "cli/cli_runner.h"
#include "model/test_models.h"

namespace kvc {
namespace {

using testing::ReadFile;
using testing::RunKvcache;
using testing::SharedPath;

struct Golden {
  std::string model;   // file under models/
  std::string extra;   // extra flags
  int new_tokens;      // positions in the reference run minus the 5 prompt positions + 1
  std::string reference;
};

class GenerateGolden : public ::testing::TestWithParam<Golden> {};

TEST_P(GenerateGolden, PrintsReferenceText) {
  const Golden& g = GetParam();
  KVC_REQUIRE_SHARED("models/" + g.model);
  const std::string expected = ReadFile(SharedPath("models/" + g.reference));
  for (const char* cache_flag : {"", " --no-kv-cache"}) {
    const auto r = RunKvcache("generate -m " + SharedPath("models/" + g.model) + g.extra +
                              " -p 'Once upon a time' -n " + std::to_string(g.new_tokens) +
                              " --temp 0" + cache_flag);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The reference file may or may not end with a newline; generate ends with one.
    std::string out = r.out, exp = expected;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    while (!exp.empty() && exp.back() == '\n') exp.pop_back();
    EXPECT_EQ(out, exp) << g.model << g.extra << cache_flag;
    EXPECT_NE(r.err.find("prefill"), std::string::npos) << "stats line missing: " << r.err;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Stories, GenerateGolden,
    ::testing::Values(
        Golden{"stories260K.gguf", "", 252, "stories260K.once-upon-a-time.txt"},
        Golden{"stories260K.bin", " -z " + SharedPath("models/tok512.bin"), 252,
               "stories260K.once-upon-a-time.txt"},
        Golden{"stories-distill-h32.gguf", "", 196, "stories-distill-h32.once-upon-a-time.txt"},
        Golden{"stories-distill-h32.gguf", " --no-mmap", 196, "stories-distill-h32.once-upon-a-time.txt"},
        Golden{"stories-distill-h32.bin", " -z " + SharedPath("models/tok512.bin"), 196,
               "stories-distill-h32.once-upon-a-time.txt"}));

}  // namespace
}  // namespace kvc
