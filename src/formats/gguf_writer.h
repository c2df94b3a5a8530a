// GGUF v3 writer: metadata of any type and tensors, laid out as llama.cpp expects.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "formats/gguf.h"
#include "tensor/dtype.h"

namespace kvc {

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32) : alignment_(alignment) {}

  void SetU32(std::string_view key, uint32_t v);
  void SetI32(std::string_view key, int32_t v);
  void SetU64(std::string_view key, uint64_t v);
  void SetF32(std::string_view key, float v);
  void SetBool(std::string_view key, bool v);
  void SetString(std::string_view key, std::string_view v);
  void SetStringArray(std::string_view key, const std::vector<std::string>& v);
  void SetF32Array(std::string_view key, const std::vector<float>& v);
  void SetI32Array(std::string_view key, const std::vector<int32_t>& v);
  // Low-level: one entry with an already encoded value (type + payload bytes).
  void SetRaw(std::string_view key, GgufType type, std::vector<uint8_t> payload);

  // dims in ggml order (dims[0] innermost). `data` must hold exactly the tensor's bytes.
  Status AddTensor(std::string_view name, DType type, std::vector<int64_t> dims,
                   std::vector<uint8_t> data);

  // Writes the file; a partially written file is removed on failure.
  Status Write(const std::string& path) const;
  // The whole file image in memory.
  std::vector<uint8_t> Serialize() const;

 private:
  struct Entry {
    std::string key;
    GgufType type;
    std::vector<uint8_t> payload;
  };
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> dims;
    std::vector<uint8_t> data;
  };
  void Set(std::string_view key, GgufType type, std::vector<uint8_t> payload);
  std::vector<uint8_t> Header() const;  // everything before the first tensor's data
  size_t Padding(size_t n) const;

  uint32_t alignment_;
  std::vector<Entry> entries_;
  std::vector<Tensor> tensors_;
};

}  // namespace kvc
