// GGUF v3 writer: metadata of any type and tensors, laid out as llama.cpp expects.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "formats/gguf.h"
#include "tensor/dtype.h"

namespace kvc {

class GgufWriter {
 public:
  // `alignment` (a power of two) is written as general.alignment when it is not the default 32;
  // a general.alignment set through the setters is ignored in favour of it.
  explicit GgufWriter(uint32_t alignment = 32);

  void SetU32(std::string_view key, uint32_t v);
  void SetI32(std::string_view key, int32_t v);
  void SetU64(std::string_view key, uint64_t v);
  void SetF32(std::string_view key, float v);
  void SetBool(std::string_view key, bool v);
  void SetString(std::string_view key, std::string_view v);
  void SetStringArray(std::string_view key, const std::vector<std::string>& v);
  void SetF32Array(std::string_view key, const std::vector<float>& v);
  void SetI32Array(std::string_view key, const std::vector<int32_t>& v);
  // Any value as the reader returns it (all scalar types, nested arrays): copies metadata
  // between files. Scalars are taken from the GgufValue field their type uses (u, i or f).
  void SetValue(std::string_view key, const GgufValue& v);
  // Low-level: one entry with an already encoded value (type + payload bytes).
  void SetRaw(std::string_view key, GgufType type, std::vector<uint8_t> payload);

  // dims in ggml order (dims[0] innermost). `data` must hold exactly the tensor's bytes.
  Status AddTensor(std::string_view name, DType type, std::vector<int64_t> dims,
                   std::vector<uint8_t> data);

  // Fills `dst` with exactly `nbytes` bytes of a tensor when the file is written.
  using TensorSource = std::function<Status(uint8_t* dst, size_t nbytes)>;
  // A tensor whose bytes are produced only while writing, one tensor at a time, so that a
  // multi-gigabyte model never has to be held in memory.
  Status AddStreamedTensor(std::string_view name, DType type, std::vector<int64_t> dims,
                           TensorSource source);

  size_t tensor_count() const { return tensors_.size(); }
  // Bytes the file will have.
  uint64_t FileSize() const;

  // Writes the file; a partially written file is removed on failure.
  Status Write(const std::string& path) const;
  // The whole file image in memory (streamed tensors are produced too); empty if a source fails.
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
    size_t nbytes = 0;
    std::vector<uint8_t> data;  // empty for streamed tensors
    TensorSource source;
  };
  void Set(std::string_view key, GgufType type, std::vector<uint8_t> payload);
  Status CheckTensor(std::string_view name, DType type, const std::vector<int64_t>& dims,
                     size_t* nbytes) const;
  std::vector<uint8_t> Header() const;  // everything before the first tensor's data
  size_t Padding(size_t n) const;

  uint32_t alignment_;
  std::vector<Entry> entries_;
  std::vector<Tensor> tensors_;
};

}  // namespace kvc
