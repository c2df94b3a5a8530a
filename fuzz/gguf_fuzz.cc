// libFuzzer target: GgufFile::Parse on arbitrary bytes. Beyond not crashing, a parsed file must
// keep every tensor inside the input, and writing it back must give an equal file.
#include <cstdint>
#include <cstring>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"

namespace {

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

// Reads every field of a value (ASan flags strings that point outside the input).
uint64_t Touch(const kvc::GgufValue& v) {
  uint64_t h = v.u ^ static_cast<uint64_t>(v.i) ^ static_cast<uint64_t>(v.f != 0);
  for (char ch : v.str) h = h * 31 + static_cast<unsigned char>(ch);
  for (const kvc::GgufValue& item : v.items) {
    FUZZ_CHECK(item.type == v.elem_type);
    h += Touch(item);
  }
  return h;
}

// Same metadata and tensors (alignment aside, which the writer controls).
void CheckEqual(const kvc::GgufFile& a, const kvc::GgufFile& b) {
  for (const auto& [key, v] : a.metadata()) {
    if (key == "general.alignment") continue;
    const kvc::GgufValue* w = b.Find(key);
    FUZZ_CHECK(w != nullptr && w->type == v.type && Touch(*w) == Touch(v));
  }
  FUZZ_CHECK(a.tensors().size() == b.tensors().size());
  for (size_t k = 0; k < a.tensors().size(); ++k) {
    const kvc::GgufTensorInfo& x = a.tensors()[k];
    const kvc::GgufTensorInfo& y = b.tensors()[k];
    FUZZ_CHECK(x.name == y.name && x.dims == y.dims && x.type == y.type && x.nbytes == y.nbytes);
    FUZZ_CHECK(std::memcmp(x.data, y.data, x.nbytes) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = kvc::GgufFile::Parse(data, size, "fuzz");
  if (!r.ok()) {
    FUZZ_CHECK(!r.status().message().empty());
    return 0;
  }
  const kvc::GgufFile& f = **r;
  volatile uint64_t sink = 0;
  for (const auto& [key, v] : f.metadata()) {
    sink = sink + Touch(v);
    // The typed accessors must not crash on any type.
    sink = sink + f.GetUintOr(key, 0) + static_cast<uint64_t>(f.GetFloatOr(key, 0) != 0);
    auto s = f.GetString(key);
    auto sa = f.GetStringArray(key);
    auto fa = f.GetFloatArray(key);
    auto ia = f.GetIntArray(key);
    sink = sink + s.ok() + sa.ok() + fa.ok() + ia.ok();
  }
  for (const kvc::GgufTensorInfo& t : f.tensors()) {
    FUZZ_CHECK(t.data >= data && t.nbytes <= size && t.data + t.nbytes <= data + size);
    FUZZ_CHECK(f.FindTensor(t.name) == &t);
    const kvc::MatView m = t.AsMat();
    // In 128 bits: a size computed with a silent 64-bit wrap would still compare equal.
    FUZZ_CHECK(m.rows > 0 && m.cols > 0 &&
               static_cast<unsigned __int128>(m.row_bytes()) * static_cast<uint64_t>(m.rows) ==
                   t.nbytes);
    unsigned __int128 elems = 1;
    for (int64_t d : t.dims) elems *= static_cast<uint64_t>(d);
    FUZZ_CHECK(elems == static_cast<uint64_t>(t.elements()));
    uint64_t h = 0;
    for (size_t i = 0; i < t.nbytes; ++i) h += t.data[i];
    sink = sink + h;
  }
  // Writer round trip.
  kvc::GgufWriter w(f.alignment());
  for (const auto& [key, v] : f.metadata()) w.SetValue(key, v);
  for (const kvc::GgufTensorInfo& t : f.tensors()) {
    FUZZ_CHECK(w.AddTensor(t.name, t.type, t.dims,
                           std::vector<uint8_t>(t.data, t.data + t.nbytes)).ok());
  }
  const std::vector<uint8_t> bytes = w.Serialize();
  FUZZ_CHECK(bytes.size() == w.FileSize());
  auto again = kvc::GgufFile::Parse(bytes.data(), bytes.size(), "rewritten");
  FUZZ_CHECK(again.ok());
  CheckEqual(f, **again);
  CheckEqual(**again, f);
  return 0;
}
