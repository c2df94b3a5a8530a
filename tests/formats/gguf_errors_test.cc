// Malformed GGUF input: every case must come back as a clear error, never a crash or a huge
// allocation.
#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "formats/raw_gguf.h"

namespace kvc {
namespace {

using testing::ParseExact;
using testing::RawGguf;

constexpr uint32_t kF32 = 0, kQ8_0 = 8;

// Parses `bytes` and expects an error of `code` whose message contains `needle`.
void ExpectError(const std::vector<uint8_t>& bytes, StatusCode code, const std::string& needle) {
  std::vector<uint8_t> keep;
  auto r = ParseExact(bytes, bytes.size(), &keep);
  ASSERT_FALSE(r.ok()) << "parsed, expected: " << needle;
  EXPECT_EQ(r.status().code(), code) << r.status().message();
  EXPECT_NE(r.status().message().find(needle), std::string::npos)
      << "message: " << r.status().message() << "\nexpected to contain: " << needle;
  EXPECT_EQ(r.status().message().rfind("test.gguf", 0), 0u) << "names the file";
}

// A valid file: one f32 tensor of `elems` elements after `kv` u32 entries.
RawGguf OneTensor(uint64_t offset = 0, uint32_t type = kF32, std::vector<uint64_t> dims = {8}) {
  RawGguf g;
  g.Header(3, 1, 1).Key("general.architecture", GgufType::kString).Str("llama");
  g.TensorInfo("t", dims, type, offset).PadTo(32).Zeros(32 + offset);
  return g;
}

TEST(GgufErrors, ValidBaseline) {
  std::vector<uint8_t> keep;
  EXPECT_TRUE(ParseExact(OneTensor().bytes, OneTensor().bytes.size(), &keep).ok());
}

TEST(GgufErrors, BadMagicAndTinyFiles) {
  ExpectError({}, StatusCode::kCorrupt, "too small");
  ExpectError({'G', 'G', 'U'}, StatusCode::kCorrupt, "too small");
  RawGguf g = OneTensor();
  g.bytes[0] = 'X';
  ExpectError(g.bytes, StatusCode::kCorrupt, "bad magic");
  ExpectError(RawGguf().U32(0x46554747).bytes, StatusCode::kCorrupt, "truncated header");
}

TEST(GgufErrors, UnknownVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    RawGguf g;
    g.Header(v, 0, 0);
    ExpectError(g.bytes, StatusCode::kUnsupported, "GGUF version " + std::to_string(v));
  }
  RawGguf be;
  be.Header(0x03000000u, 0, 0);
  ExpectError(be.bytes, StatusCode::kUnsupported, "big-endian");
  RawGguf v2;
  v2.Header(2, 0, 0);
  std::vector<uint8_t> keep;
  EXPECT_TRUE(ParseExact(v2.bytes, v2.bytes.size(), &keep).ok());
}

TEST(GgufErrors, EveryTruncationOfAValidFileFails) {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetU32("llama.block_count", 2);
  w.SetF32("f", 1.5f);
  w.SetBool("b", true);
  w.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "a", "bc"});
  w.SetF32Array("scores", {0, -1, -2});
  GgufValue nested;
  nested.type = GgufType::kArray;
  nested.elem_type = GgufType::kArray;
  nested.items.resize(2);
  for (GgufValue& inner : nested.items) {
    inner.type = GgufType::kArray;
    inner.elem_type = GgufType::kU16;
    inner.items.resize(2);
    for (GgufValue& x : inner.items) x.type = GgufType::kU16;
  }
  w.SetValue("nested", nested);
  ASSERT_TRUE(w.AddTensor("a", DType::kF32, {8}, std::vector<uint8_t>(32, 1)).ok());
  ASSERT_TRUE(w.AddTensor("b", DType::kQ8_0, {32}, std::vector<uint8_t>(34, 2)).ok());
  // The last tensor fills whole alignment units, so the file has no trailing padding.
  ASSERT_TRUE(w.AddTensor("c", DType::kF16, {16, 2}, std::vector<uint8_t>(64, 3)).ok());
  const std::vector<uint8_t> bytes = w.Serialize();
  std::vector<uint8_t> keep;
  ASSERT_TRUE(ParseExact(bytes, bytes.size(), &keep).ok());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = ParseExact(bytes, n, &keep);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes parsed";
    EXPECT_NE(r.status().code(), StatusCode::kOk);
    EXPECT_FALSE(r.status().message().empty());
  }
}

