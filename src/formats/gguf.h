// GGUF v2/v3 reader: memory-mapped, every metadata type, tensor table validated against the file.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "tensor/dtype.h"
#include "tensor/mat_view.h"

namespace kvc {

enum class GgufType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};

std::string_view GgufTypeName(GgufType t);

// One metadata value. Scalars are widened into one of u/i/f; strings and string arrays point into
// the mapping (valid while the GgufFile lives).
struct GgufValue {
  GgufType type = GgufType::kU8;
  uint64_t u = 0;    // unsigned integers and bool
  int64_t i = 0;     // signed integers
  double f = 0;      // floats
  std::string_view str;
  // Arrays: element type and items (nested arrays allowed by the spec).
  GgufType elem_type = GgufType::kU8;
  std::vector<GgufValue> items;

  bool IsInteger() const;
  bool IsFloat() const { return type == GgufType::kF32 || type == GgufType::kF64; }
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // ggml order: dims[0] is the innermost (row length)
  DType type = DType::kF32;
  uint64_t offset = 0;        // relative to the data section
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  int64_t elements() const;
  // 2-D view (rows = product of dims[1..]); 1-D tensors are one row.
  MatView AsMat() const;
};

class GgufFile {
 public:
  // Maps and validates `path`. Every malformed case returns kCorrupt naming the problem.
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path,
                                                 MappedFile::Mode mode = MappedFile::Mode::kMap);
  // Parses an in-memory image (fuzzing, tests). The bytes must outlive the GgufFile.
  static Result<std::unique_ptr<GgufFile>> Parse(const uint8_t* data, size_t size,
                                                 std::string label);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::string& label() const { return label_; }
  const std::map<std::string, GgufValue, std::less<>>& metadata() const { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  // Files opened with MappedFile::Mode::kLoad: runs `edit` with write access to the loaded
  // bytes (tensor data keeps its addresses). False, nothing run, for mapped files and images.
  bool EditLoadedBytes(const std::function<void(uint8_t* bytes)>& edit) { return map_.Edit(edit); }

  const GgufValue* Find(std::string_view key) const;
  const GgufTensorInfo* FindTensor(std::string_view name) const;

  // Typed accessors: NotFound when absent, Corrupt when present with the wrong type/range.
  Result<uint64_t> GetUint(std::string_view key) const;
  Result<double> GetFloat(std::string_view key) const;  // accepts integers too
  Result<std::string> GetString(std::string_view key) const;
  Result<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  Result<std::vector<float>> GetFloatArray(std::string_view key) const;
  Result<std::vector<int64_t>> GetIntArray(std::string_view key) const;

  uint64_t GetUintOr(std::string_view key, uint64_t fallback) const;
  double GetFloatOr(std::string_view key, double fallback) const;

 private:
  MappedFile map_;
  std::string label_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  std::map<std::string, GgufValue, std::less<>> kv_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

}  // namespace kvc
