// Synthetic models: presets, file contents (names, shapes, metadata, vocabulary), determinism,
// and that the written model loads and produces sane logits.
#include "model/synth.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>

#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "kernels/matmul.h"
#include "kvcache/contiguous_kv_cache.h"
#include "model/model_file.h"
#include "model/presets.h"
#include "model/transformer.h"

namespace kvc {
namespace {

constexpr DType kAllTypes[] = {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0};

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "kvc_synth_" + std::to_string(::getpid()) + "_" +
                       info->test_suite_name() + "_" + info->name();
    for (char& c : name) c = c == '/' ? '_' : c;
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

ModelConfig Preset(const char* name) {
  auto r = FindPreset(name);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? r.value() : ModelConfig{};
}

TEST(Presets, PublishedShapes) {
  for (std::string_view name : PresetNames()) {
    auto r = FindPreset(name);
    ASSERT_TRUE(r.ok()) << name;
    const ModelConfig& c = r.value();
    EXPECT_EQ(c.name, name);
    EXPECT_EQ(c.n_heads % c.n_kv_heads, 0) << name;
    EXPECT_EQ(c.dim % 32, 0) << name;
    EXPECT_EQ(c.ffn_dim % 32, 0) << name;
    EXPECT_EQ(c.q_dim() % 32, 0) << name;
  }
  const ModelConfig l = Preset("llama-3.2-1b");
  EXPECT_EQ(l.dim, 2048);
  EXPECT_EQ(l.n_layers, 16);
  EXPECT_EQ(l.n_heads, 32);
  EXPECT_EQ(l.n_kv_heads, 8);
  EXPECT_EQ(l.head_dim, 64);
  EXPECT_EQ(l.ffn_dim, 8192);
  EXPECT_EQ(l.vocab_size, 32000);
  EXPECT_EQ(l.context_length, 131072);
  EXPECT_EQ(l.rope_theta, 500000.0f);
  EXPECT_FALSE(l.tied_embeddings);
  const ModelConfig q = Preset("qwen2.5-0.5b");
  EXPECT_TRUE(q.qkv_bias);
  EXPECT_TRUE(q.tied_embeddings);
  EXPECT_EQ(q.head_dim, 64);
  EXPECT_EQ(SynthArchName(q), "qwen2");
  EXPECT_EQ(Preset("mistral-7b").sliding_window, 4096);
  EXPECT_EQ(Preset("gpt3-175b").arch, Arch::kGpt2);
  EXPECT_EQ(Preset("tiny-gpt2").arch, Arch::kGpt2);
  // Parameter counts as published (embeddings included).
  auto billions = [](const char* n) { return Preset(n).ParameterCount() / 1e9; };
  EXPECT_NEAR(billions("gpt2-124m"), 0.124, 0.001);
  EXPECT_NEAR(billions("qwen2.5-0.5b"), 0.494, 0.001);
  EXPECT_NEAR(billions("tinyllama-1.1b"), 1.100, 0.001);
  EXPECT_NEAR(billions("llama-2-7b"), 6.738, 0.001);
  EXPECT_NEAR(billions("mistral-7b"), 7.242, 0.001);
  EXPECT_NEAR(billions("llama-3.1-8b"), 8.030, 0.001);
  EXPECT_NEAR(billions("gpt3-175b"), 175.0, 0.5);
  auto bad = FindPreset("llama-9");
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  EXPECT_NE(bad.status().message().find("tinyllama-1.1b"), std::string::npos);
}

// Expected (name, ggml dims) of every tensor of a config, in the llama.cpp naming.
std::map<std::string, std::vector<int64_t>> ExpectedTensors(const ModelConfig& c) {
  const int64_t d = c.dim, q = c.q_dim(), kv = c.kv_dim(), f = c.ffn_dim, v = c.vocab_size;
  std::map<std::string, std::vector<int64_t>> t = {{"token_embd.weight", {d, v}},
                                                   {"output_norm.weight", {d}}};
  if (!c.tied_embeddings) t["output.weight"] = {d, v};
  const bool gpt2 = c.arch == Arch::kGpt2;
  if (gpt2) {
    t["position_embd.weight"] = {d, c.context_length};
    t["output_norm.bias"] = {d};
  }
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    t[b + "attn_norm.weight"] = {d};
    t[b + "ffn_norm.weight"] = {d};
    t[b + "attn_output.weight"] = {q, d};
    t[b + "ffn_up.weight"] = {d, f};
    t[b + "ffn_down.weight"] = {f, d};
    if (gpt2) {
      for (const char* n : {"attn_norm.bias", "ffn_norm.bias", "attn_output.bias", "ffn_down.bias"}) {
        t[b + n] = {d};
      }
      t[b + "attn_qkv.weight"] = {d, q + 2 * kv};
      t[b + "attn_qkv.bias"] = {q + 2 * kv};
      t[b + "ffn_up.bias"] = {f};
    } else {
      t[b + "attn_q.weight"] = {d, q};
      t[b + "attn_k.weight"] = {d, kv};
      t[b + "attn_v.weight"] = {d, kv};
      t[b + "ffn_gate.weight"] = {d, f};
    }
  }
  return t;
}

// Logits of a short prompt, every position.
std::vector<float> RunLogits(const ModelFile& m, const std::vector<int32_t>& tokens) {
  ThreadPool pool(2);
  Transformer tf(m, &pool);
  ContiguousKVCache cache(tf.KVShape(64), {});
  std::vector<float> logits(tokens.size() * tf.config().vocab_size);
  SeqChunk chunk{tokens, 0, &cache, logits.data(), true};
  EXPECT_TRUE(tf.Forward({&chunk, 1}).ok());
  return logits;
}

// Finite, spread out (not flat, not one-hot-sharp), and different from position to position.
void ExpectSaneLogits(const std::vector<float>& logits, int32_t vocab) {
  const size_t n = logits.size() / vocab;
  std::set<int32_t> argmaxes;
  for (size_t p = 0; p < n; ++p) {
    const float* l = logits.data() + p * vocab;
    double sum = 0, sq = 0;
    int32_t best = 0;
    for (int32_t i = 0; i < vocab; ++i) {
      ASSERT_TRUE(std::isfinite(l[i])) << "position " << p << " token " << i;
      sum += l[i];
      sq += double(l[i]) * l[i];
      if (l[i] > l[best]) best = i;
    }
    const double mean = sum / vocab, sd = std::sqrt(sq / vocab - mean * mean);
    EXPECT_GT(sd, 0.3) << "position " << p;
    EXPECT_LT(sd, 10.0) << "position " << p;
    argmaxes.insert(best);
  }
  EXPECT_GT(argmaxes.size(), 1u) << "every position predicts the same token";
}

class SynthEveryType : public ::testing::TestWithParam<std::tuple<const char*, DType>> {};

TEST_P(SynthEveryType, WritesAStandardGguf) {
  const auto [preset, type] = GetParam();
  TempDir dir;
  SynthOptions opt;
  opt.config = Preset(preset);
  opt.type = type;
  opt.seed = 7;
  const std::string path = dir.File("m.gguf");
  auto r = SynthesizeModel(opt, path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->parameters, opt.config.ParameterCount());
  EXPECT_EQ(r->bytes, std::filesystem::file_size(path));

  auto f = GgufFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().message();
  const GgufFile& g = **f;
  const ModelConfig& c = opt.config;
  const std::string arch = c.arch == Arch::kGpt2 ? "gpt2" : "llama";
  const std::string p = arch + ".";
  EXPECT_EQ(g.GetString("general.architecture").value(), arch);
  EXPECT_EQ(g.GetString("general.name").value(), preset);
  const std::map<DType, uint64_t> ftype = {{DType::kF32, 0}, {DType::kF16, 1}, {DType::kQ4_0, 2},
                                           {DType::kQ8_0, 7}, {DType::kBF16, 32}};
  EXPECT_EQ(g.GetUint("general.file_type").value(), ftype.at(type));
  EXPECT_EQ(g.GetUint(p + "context_length").value(), uint64_t(c.context_length));
  EXPECT_EQ(g.GetUint(p + "embedding_length").value(), uint64_t(c.dim));
  EXPECT_EQ(g.GetUint(p + "block_count").value(), uint64_t(c.n_layers));
  EXPECT_EQ(g.GetUint(p + "feed_forward_length").value(), uint64_t(c.ffn_dim));
  EXPECT_EQ(g.GetUint(p + "attention.head_count").value(), uint64_t(c.n_heads));
  EXPECT_EQ(g.GetUint(p + "vocab_size").value(), uint64_t(c.vocab_size));
  if (c.arch == Arch::kGpt2) {
    EXPECT_NEAR(g.GetFloat(p + "attention.layer_norm_epsilon").value(), c.norm_eps, 1e-9);
  } else {
    EXPECT_EQ(g.GetUint(p + "attention.head_count_kv").value(), uint64_t(c.n_kv_heads));
    EXPECT_EQ(g.GetUint(p + "rope.dimension_count").value(), uint64_t(c.head_dim));
    EXPECT_EQ(g.GetFloat(p + "rope.freq_base").value(), c.rope_theta);
    EXPECT_NEAR(g.GetFloat(p + "attention.layer_norm_rms_epsilon").value(), c.norm_eps, 1e-9);
  }
  const auto expected = ExpectedTensors(c);
  EXPECT_EQ(g.tensors().size(), expected.size());
  for (const auto& [name, dims] : expected) {
    const GgufTensorInfo* t = g.FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dims, dims) << name;
    EXPECT_EQ(t->type, dims.size() == 1 ? DType::kF32 : type) << name;
  }
  // Norm weights are exactly 1.
  const auto* norm = reinterpret_cast<const float*>(g.FindTensor("output_norm.weight")->data);
  for (int i = 0; i < c.dim; ++i) ASSERT_EQ(norm[i], 1.0f);

