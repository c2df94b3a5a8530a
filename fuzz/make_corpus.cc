// Writes the small seed corpus for the fuzzers: make_fuzz_corpus <fuzz/corpus dir>.
// Seeds are generated (never copied from real models) and kept to a few KB each.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/llama2c.h"
#include "quant/quantize.h"

namespace {

using kvc::DType;
using kvc::GgufType;
using kvc::GgufValue;
using kvc::GgufWriter;

bool WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

std::vector<uint8_t> Tensor(DType t, int64_t n, float scale) {
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = scale * static_cast<float>((i * 7919) % 17 - 8);
  std::vector<uint8_t> out(kvc::RowBytes(t, n));
  kvc::QuantizeRow(t, x.data(), out.data(), n);
  return out;
}

GgufValue Scalar(GgufType t, uint64_t u, int64_t i, double f) {
  GgufValue v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

std::vector<uint8_t> AllValueTypes() {
  GgufWriter w;
  w.SetValue("u8", Scalar(GgufType::kU8, 7, 7, 0));
  w.SetValue("i8", Scalar(GgufType::kI8, 0, -7, 0));
  w.SetValue("u16", Scalar(GgufType::kU16, 700, 700, 0));
  w.SetValue("i16", Scalar(GgufType::kI16, 0, -700, 0));
  w.SetU32("u32", 70000);
  w.SetI32("i32", -70000);
  w.SetU64("u64", 1ull << 40);
  w.SetValue("i64", Scalar(GgufType::kI64, 0, -(1ll << 40), 0));
  w.SetF32("f32", 0.5f);
  w.SetValue("f64", Scalar(GgufType::kF64, 0, 0, 0.25));
  w.SetBool("bool", true);
  w.SetString("str", "llama");
  w.SetStringArray("strs", {"<unk>", "<s>", "</s>", "\xe2\x96\x81the"});
  w.SetF32Array("f32s", {0, -1, -2});
  w.SetI32Array("i32s", {1, 3, 6});
  GgufValue nested;
  nested.type = GgufType::kArray;
  nested.elem_type = GgufType::kArray;
  nested.items.resize(2);
  for (GgufValue& inner : nested.items) {
    inner.type = GgufType::kArray;
    inner.elem_type = GgufType::kU8;
    inner.items = {Scalar(GgufType::kU8, 1, 1, 0)};
  }
  w.SetValue("nested", nested);
  return w.Serialize();
}

std::vector<uint8_t> AllTensorTypes(uint32_t alignment) {
  GgufWriter w(alignment);
  w.SetString("general.architecture", "llama");
  (void)w.AddTensor("f32", DType::kF32, {4, 2}, Tensor(DType::kF32, 8, 0.5f));
  (void)w.AddTensor("f16", DType::kF16, {3}, Tensor(DType::kF16, 3, 0.5f));
  (void)w.AddTensor("bf16", DType::kBF16, {2, 1, 2}, Tensor(DType::kBF16, 4, 0.5f));
  (void)w.AddTensor("q8_0", DType::kQ8_0, {32, 2}, Tensor(DType::kQ8_0, 64, 0.1f));
  (void)w.AddTensor("q4_0", DType::kQ4_0, {32, 1, 1, 1}, Tensor(DType::kQ4_0, 32, 0.1f));
  return w.Serialize();
}

// A miniature llama model file: the metadata and tensor names of a real one.
std::vector<uint8_t> TinyLlama() {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("llama.block_count", 1);
  w.SetU32("llama.embedding_length", 4);
  w.SetU32("llama.attention.head_count", 2);
  w.SetF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>"});
  w.SetF32Array("tokenizer.ggml.scores", {0, 0, 0});
  w.SetI32Array("tokenizer.ggml.token_type", {2, 3, 3});
  for (const char* name : {"token_embd.weight", "blk.0.attn_q.weight", "output.weight"}) {
    (void)w.AddTensor(name, DType::kF32, {4, 3}, Tensor(DType::kF32, 12, 0.25f));
  }
  (void)w.AddTensor("output_norm.weight", DType::kF32, {4}, Tensor(DType::kF32, 4, 1));
  return w.Serialize();
}

// Regression seed: a 2^31 x 2^31 f32 tensor, whose byte size (2^64) once wrapped to 0 and
// passed the bounds check.
std::vector<uint8_t> SizeOverflow() {
  std::vector<uint8_t> b;
  auto put = [&b](auto v) {
    const size_t n = b.size();
    b.resize(n + sizeof(v));
    std::memcpy(b.data() + n, &v, sizeof(v));
  };
  put(uint32_t{0x46554747});
  put(uint32_t{3});
  put(uint64_t{1});  // tensors
  put(uint64_t{0});  // metadata
  put(uint64_t{1});
  b.push_back('t');
  put(uint32_t{2});
  put(uint64_t{1} << 31);
  put(uint64_t{1} << 31);
  put(uint32_t{0});  // F32
  put(uint64_t{0});  // offset
  b.resize(96 + 32, 0);  // header padded to 96, then 32 bytes of data
  return b;
}

std::vector<uint8_t> Checkpoint(std::vector<int32_t> header, bool shared) {
  const int64_t dim = header[0], hid = header[1], L = header[2], heads = header[3],
                kv = header[4], vocab = header[5] < 0 ? -header[5] : header[5], seq = header[6];
  const int64_t head = dim / heads, kv_dim = kv * head;
  const int64_t n = vocab * dim + 2 * L * dim + 2 * L * dim * dim + 2 * L * kv_dim * dim +
                    3 * L * hid * dim + dim + seq * head + (shared ? 0 : vocab * dim);
  std::vector<uint8_t> out(28);
  std::memcpy(out.data(), header.data(), 28);
  const std::vector<uint8_t> floats = Tensor(DType::kF32, n, 0.01f);
  out.insert(out.end(), floats.begin(), floats.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fuzz_corpus <fuzz/corpus dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  GgufWriter empty;
  GgufWriter v_only;
  v_only.SetString("general.name", "x");
  struct Seed {
    std::string name;
    std::vector<uint8_t> bytes;
  };
  std::vector<Seed> seeds = {
      {"gguf/empty.gguf", empty.Serialize()},
      {"gguf/one_key.gguf", v_only.Serialize()},
      {"gguf/value_types.gguf", AllValueTypes()},
      {"gguf/tensor_types.gguf", AllTensorTypes(32)},
      {"gguf/tensor_types_align64.gguf", AllTensorTypes(64)},
      {"gguf/tiny_llama.gguf", TinyLlama()},
      {"gguf/tensor_types_align1024.gguf", AllTensorTypes(1024)},
      {"gguf/size_overflow.gguf", SizeOverflow()},
      {"llama2c/shared.bin", Checkpoint({8, 16, 1, 2, 1, 5, 3}, true)},
      {"llama2c/unshared.bin", Checkpoint({8, 8, 2, 4, 2, -6, 2}, false)},
      {"llama2c/gguf.bin", v_only.Serialize()},
  };
  // GGUF v2 differs only in the version field.
  seeds.push_back({"gguf/v2.gguf", AllValueTypes()});
  seeds.back().bytes[4] = 2;
  for (const Seed& s : seeds) {
    if (!WriteFile(dir + "/" + s.name, s.bytes)) {
      std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), s.name.c_str());
      return 1;
    }
    // Report what each seed parses as, so a seed meant to be valid is seen to be.
    const kvc::Status st =
        s.name.rfind("gguf/", 0) == 0
            ? kvc::GgufFile::Parse(s.bytes.data(), s.bytes.size(), s.name).status()
            : kvc::ParseLlama2c(s.bytes.data(), s.bytes.size(), s.name).status();
    std::printf("%-34s %6zu bytes  %s\n", s.name.c_str(), s.bytes.size(),
                st.ok() ? "valid" : st.message().c_str());
  }
  return 0;
}
