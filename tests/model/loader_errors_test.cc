// ModelFile::Open on broken model files: each problem must come back as a non-OK Status whose
// message names the file and the offending key or tensor.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "model/model_file.h"
#include "model/presets.h"
#include "model/synth.h"

namespace kvc {
namespace {

// Edits applied while copying a GGUF.
struct Edits {
  std::set<std::string> drop_keys;
  std::set<std::string> drop_tensors;
  std::map<std::string, std::string> set_strings;
  std::map<std::string, uint32_t> set_u32;
  std::map<std::string, std::vector<int64_t>> reshape;  // same element count
};

class LoaderErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kvc_loader_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    llama_ = Synth("tiny", "llama.gguf");
    gpt2_ = Synth("tiny-gpt2", "gpt2.gguf");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::string Synth(const char* preset, const std::string& name) {
    SynthOptions opt;
    opt.config = FindPreset(preset).value();
    const std::string path = Path(name);
    auto r = SynthesizeModel(opt, path);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return path;
  }

  // Copies `src` to a new file with `e` applied; returns its path.
  std::string Rewrite(const std::string& src, const Edits& e, const std::string& name) {
    auto f = GgufFile::Open(src);
    EXPECT_TRUE(f.ok());
    GgufWriter w;
    for (const auto& [key, value] : (*f)->metadata()) {
      if (!e.drop_keys.count(key)) w.SetValue(key, value);
    }
    for (const auto& [key, value] : e.set_strings) w.SetString(key, value);
    for (const auto& [key, value] : e.set_u32) w.SetU32(key, value);
    for (const GgufTensorInfo& t : (*f)->tensors()) {
      if (e.drop_tensors.count(t.name)) continue;
      auto it = e.reshape.find(t.name);
      EXPECT_TRUE(w.AddTensor(t.name, t.type, it == e.reshape.end() ? t.dims : it->second,
                              std::vector<uint8_t>(t.data, t.data + t.nbytes))
                      .ok());
    }
    const std::string path = Path(name);
    EXPECT_TRUE(w.Write(path).ok());
    return path;
  }

  // Opens `path` and expects failure with a message naming the file and every `needles`.
  Status ExpectOpenFails(const std::string& path, const std::vector<std::string>& needles) {
    auto m = ModelFile::Open(path);
    EXPECT_FALSE(m.ok()) << path << " opened";
    if (m.ok()) return Status::Ok();
    const std::string& msg = m.status().message();
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
    for (const std::string& n : needles) {
      EXPECT_NE(msg.find(n), std::string::npos) << "message: " << msg << "\nexpected: " << n;
    }
    return m.status();
  }

  std::filesystem::path dir_;
  std::string llama_, gpt2_;
};

TEST_F(LoaderErrors, BaselinesOpen) {
  for (const std::string& p : {llama_, gpt2_}) {
    auto m = ModelFile::Open(p);
    EXPECT_TRUE(m.ok()) << m.status().message();
  }
  Edits none;
  EXPECT_TRUE(ModelFile::Open(Rewrite(llama_, none, "copy.gguf")).ok());
}

TEST_F(LoaderErrors, MissingRequiredMetadata) {
  for (const char* key : {"llama.block_count", "llama.embedding_length",
                          "llama.attention.head_count", "llama.feed_forward_length",
                          "llama.context_length"}) {
    Edits e;
    e.drop_keys = {key};
    const Status st = ExpectOpenFails(Rewrite(llama_, e, "nokey.gguf"), {key});
    EXPECT_EQ(st.code(), StatusCode::kNotFound) << key;
  }
  Edits g;
  g.drop_keys = {"gpt2.attention.head_count"};
  ExpectOpenFails(Rewrite(gpt2_, g, "gpt2nokey.gguf"), {"gpt2.attention.head_count"});
  Edits arch;
  arch.drop_keys = {"general.architecture"};
  ExpectOpenFails(Rewrite(llama_, arch, "noarch.gguf"), {"general.architecture"});
}

TEST_F(LoaderErrors, BadMetadataValues) {
  Edits zero;
  zero.set_u32 = {{"llama.block_count", 0}};
  ExpectOpenFails(Rewrite(llama_, zero, "zero.gguf"), {"llama.block_count"});
  Edits str;
  str.set_strings = {{"llama.embedding_length", "sixty-four"}};
  ExpectOpenFails(Rewrite(llama_, str, "str.gguf"), {"llama.embedding_length"});
  Edits heads;
  heads.set_u32 = {{"llama.attention.head_count_kv", 3}};
  ExpectOpenFails(Rewrite(llama_, heads, "kv.gguf"), {"head_count"});
  // More layers than the file has tensors for: the first missing one is named.
  Edits layers;
  layers.set_u32 = {{"llama.block_count", 3}};
  ExpectOpenFails(Rewrite(llama_, layers, "layers.gguf"), {"blk.2."});
}

TEST_F(LoaderErrors, UnsupportedArchitecture) {
  Edits e;
  e.set_strings = {{"general.architecture", "mamba"}};
  const Status st = ExpectOpenFails(Rewrite(llama_, e, "mamba.gguf"), {"mamba"});
  EXPECT_EQ(st.code(), StatusCode::kUnsupported);
}

TEST_F(LoaderErrors, WrongTensorShape) {
  Edits e;
  e.reshape = {{"blk.1.attn_k.weight", {32, 64}}};  // should be [64, 32]
  const Status st = ExpectOpenFails(Rewrite(llama_, e, "shape.gguf"), {"blk.1.attn_k.weight"});
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  Edits g;
  g.reshape = {{"blk.0.attn_qkv.weight", {128, 96}}};
  ExpectOpenFails(Rewrite(gpt2_, g, "gpt2shape.gguf"), {"blk.0.attn_qkv.weight"});
}

TEST_F(LoaderErrors, MissingTensor) {
  for (const char* name : {"blk.0.ffn_up.weight", "token_embd.weight", "output_norm.weight",
                           "blk.1.attn_norm.weight"}) {
    Edits e;
    e.drop_tensors = {name};
    const Status st = ExpectOpenFails(Rewrite(llama_, e, "notensor.gguf"), {name});
    EXPECT_EQ(st.code(), StatusCode::kNotFound) << name;
  }
  for (const char* name : {"position_embd.weight", "blk.1.ffn_down.bias"}) {
    Edits e;
    e.drop_tensors = {name};
    ExpectOpenFails(Rewrite(gpt2_, e, "gpt2notensor.gguf"), {name});
  }
}

TEST_F(LoaderErrors, MissingFile) {
  const std::string path = Path("does-not-exist.gguf");
  const Status st = ExpectOpenFails(path, {});
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
}

TEST_F(LoaderErrors, GarbageFiles) {
  std::mt19937 rng(5);
  auto write = [&](const std::string& name, std::vector<uint8_t> bytes) {
    std::ofstream(Path(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return Path(name);
  };
  std::vector<uint8_t> noise(4096);
  for (uint8_t& b : noise) b = static_cast<uint8_t>(rng());
  std::vector<uint8_t> gguf_noise = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
  gguf_noise.insert(gguf_noise.end(), noise.begin(), noise.end());
  ExpectOpenFails(write("garbage.gguf", gguf_noise), {"GGUF"});
  ExpectOpenFails(write("noise.bin", noise), {});
  ExpectOpenFails(write("empty.gguf", {}), {});
  // A real model cut short.
  std::ifstream in(llama_, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  bytes.resize(bytes.size() / 2);
  ExpectOpenFails(write("half.gguf", bytes), {"truncated"});
}

}  // namespace
}  // namespace kvc