  auto m = ModelFile::Open(path);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const ModelConfig& mc = m.value()->config();
  EXPECT_EQ(mc.dim, c.dim);
  EXPECT_EQ(mc.n_layers, c.n_layers);
  EXPECT_EQ(mc.n_kv_heads, c.n_kv_heads);
  EXPECT_EQ(mc.ffn_dim, c.ffn_dim);
  EXPECT_EQ(mc.vocab_size, c.vocab_size);
  EXPECT_EQ(mc.tied_embeddings, c.tied_embeddings);
  ExpectSaneLogits(RunLogits(*m.value(), {1, 300, 301, 302, 303, 40, 41, 42}), c.vocab_size);
}

INSTANTIATE_TEST_SUITE_P(Presets, SynthEveryType,
                         ::testing::Combine(::testing::Values("tiny", "tiny-gpt2"),
                                            ::testing::ValuesIn(kAllTypes)),
                         [](const auto& info) {
                           std::string s = std::string(std::get<0>(info.param)) + "_" +
                                           std::string(DTypeName(std::get<1>(info.param)));
                           for (char& ch : s) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
                           return s;
                         });

// Weights loaded into memory are repacked into the layout the decode kernel streams fastest
// (Q8_0 -> Q8_0_R16, Q4_0 -> Q4_0_R16 on AVX-512 VNNI builds); mapped weights stay as the file
// has them. Both give the same logits up to f32 rounding, and the same greedy tokens.
void ExpectLoadedRepackedMatchesMapped(DType type, bool tied) {
  SCOPED_TRACE(::testing::Message() << DTypeName(type) << (tied ? " tied" : " separate output"));
  TempDir dir;
  SynthOptions opt;
  opt.config = Preset("tiny");
  opt.config.dim = 512;  // every matrix width a multiple of 512: whole 16-block groups
  opt.config.n_heads = 8;
  opt.config.n_kv_heads = 2;
  opt.config.head_dim = 64;
  opt.config.rope_dim = 64;
  opt.config.ffn_dim = 1024;
  opt.config.tied_embeddings = tied;
  opt.type = type;
  const std::string path = dir.File("m.gguf");
  auto r = SynthesizeModel(opt, path);
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto mapped = ModelFile::Open(path, MappedFile::Mode::kMap);
  auto loaded = ModelFile::Open(path, MappedFile::Mode::kLoad);
  ASSERT_TRUE(mapped.ok() && loaded.ok());
  const LayerWeights& lm = mapped.value()->weights().layers[0];
  const LayerWeights& ll = loaded.value()->weights().layers[0];
  EXPECT_EQ(lm.w_down.type, type);
  const std::optional<DType> want = PreferredLayout(lm.w_down);
  for (const MatView* mv : {&ll.wq, &ll.wk, &ll.wv, &ll.wo, &ll.w_gate, &ll.w_up, &ll.w_down,
                            &loaded.value()->weights().output}) {
    EXPECT_EQ(mv->type, want.value_or(type));
  }
  // The embeddings are repacked only when they are also the output.
  EXPECT_EQ(loaded.value()->weights().tok_embd.type, tied ? want.value_or(type) : type);
  const std::vector<int32_t> tokens = {1, 300, 301, 302, 303, 40, 41, 42};
  const std::vector<float> a = RunLogits(*mapped.value(), tokens);
  const std::vector<float> b = RunLogits(*loaded.value(), tokens);
  ASSERT_EQ(a.size(), b.size());
  const int64_t vocab = opt.config.vocab_size;
  for (size_t p = 0; p < a.size() / vocab; ++p) {
    float amax = 0;
    for (int64_t i = 0; i < vocab; ++i) amax = std::max(amax, std::fabs(a[p * vocab + i]));
    for (int64_t i = 0; i < vocab; ++i) {
      ASSERT_NEAR(a[p * vocab + i], b[p * vocab + i], 1e-4f * amax) << "position " << p << " token " << i;
    }
    const auto best = [&](const std::vector<float>& l) {
      return std::max_element(l.begin() + p * vocab, l.begin() + (p + 1) * vocab) - l.begin();
    };
    EXPECT_EQ(best(a), best(b)) << "position " << p;
  }
}