TEST(GgufErrors, TensorDataPastTheEnd) {
  RawGguf g = OneTensor();
  g.bytes.resize(g.bytes.size() - 4);
  ExpectError(g.bytes, StatusCode::kCorrupt, "tensor 't': data (offset 0, 32 bytes) runs past the end");
  RawGguf far;
  far.Header(3, 1, 0).TensorInfo("t", {8}, kF32, 1ull << 40).PadTo(32).Zeros(32);
  ExpectError(far.bytes, StatusCode::kCorrupt, "runs past the end");
  RawGguf wrap;  // offset + size would wrap around 2^64
  wrap.Header(3, 1, 0).TensorInfo("t", {8}, kF32, 0xffffffffffffffe0ull).PadTo(32).Zeros(32);
  ExpectError(wrap.bytes, StatusCode::kCorrupt, "runs past the end");
}

TEST(GgufErrors, UnknownTensorTypeIsNamed) {
  ExpectError(OneTensor(0, 12, {256}).bytes, StatusCode::kUnsupported, "type 12 (Q4_K)");
  ExpectError(OneTensor(0, 3, {32}).bytes, StatusCode::kUnsupported, "(Q4_1)");
  ExpectError(OneTensor(0, 999, {32}).bytes, StatusCode::kUnsupported, "999 (unknown)");
}

TEST(GgufErrors, BadShapes) {
  RawGguf zero_dims;
  zero_dims.Header(3, 1, 0).TensorInfo("t", {}, kF32, 0).PadTo(32).Zeros(32);
  ExpectError(zero_dims.bytes, StatusCode::kCorrupt, "tensor 't': 0 dimensions");
  ExpectError(OneTensor(0, kF32, {1, 1, 1, 1, 1}).bytes, StatusCode::kCorrupt, "5 dimensions");
  ExpectError(OneTensor(0, kF32, {8, 0}).bytes, StatusCode::kCorrupt, "dimension 1 is 0");
  ExpectError(OneTensor(0, kF32, {1ull << 41}).bytes, StatusCode::kCorrupt, "dimension 0 is");
  ExpectError(OneTensor(0, kF32, {1ull << 40, 1ull << 40}).bytes, StatusCode::kCorrupt,
              "element count overflows");
  // 2^62 f32 elements do not overflow the element count but their 2^64 bytes would wrap to 0.
  ExpectError(OneTensor(0, kF32, {1ull << 31, 1ull << 31}).bytes, StatusCode::kCorrupt,
              "more bytes than the whole file");
  ExpectError(OneTensor(0, kQ8_0, {16}).bytes, StatusCode::kCorrupt, "not a multiple of the Q8_0 block size 32");
}

TEST(GgufErrors, Duplicates) {
  RawGguf keys;
  keys.Header(3, 0, 2).Key("k", GgufType::kU32).U32(1).Key("k", GgufType::kU32).U32(2);
  ExpectError(keys.bytes, StatusCode::kCorrupt, "duplicate metadata key 'k'");
  RawGguf names;
  names.Header(3, 2, 0).TensorInfo("w", {8}, kF32, 0).TensorInfo("w", {8}, kF32, 32);
  names.PadTo(32).Zeros(64);
  ExpectError(names.bytes, StatusCode::kCorrupt, "duplicate tensor name 'w'");
}

TEST(GgufErrors, HugeLengthsDoNotAllocate) {
  RawGguf key;
  key.Header(3, 0, 1).U64(1ull << 62);
  ExpectError(key.bytes, StatusCode::kCorrupt, "truncated key");
  RawGguf str;
  str.Header(3, 0, 1).Key("s", GgufType::kString).U64(0xffffffffffffffffull);
  ExpectError(str.bytes, StatusCode::kCorrupt, "metadata 's': truncated or oversized string");
  for (uint64_t n : {1ull << 61, 0xffffffffffffffffull, 1000000ull}) {
    for (GgufType et : {GgufType::kU8, GgufType::kU64, GgufType::kString, GgufType::kArray}) {
      RawGguf arr;
      arr.Header(3, 0, 1).Key("a", GgufType::kArray).U32(static_cast<uint32_t>(et)).U64(n).Zeros(64);
      ExpectError(arr.bytes, StatusCode::kCorrupt, "metadata 'a': array");
    }
  }
  RawGguf tname;
  tname.Header(3, 1, 0).U64(1ull << 50);
  ExpectError(tname.bytes, StatusCode::kCorrupt, "tensor 0: truncated name");
  RawGguf counts;
  counts.Header(3, 1ull << 60, 1ull << 60);
  ExpectError(counts.bytes, StatusCode::kCorrupt, "count exceeds the file size");
}

