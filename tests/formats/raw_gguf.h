// Byte-level GGUF builder for tests: writes any field sequence, valid or not, so each malformed
// case can be built exactly (the GgufWriter refuses to write most of them).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

#include "formats/gguf.h"

namespace kvc::testing {

class RawGguf {
 public:
  template <typename T>
  RawGguf& Put(T v) {
    const size_t n = bytes.size();
    bytes.resize(n + sizeof(T));
    std::memcpy(bytes.data() + n, &v, sizeof(T));
    return *this;
  }
  RawGguf& U8(uint8_t v) { return Put(v); }
  RawGguf& U32(uint32_t v) { return Put(v); }
  RawGguf& I32(int32_t v) { return Put(v); }
  RawGguf& U64(uint64_t v) { return Put(v); }
  RawGguf& Str(std::string_view s) {
    U64(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  RawGguf& Header(uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    return U32(0x46554747).U32(version).U64(n_tensors).U64(n_kv);
  }
  // Key and type tag of a metadata entry; the caller appends the payload.
  RawGguf& Key(std::string_view key, GgufType t) { return Str(key).U32(static_cast<uint32_t>(t)); }
  RawGguf& TensorInfo(std::string_view name, const std::vector<uint64_t>& dims, uint32_t type,
                      uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) U64(d);
    return U32(type).U64(offset);
  }
  RawGguf& PadTo(size_t align) {
    bytes.resize((bytes.size() + align - 1) / align * align, 0);
    return *this;
  }
  RawGguf& Zeros(size_t n) {
    bytes.resize(bytes.size() + n, 0);
    return *this;
  }

  std::vector<uint8_t> bytes;
};

// Parses `bytes` from an exactly sized heap copy, so sanitizers catch any read past the end.
inline Result<std::unique_ptr<GgufFile>> ParseExact(const std::vector<uint8_t>& bytes,
                                                    size_t n, std::vector<uint8_t>* keep) {
  keep->assign(bytes.begin(), bytes.begin() + n);
  keep->shrink_to_fit();
  return GgufFile::Parse(keep->data(), keep->size(), "test.gguf");
}

}  // namespace kvc::testing