TEST(Synth, LoadedWeightsRepackedGiveTheMappedLogits) {
  ExpectLoadedRepackedMatchesMapped(DType::kQ8_0, false);
  ExpectLoadedRepackedMatchesMapped(DType::kQ4_0, false);
}
TEST(Synth, LoadedTiedEmbeddingsRepackedGiveTheMappedLogits) {
  ExpectLoadedRepackedMatchesMapped(DType::kQ8_0, true);
  ExpectLoadedRepackedMatchesMapped(DType::kQ4_0, true);
}

TEST(Synth, GeneratedVocabulary) {
  TempDir dir;
  SynthOptions opt;
  opt.config = Preset("tiny");
  ASSERT_TRUE(SynthesizeModel(opt, dir.File("v.gguf")).ok());
  auto f = GgufFile::Open(dir.File("v.gguf"));
  ASSERT_TRUE(f.ok());
  const GgufFile& g = **f;
  EXPECT_EQ(g.GetString("tokenizer.ggml.model").value(), "llama");
  const auto tokens = g.GetStringArray("tokenizer.ggml.tokens").value();
  const auto scores = g.GetFloatArray("tokenizer.ggml.scores").value();
  const auto types = g.GetIntArray("tokenizer.ggml.token_type").value();
  ASSERT_EQ(tokens.size(), 512u);
  ASSERT_EQ(scores.size(), 512u);
  ASSERT_EQ(types.size(), 512u);
  EXPECT_EQ(tokens[0], "<unk>");
  EXPECT_EQ(tokens[1], "<s>");
  EXPECT_EQ(tokens[2], "</s>");
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(tokens[3 + 0x41], "<0x41>");
  EXPECT_EQ(tokens[258], "<0xFF>");
  EXPECT_EQ(tokens[259], "\xe2\x96\x81");  // "▁"
  EXPECT_EQ(types[0], 2);
  EXPECT_EQ(types[1], 3);
  EXPECT_EQ(types[100], 6);
  EXPECT_EQ(types[300], 1);
  EXPECT_EQ(g.GetUint("tokenizer.ggml.bos_token_id").value(), 1u);
  EXPECT_EQ(g.GetUint("tokenizer.ggml.eos_token_id").value(), 2u);
  EXPECT_EQ(g.GetUint("tokenizer.ggml.unknown_token_id").value(), 0u);
  EXPECT_EQ(std::set<std::string_view>(tokens.begin(), tokens.end()).size(), tokens.size());
  for (size_t i = 260; i < tokens.size(); ++i) {
    EXPECT_LT(scores[i], scores[i - 1]) << i;
    for (char ch : tokens[i]) {
      const auto u = static_cast<unsigned char>(ch);
      EXPECT_TRUE(u >= 0x80 || std::isprint(u)) << tokens[i];
    }
  }
  int word_starts = 0;
  for (std::string_view t : tokens) word_starts += t.rfind("\xe2\x96\x81", 0) == 0;
  EXPECT_GT(word_starts, 100);
}

