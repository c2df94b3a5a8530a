// llama.cpp's tokenizer test vectors: every input must give exactly the expected ids (no BOS).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace kvc {
namespace {

const std::string kDir = std::string(KVC_SHARED_DIR) + "/tokenizer-vectors/";

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  *out = ss.str();
  return true;
}

// Inputs are separated (and terminated) by "\n__ggml_vocab_test__\n".
std::vector<std::string> SplitInputs(const std::string& text) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  size_t start = 0;
  for (size_t hit; (hit = text.find(sep, start)) != std::string::npos; start = hit + sep.size()) {
    inputs.push_back(text.substr(start, hit - start));
  }
  return inputs;
}

std::vector<std::vector<int32_t>> ParseExpected(const std::string& text) {
  std::vector<std::vector<int32_t>> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    for (int32_t id; ls >> id;) ids.push_back(id);
    lines.push_back(std::move(ids));
  }
  return lines;
}

std::string Join(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += " " + std::to_string(id);
  return s;
}

class VectorsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(VectorsTest, ReproducesEveryExpectedLine) {
  const std::string base = kDir + GetParam();
  std::string inp, out;
  if (!ReadFile(base + ".inp", &inp) || !ReadFile(base + ".out", &out)) {
    GTEST_SKIP() << "../shared not found: " << base << ".inp/.out";
  }
  auto gguf = GgufFile::Open(base);
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  auto tok = LoadGgufTokenizer(*gguf.value());
  ASSERT_TRUE(tok.ok()) << tok.status().message();

  const std::vector<std::string> inputs = SplitInputs(inp);
  const std::vector<std::vector<int32_t>> expected = ParseExpected(out);
  ASSERT_EQ(inputs.size(), expected.size());
  int passed = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::vector<int32_t> ids = tok.value()->Encode(inputs[i], /*add_bos=*/false);
    EXPECT_EQ(Join(ids), Join(expected[i])) << "input " << i << ": '" << inputs[i] << "'";
    passed += ids == expected[i];
    // Byte fallback and byte-level BPE are lossless, so decoding gives the input back.
    EXPECT_EQ(tok.value()->Decode(ids), inputs[i]) << "input " << i;
  }
  std::printf("[ vectors  ] %s: %d/%zu inputs match\n", GetParam(), passed, inputs.size());
}

INSTANTIATE_TEST_SUITE_P(Vocabs, VectorsTest,
                         ::testing::Values("ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"),
                         [](const auto& info) {
                           return std::string(info.index == 0 ? "LlamaSpm" : "Gpt2");
                         });

}  // namespace
}  // namespace kvc
