// kvcache verify: exact for f32 caches on every layout, a bounded KL for quantized ones, and the
// exit code when a --max-kl budget is exceeded.
#include <gtest/gtest.h>

#include "cli/cli_runner.h"
#include "model/synth_fixture.h"
#include "model/test_models.h"

namespace kvc {
namespace {

using testing::RunKvcache;

TEST(VerifyCmd, F32CacheIsExactOnEveryLayout) {
  for (const char* layout : {"paged", "contiguous", "growable"}) {
    for (const char* preset : {"tiny", "tiny-gpt2"}) {
      const auto r = RunKvcache("verify -m " + testing::SynthModelPath(preset) + " -n 20 -q --kv-layout " + layout);
      EXPECT_EQ(r.exit_code, 0) << preset << " " << layout << "\n" << r.out << r.err;
      EXPECT_NE(r.out.find("top-1 agreement 100.00%"), std::string::npos) << r.out;
    }
  }
}

TEST(VerifyCmd, QuantizedCacheWithinKLBudget) {
  const std::string m = testing::SynthModelPath("tiny");
  const auto ok = RunKvcache("verify -m " + m + " -n 24 -q --kv-type q8 --max-kl 0.05");
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  const auto over = RunKvcache("verify -m " + m + " -n 24 -q --kv-type q2 --kv-residual 0 --max-kl 1e-9");
  EXPECT_EQ(over.exit_code, 2) << over.out << over.err;
  EXPECT_NE(over.out.find("exceeds --max-kl"), std::string::npos) << over.out;
}

TEST(VerifyCmd, PerplexityOnSharedText) {
  KVC_REQUIRE_SHARED("eval/tinystories-like.txt");
  const auto r = RunKvcache("verify -m " + testing::SharedPath("models/stories260K.gguf") +
                            " --text " + testing::SharedPath("eval/tinystories-like.txt") + " --kv-type q4");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("perplexity: reference"), std::string::npos) << r.out;
}

TEST(VerifyCmd, BadOptions) {
  const std::string m = testing::SynthModelPath("tiny");
  auto r = RunKvcache("verify -m " + m + " --kv-type q4 --kv-group 3");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("group size"), std::string::npos) << r.err;
  r = RunKvcache("verify -m " + m + " --kv-type q4 --kv-grouping kivi --kv-residual 10");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("multiple of --kv-group"), std::string::npos) << r.err;
  r = RunKvcache("verify -m " + m + " --text /nonexistent.txt");
  EXPECT_NE(r.err.find("cannot read --text file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvc
