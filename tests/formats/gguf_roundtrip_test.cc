// GgufWriter -> GgufFile round trips: every metadata type, every tensor type, alignment.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "quant/quantize.h"

namespace kvc {
namespace {

GgufValue Scalar(GgufType t, uint64_t u, int64_t i, double f) {
  GgufValue v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

GgufValue Str(std::string_view s) {
  GgufValue v;
  v.type = GgufType::kString;
  v.str = s;
  return v;
}

GgufValue Array(GgufType elem, std::vector<GgufValue> items) {
  GgufValue v;
  v.type = GgufType::kArray;
  v.elem_type = elem;
  v.items = std::move(items);
  return v;
}

// The GgufFile points into `bytes`: keep them alive while it is used.
std::unique_ptr<GgufFile> ParseOk(const std::vector<uint8_t>& bytes) {
  auto r = GgufFile::Parse(bytes.data(), bytes.size(), "mem.gguf");
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(GgufRoundTrip, EveryScalarType) {
  GgufWriter w;
  w.SetValue("u8", Scalar(GgufType::kU8, 255, 0, 0));
  w.SetValue("i8", Scalar(GgufType::kI8, 0, -128, 0));
  w.SetValue("u16", Scalar(GgufType::kU16, 65535, 0, 0));
  w.SetValue("i16", Scalar(GgufType::kI16, 0, -32768, 0));
  w.SetU32("u32", 4000000000u);
  w.SetI32("i32", -2000000000);
  w.SetU64("u64", 18000000000000000000ull);
  w.SetValue("i64", Scalar(GgufType::kI64, 0, -9000000000000000000ll, 0));
  w.SetF32("f32", 0.1f);
  w.SetValue("f64", Scalar(GgufType::kF64, 0, 0, 1e300));
  w.SetBool("yes", true);
  w.SetBool("no", false);
  w.SetString("str", "héllo ▁world");
  w.SetString("empty", "");
  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->metadata().size(), 14u);
  EXPECT_EQ(f->Find("u8")->type, GgufType::kU8);
  EXPECT_EQ(f->GetUint("u8").value(), 255u);
  EXPECT_EQ(f->Find("i8")->i, -128);
  EXPECT_EQ(f->GetUint("u16").value(), 65535u);
  EXPECT_EQ(f->Find("i16")->i, -32768);
  EXPECT_EQ(f->GetUint("u32").value(), 4000000000u);
  EXPECT_EQ(f->Find("i32")->i, -2000000000);
  EXPECT_EQ(f->GetUint("u64").value(), 18000000000000000000ull);
  EXPECT_EQ(f->GetFloat("u64").value(), 18000000000000000000.0);
  EXPECT_EQ(f->Find("i64")->i, -9000000000000000000ll);
  EXPECT_EQ(f->GetFloat("f32").value(), static_cast<double>(0.1f));
  EXPECT_EQ(f->Find("f64")->type, GgufType::kF64);
  EXPECT_EQ(f->GetFloat("f64").value(), 1e300);
  EXPECT_EQ(f->Find("yes")->u, 1u);
  EXPECT_EQ(f->Find("no")->u, 0u);
  EXPECT_EQ(f->Find("no")->type, GgufType::kBool);
  EXPECT_EQ(f->GetString("str").value(), "héllo ▁world");
  EXPECT_EQ(f->GetString("empty").value(), "");
  EXPECT_EQ(f->GetFloat("i32").value(), -2000000000.0);  // integers widen to float
}

TEST(GgufRoundTrip, Arrays) {
  GgufWriter w;
  w.SetStringArray("strs", {"a", "", "▁the", std::string(1000, 'x')});
  w.SetF32Array("floats", {1.5f, -2.25f, 0.0f});
  w.SetI32Array("ints", {-1, 0, 7});
  w.SetI32Array("none", {});
  w.SetValue("u8s", Array(GgufType::kU8, {Scalar(GgufType::kU8, 1, 1, 0),
                                          Scalar(GgufType::kU8, 200, 200, 0)}));
  w.SetValue("f64s", Array(GgufType::kF64, {Scalar(GgufType::kF64, 0, 0, -0.5)}));
  w.SetValue("bools", Array(GgufType::kBool, {Scalar(GgufType::kBool, 1, 0, 0),
                                              Scalar(GgufType::kBool, 0, 0, 0)}));
  // Nested: [[1, 2], [], [3]] and [["x"], ["y", "z"]].
  auto i16 = [](int64_t x) { return Scalar(GgufType::kI16, 0, x, 0); };
  w.SetValue("nested", Array(GgufType::kArray, {Array(GgufType::kI16, {i16(1), i16(2)}),
                                                Array(GgufType::kI16, {}),
                                                Array(GgufType::kI16, {i16(3)})}));
  w.SetValue("nested_str", Array(GgufType::kArray, {Array(GgufType::kString, {Str("x")}),
                                                    Array(GgufType::kString, {Str("y"), Str("z")})}));
  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);
  ASSERT_TRUE(f);
  auto strs = f->GetStringArray("strs");
  ASSERT_TRUE(strs.ok());
  ASSERT_EQ(strs->size(), 4u);
  EXPECT_EQ((*strs)[0], "a");
  EXPECT_EQ((*strs)[1], "");
  EXPECT_EQ((*strs)[2], "▁the");
  EXPECT_EQ((*strs)[3].size(), 1000u);
  EXPECT_EQ(f->GetFloatArray("floats").value(), (std::vector<float>{1.5f, -2.25f, 0.0f}));
  EXPECT_EQ(f->GetIntArray("ints").value(), (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_TRUE(f->GetIntArray("none").value().empty());
  EXPECT_EQ(f->GetIntArray("u8s").value(), (std::vector<int64_t>{1, 200}));
  EXPECT_EQ(f->GetFloatArray("f64s").value(), (std::vector<float>{-0.5f}));
  const GgufValue* bools = f->Find("bools");
  ASSERT_EQ(bools->items.size(), 2u);
  EXPECT_EQ(bools->elem_type, GgufType::kBool);
  EXPECT_EQ(bools->items[0].u, 1u);
  const GgufValue* nested = f->Find("nested");
  ASSERT_EQ(nested->elem_type, GgufType::kArray);
  ASSERT_EQ(nested->items.size(), 3u);
  EXPECT_EQ(nested->items[0].items.size(), 2u);
  EXPECT_EQ(nested->items[0].items[1].i, 2);
  EXPECT_TRUE(nested->items[1].items.empty());
  EXPECT_EQ(nested->items[2].items[0].i, 3);
  const GgufValue* ns = f->Find("nested_str");
  ASSERT_EQ(ns->items.size(), 2u);
  EXPECT_EQ(ns->items[1].elem_type, GgufType::kString);
  EXPECT_EQ(ns->items[1].items[1].str, "z");
  // Copying every value through SetValue is lossless: copying the copy gives the same bytes.
  GgufWriter copy;
  for (const auto& [key, value] : f->metadata()) copy.SetValue(key, value);
  const std::vector<uint8_t> copied = copy.Serialize();
  auto g = ParseOk(copied);
  ASSERT_TRUE(g);
  GgufWriter copy2;
  for (const auto& [key, value] : g->metadata()) copy2.SetValue(key, value);
  EXPECT_EQ(copy2.Serialize(), copied);
  EXPECT_EQ(g->GetStringArray("strs").value(), strs.value());
  EXPECT_EQ(g->Find("nested")->items[2].items[0].i, 3);
}

TEST(GgufRoundTrip, TypedAccessorsReportMissingAndWrongType) {
  GgufWriter w;
  w.SetString("s", "x");
  w.SetI32("neg", -3);
  w.SetF32Array("fa", {1});
  w.SetStringArray("sa", {"a"});
  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->GetUint("absent").status().code(), StatusCode::kNotFound);
  EXPECT_NE(f->GetUint("absent").status().message().find("'absent'"), std::string::npos);
  EXPECT_EQ(f->GetUint("s").status().code(), StatusCode::kCorrupt);
  EXPECT_NE(f->GetUint("s").status().message().find("'s'"), std::string::npos);
  EXPECT_EQ(f->GetUint("neg").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(f->GetString("neg").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(f->GetFloat("s").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(f->GetStringArray("fa").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(f->GetIntArray("fa").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(f->GetFloatArray("sa").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(f->GetUintOr("absent", 9), 9u);
  EXPECT_EQ(f->GetFloatOr("s", 2.5), 2.5);
}

// Random tensor bytes of each type (quantized via the reference quantizer, so valid blocks).
std::vector<uint8_t> RandomTensor(DType t, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> x(n);
  for (float& v : x) v = nd(rng);
  std::vector<uint8_t> out(RowBytes(t, n));
  QuantizeRow(t, x.data(), out.data(), n);
  return out;
}

struct TensorCase {
  std::string name;
  DType type;
  std::vector<int64_t> dims;
};

void CheckTensorsRoundTrip(uint32_t alignment) {
  SCOPED_TRACE("alignment " + std::to_string(alignment));
  const std::vector<TensorCase> cases = {
      {"f32_1d", DType::kF32, {7}},          {"f16_2d", DType::kF16, {5, 3}},
      {"bf16_3d", DType::kBF16, {3, 2, 2}},   {"q8_0_2d", DType::kQ8_0, {64, 3}},
      {"q4_0_4d", DType::kQ4_0, {32, 1, 2, 2}}, {"f32_one", DType::kF32, {1}},
      {"q8_0_1d", DType::kQ8_0, {96}},
  };
  GgufWriter w(alignment);
  w.SetString("general.architecture", "test");
  w.SetU32("general.alignment", 4);  // ignored: the constructor's alignment wins
  std::vector<std::vector<uint8_t>> datas;
  uint32_t seed = 1;
  for (const TensorCase& c : cases) {
    int64_t n = 1;
    for (int64_t d : c.dims) n *= d;
    datas.push_back(RandomTensor(c.type, n, seed++));
    ASSERT_TRUE(w.AddTensor(c.name, c.type, c.dims, datas.back()).ok());
  }
  const std::vector<uint8_t> bytes = w.Serialize();
  EXPECT_EQ(bytes.size(), w.FileSize());
  auto f = ParseOk(bytes);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->alignment(), alignment);
  if (alignment == 32) {
    EXPECT_EQ(f->Find("general.alignment"), nullptr);
  } else {
    EXPECT_EQ(f->GetUint("general.alignment").value(), alignment);
  }
  ASSERT_EQ(f->tensors().size(), cases.size());
  for (size_t k = 0; k < cases.size(); ++k) {
    const GgufTensorInfo& ti = f->tensors()[k];
    EXPECT_EQ(ti.name, cases[k].name);
    EXPECT_EQ(ti.type, cases[k].type);
    EXPECT_EQ(ti.dims, cases[k].dims);
    EXPECT_EQ(ti.nbytes, datas[k].size());
    EXPECT_EQ((ti.data - bytes.data()) % alignment, 0) << ti.name;
    EXPECT_EQ(ti.offset % alignment, 0u);
    EXPECT_EQ(std::vector<uint8_t>(ti.data, ti.data + ti.nbytes), datas[k]) << ti.name;
    EXPECT_EQ(f->FindTensor(cases[k].name), &ti);
    const MatView m = ti.AsMat();
    EXPECT_EQ(m.cols, cases[k].dims[0]);
    EXPECT_EQ(m.rows * m.cols, ti.elements());
    EXPECT_EQ(m.row_bytes() * m.rows, ti.nbytes);
  }
  EXPECT_EQ(f->FindTensor("absent"), nullptr);
}

TEST(GgufRoundTrip, EveryTensorTypeDefaultAlignment) { CheckTensorsRoundTrip(32); }
TEST(GgufRoundTrip, NonDefaultAlignments) {
  for (uint32_t a : {1u, 8u, 64u, 1024u, 4096u}) CheckTensorsRoundTrip(a);
}

TEST(GgufRoundTrip, DequantizedValuesSurvive) {
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.3f * i);
  std::vector<uint8_t> q(RowBytes(DType::kQ8_0, 64));
  QuantizeRow(DType::kQ8_0, x.data(), q.data(), 64);
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("w", DType::kQ8_0, {64}, q).ok());
  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);
  ASSERT_TRUE(f);
  std::vector<float> y(64);
  DequantizeRow(DType::kQ8_0, f->tensors()[0].data, y.data(), 64);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1.0f / 127);
}

class GgufFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kvc_gguf_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const char* name) const { return (dir_ / name).string(); }
  std::filesystem::path dir_;
};

TEST_F(GgufFileTest, StreamedTensorsWriteTheSameFile) {
  const std::vector<uint8_t> a = RandomTensor(DType::kF16, 48, 3);
  const std::vector<uint8_t> b = RandomTensor(DType::kQ4_0, 64, 4);
  GgufWriter mem(64), streamed(64);
  for (GgufWriter* w : {&mem, &streamed}) w->SetString("general.name", "s");
  ASSERT_TRUE(mem.AddTensor("a", DType::kF16, {16, 3}, a).ok());
  ASSERT_TRUE(mem.AddTensor("b", DType::kQ4_0, {64}, b).ok());
  auto source = [](const std::vector<uint8_t>& v) {
    return [&v](uint8_t* dst, size_t n) {
      if (n != v.size()) return Status(StatusCode::kInternal, "size");
      std::memcpy(dst, v.data(), n);
      return Status::Ok();
    };
  };
  ASSERT_TRUE(streamed.AddStreamedTensor("a", DType::kF16, {16, 3}, source(a)).ok());
  ASSERT_TRUE(streamed.AddStreamedTensor("b", DType::kQ4_0, {64}, source(b)).ok());
  EXPECT_EQ(mem.Serialize(), streamed.Serialize());
  ASSERT_TRUE(streamed.Write(Path("s.gguf")).ok());
  auto f = GgufFile::Open(Path("s.gguf"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ((*f)->label(), Path("s.gguf"));
  EXPECT_EQ(std::filesystem::file_size(Path("s.gguf")), mem.FileSize());
  const GgufTensorInfo* tb = (*f)->FindTensor("b");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(std::vector<uint8_t>(tb->data, tb->data + tb->nbytes), b);
}

// Padding up to alignment - 1 bytes: once read past a 256-byte zero buffer.
TEST_F(GgufFileTest, WriteMatchesSerializeWithLargeAlignment) {
  for (uint32_t alignment : {32u, 512u, 4096u}) {
    GgufWriter w(alignment);
    w.SetString("general.name", "aligned");
    ASSERT_TRUE(w.AddTensor("a", DType::kF32, {3}, std::vector<uint8_t>(12, 0xab)).ok());
    ASSERT_TRUE(w.AddTensor("b", DType::kF16, {5}, std::vector<uint8_t>(10, 0xcd)).ok());
    ASSERT_TRUE(w.Write(Path("a.gguf")).ok());
    std::ifstream in(Path("a.gguf"), std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(bytes, w.Serialize()) << "alignment " << alignment;
    auto f = GgufFile::Open(Path("a.gguf"));
    ASSERT_TRUE(f.ok()) << f.status().message();
    EXPECT_EQ((*f)->FindTensor("b")->offset, alignment >= 32 ? alignment : 32);
  }
}

TEST_F(GgufFileTest, FailingSourceRemovesThePartialFile) {
  GgufWriter w;
  ASSERT_TRUE(w.AddTensor("ok", DType::kF32, {8}, std::vector<uint8_t>(32)).ok());
  ASSERT_TRUE(w.AddStreamedTensor("bad", DType::kF32, {8}, [](uint8_t*, size_t) {
                 return IoError("source failed");
               }).ok());
  Status st = w.Write(Path("bad.gguf"));
  EXPECT_EQ(st.message(), "source failed");
  EXPECT_FALSE(std::filesystem::exists(Path("bad.gguf")));
  EXPECT_TRUE(w.Serialize().empty());
  EXPECT_EQ(w.Write(Path("no/such/dir.gguf")).code(), StatusCode::kIo);
}

TEST(GgufWriterTest, RejectsBadTensors) {
  GgufWriter w;
  EXPECT_EQ(w.AddTensor("a", DType::kF32, {}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("a", DType::kF32, {1, 2, 3, 4, 5}, std::vector<uint8_t>(480)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("a", DType::kF32, {0}, {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("a", DType::kF32, {4}, std::vector<uint8_t>(15)).code(),
            StatusCode::kInvalidArgument);
  Status q = w.AddTensor("q", DType::kQ8_0, {16}, std::vector<uint8_t>(17));
  EXPECT_NE(q.message().find("block size 32"), std::string::npos) << q.message();
  ASSERT_TRUE(w.AddTensor("a", DType::kF32, {4}, std::vector<uint8_t>(16)).ok());
  Status dup = w.AddTensor("a", DType::kF32, {4}, std::vector<uint8_t>(16));
  EXPECT_NE(dup.message().find("duplicate tensor name 'a'"), std::string::npos);
  EXPECT_EQ(w.AddStreamedTensor("s", DType::kF32, {4}, nullptr).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.tensor_count(), 1u);
}

TEST(GgufWriterTest, LaterSetReplacesAKey) {
  GgufWriter w;
  w.SetU32("k", 1);
  w.SetString("k", "two");
  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->metadata().size(), 1u);
  EXPECT_EQ(f->GetString("k").value(), "two");
}

TEST(GgufRoundTrip, EmptyFileWithoutTensors) {
  GgufWriter w;
  const std::vector<uint8_t> bytes = w.Serialize();
  auto f = ParseOk(bytes);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->metadata().empty());
  EXPECT_TRUE(f->tensors().empty());
}

}  // namespace
}  // namespace kvc