TEST(Synth, LargeGeneratedVocabularyIsUnique) {
  TempDir dir;
  SynthOptions opt;
  opt.config = Preset("tiny");
  opt.config.vocab_size = 151936;  // qwen2.5's
  opt.config.n_layers = 1;
  opt.config.dim = 32;
  opt.config.n_heads = 2;
  opt.config.n_kv_heads = 1;
  opt.config.head_dim = 16;
  opt.config.rope_dim = 16;
  opt.config.ffn_dim = 32;
  opt.type = DType::kQ4_0;
  auto r = SynthesizeModel(opt, dir.File("big.gguf"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto f = GgufFile::Open(dir.File("big.gguf"));
  ASSERT_TRUE(f.ok());
  const auto tokens = (*f)->GetStringArray("tokenizer.ggml.tokens").value();
  ASSERT_EQ(tokens.size(), 151936u);
  EXPECT_EQ(std::set<std::string_view>(tokens.begin(), tokens.end()).size(), tokens.size());
}

TEST(Synth, DeterministicBySeedAndThreadCount) {
  TempDir dir;
  SynthOptions opt;
  opt.config = Preset("tiny");
  opt.config.vocab_size = 4096;  // big enough for several generation chunks per tensor
  opt.type = DType::kQ8_0;
  opt.seed = 42;
  opt.threads = 1;
  ASSERT_TRUE(SynthesizeModel(opt, dir.File("a.gguf")).ok());
  opt.threads = 3;
  ASSERT_TRUE(SynthesizeModel(opt, dir.File("b.gguf")).ok());
  opt.seed = 43;
  ASSERT_TRUE(SynthesizeModel(opt, dir.File("c.gguf")).ok());
  const std::string a = ReadAll(dir.File("a.gguf")), b = ReadAll(dir.File("b.gguf")),
                    c = ReadAll(dir.File("c.gguf"));
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), c.size());
  EXPECT_NE(a, c);
}

TEST(Synth, DeepModelsKeepActivationsSane) {
  TempDir dir;
  for (const char* preset : {"tiny", "tiny-gpt2"}) {
    SynthOptions opt;
    opt.config = Preset(preset);
    opt.config.n_layers = 48;
    ASSERT_TRUE(SynthesizeModel(opt, dir.File("deep.gguf")).ok());
    auto m = ModelFile::Open(dir.File("deep.gguf"));
    ASSERT_TRUE(m.ok()) << m.status().message();
    ExpectSaneLogits(RunLogits(*m.value(), {1, 260, 270, 280, 290, 3, 4, 5, 6, 7}),
                     opt.config.vocab_size);
  }
}

TEST(Synth, QuantizedTypesNeedBlockAlignedRows) {
  TempDir dir;
  SynthOptions opt;
  opt.config = Preset("tiny");
  opt.config.ffn_dim = 176;  // ffn_down rows are 176 wide: not a multiple of 32
  for (DType t : {DType::kQ8_0, DType::kQ4_0}) {
    opt.type = t;
    auto r = SynthesizeModel(opt, dir.File("q.gguf"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("blk.0.ffn_down.weight has rows of 176"), std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("block size 32"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir.File("q.gguf")));
  }
  opt.type = DType::kF16;
  EXPECT_TRUE(SynthesizeModel(opt, dir.File("q.gguf")).ok());
}

TEST(Synth, BadOptions) {
  TempDir dir;
  SynthOptions opt;
  opt.config = Preset("tiny");
  opt.config.vocab_size = 100;
  auto small = SynthesizeModel(opt, dir.File("x.gguf"));
  EXPECT_EQ(small.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(small.status().message().find("at least 260 tokens"), std::string::npos);
  opt.config = Preset("tiny");
  opt.config.n_kv_heads = 3;
  EXPECT_EQ(SynthesizeModel(opt, dir.File("x.gguf")).status().code(), StatusCode::kInvalidArgument);
  opt.config = Preset("tiny");
  auto io = SynthesizeModel(opt, dir.File("no/such/dir/x.gguf"));
  EXPECT_EQ(io.status().code(), StatusCode::kIo);
  opt.vocab_from = dir.File("missing.gguf");
  auto missing = SynthesizeModel(opt, dir.File("x.gguf"));
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("missing.gguf"), std::string::npos);
  GgufWriter no_vocab;
  no_vocab.SetString("general.architecture", "llama");
  ASSERT_TRUE(no_vocab.Write(dir.File("novocab.gguf")).ok());
  opt.vocab_from = dir.File("novocab.gguf");
  auto nv = SynthesizeModel(opt, dir.File("x.gguf"));
  ASSERT_FALSE(nv.ok());
  EXPECT_NE(nv.status().message().find("tokenizer.ggml.tokens"), std::string::npos);
}

TEST(Synth, VocabularyFromAnotherFile) {
  const std::string src = std::string(KVC_SHARED_DIR) + "/models/stories260K.gguf";
  if (!std::filesystem::exists(src)) GTEST_SKIP() << "../shared not found";
  TempDir dir;
  SynthOptions opt;
  opt.config = Preset("tiny-gpt2");
  opt.config.vocab_size = 1000;  // replaced by the copied vocabulary's size
  opt.vocab_from = src;
  auto r = SynthesizeModel(opt, dir.File("v.gguf"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->config.vocab_size, 512);
  auto a = GgufFile::Open(src);
  auto b = GgufFile::Open(dir.File("v.gguf"));
  ASSERT_TRUE(a.ok() && b.ok());
  int copied = 0;
  for (const auto& [key, value] : (*a)->metadata()) {
    if (key.rfind("tokenizer.", 0) != 0) continue;
    ++copied;
    ASSERT_NE((*b)->Find(key), nullptr) << key;
    EXPECT_EQ((*b)->Find(key)->type, value.type) << key;
  }
  EXPECT_GE(copied, 5);
  EXPECT_EQ((*b)->GetStringArray("tokenizer.ggml.tokens").value(),
            (*a)->GetStringArray("tokenizer.ggml.tokens").value());
  EXPECT_EQ((*b)->FindTensor("token_embd.weight")->dims, (std::vector<int64_t>{64, 512}));
  EXPECT_EQ((*b)->GetUint("gpt2.vocab_size").value(), 512u);
}

}  // namespace
}  // namespace kvc