TEST(GgufErrors, ArrayElementBudget) {
  // 5 M one-byte elements: 5 MB on disk but ~400 MB as GgufValues, so refused.
  RawGguf g;
  g.Header(3, 0, 1).Key("big", GgufType::kArray).U32(static_cast<uint32_t>(GgufType::kU8));
  g.U64(5ull << 20).Zeros(5ull << 20);
  ExpectError(g.bytes, StatusCode::kCorrupt, "exceeds the limit");
  // The budget is for the whole file: the second of two 3 M arrays is refused.
  RawGguf two;
  two.Header(3, 0, 2);
  for (const char* key : {"a", "b"}) {
    two.Key(key, GgufType::kArray).U32(static_cast<uint32_t>(GgufType::kU8));
    two.U64(3ull << 20).Zeros(3ull << 20);
  }
  ExpectError(two.bytes, StatusCode::kCorrupt, "metadata 'b': array of 3145728 elements exceeds");
}

TEST(GgufErrors, MisalignedOffset) {
  RawGguf g;
  g.Header(3, 2, 0).TensorInfo("a", {8}, kF32, 0).TensorInfo("b", {8}, kF32, 36);
  g.PadTo(32).Zeros(128);
  ExpectError(g.bytes, StatusCode::kCorrupt, "tensor 'b': data offset is not aligned");
}

TEST(GgufErrors, BadAlignmentValues) {
  auto with_alignment = [](auto put) {
    RawGguf g;
    g.Header(3, 0, 1);
    put(g);
    return g.bytes;
  };
  for (uint32_t a : {0u, 3u, 48u, 1u << 21}) {
    ExpectError(with_alignment([a](RawGguf& g) { g.Key("general.alignment", GgufType::kU32).U32(a); }),
                StatusCode::kCorrupt, "general.alignment must be a power of two");
  }
  ExpectError(with_alignment([](RawGguf& g) { g.Key("general.alignment", GgufType::kString).Str("32"); }),
              StatusCode::kCorrupt, "general.alignment");
  // Any integer type is accepted for a valid value.
  std::vector<uint8_t> keep;
  auto ok = with_alignment([](RawGguf& g) { g.Key("general.alignment", GgufType::kI32).I32(64); });
  auto r = ParseExact(ok, ok.size(), &keep);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)->alignment(), 64u);
}

TEST(GgufErrors, BadValues) {
  RawGguf b;
  b.Header(3, 0, 1).Key("flag", GgufType::kBool).U8(2);
  ExpectError(b.bytes, StatusCode::kCorrupt, "metadata 'flag': bool value 2 is not 0 or 1");
  RawGguf ba;
  ba.Header(3, 0, 1).Key("flags", GgufType::kArray).U32(7).U64(2).U8(1).U8(9);
  ExpectError(ba.bytes, StatusCode::kCorrupt, "array element 1: bool value 9");
  RawGguf t;
  t.Header(3, 0, 1).Key("x", static_cast<GgufType>(13)).U32(0);
  ExpectError(t.bytes, StatusCode::kCorrupt, "metadata 'x': unknown value type 13");
  RawGguf et;
  et.Header(3, 0, 1).Key("x", GgufType::kArray).U32(99).U64(0);
  ExpectError(et.bytes, StatusCode::kCorrupt, "unknown array element type 99");
  RawGguf deep;
  deep.Header(3, 0, 1).Key("d", GgufType::kArray);
  for (int k = 0; k < 6; ++k) deep.U32(static_cast<uint32_t>(GgufType::kArray)).U64(1);
  deep.Zeros(16);
  ExpectError(deep.bytes, StatusCode::kCorrupt, "nested too deeply");
  RawGguf ttrunc;
  ttrunc.Header(3, 0, 1).Key("x", GgufType::kU64).U32(0);
  ExpectError(ttrunc.bytes, StatusCode::kCorrupt, "metadata 'x': truncated");
}

TEST(GgufErrors, OpenReportsMissingFiles) {
  auto r = GgufFile::Open("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/dir/model.gguf"), std::string::npos);
  auto d = GgufFile::Open("/tmp");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("/tmp"), std::string::npos);
}

}  // namespace
}  // namespace kvc
