#include "formats/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace kvc {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr uint64_t kMaxStringLen = 1ull << 30;
constexpr int kMaxArrayDepth = 4;
constexpr uint32_t kMaxDims = 4;
// Each array element becomes a GgufValue (~80 bytes), so a file of N bytes of u8 arrays could
// otherwise ask for 80 N bytes. The largest real vocabularies (tokens, scores, types, merges)
// take under 1 M elements in all; this allows 4x that (~320 MB at most).
constexpr uint64_t kMaxArrayItems = 4ull << 20;

// Bounds-checked cursor over the mapped bytes.
class Cursor {
 public:
  Cursor(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t pos() const { return pos_; }
  bool Read(void* out, size_t k) {
    if (k > n_ - pos_) return false;
    std::memcpy(out, p_ + pos_, k);
    pos_ += k;
    return true;
  }
  template <typename T>
  bool Get(T* v) { return Read(v, sizeof(T)); }
  bool Str(std::string_view* s) {
    uint64_t len;
    if (!Get(&len) || len > kMaxStringLen || len > n_ - pos_) return false;
    *s = std::string_view(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return true;
  }
  bool Skip(uint64_t k) {
    if (k > n_ - pos_) return false;
    pos_ += k;
    return true;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

size_t ScalarSize(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    default: return 0;
  }
}

bool ValidType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kF64); }

// Reads one value of type `t` into `v`; returns an error string or empty on success.
// `items_left` is the remaining budget of array elements for the whole file.
std::string ReadValue(Cursor& c, GgufType t, GgufValue& v, int depth, uint64_t& items_left) {
  v.type = t;
  switch (t) {
    case GgufType::kU8: { uint8_t x; if (!c.Get(&x)) return "truncated"; v.u = x; v.i = x; return {}; }
    case GgufType::kI8: { int8_t x; if (!c.Get(&x)) return "truncated"; v.i = x; return {}; }
    case GgufType::kU16: { uint16_t x; if (!c.Get(&x)) return "truncated"; v.u = x; v.i = x; return {}; }
    case GgufType::kI16: { int16_t x; if (!c.Get(&x)) return "truncated"; v.i = x; return {}; }
    case GgufType::kU32: { uint32_t x; if (!c.Get(&x)) return "truncated"; v.u = x; v.i = x; return {}; }
    case GgufType::kI32: { int32_t x; if (!c.Get(&x)) return "truncated"; v.i = x; return {}; }
    case GgufType::kU64: { uint64_t x; if (!c.Get(&x)) return "truncated"; v.u = x; v.i = static_cast<int64_t>(x); return {}; }
    case GgufType::kI64: { int64_t x; if (!c.Get(&x)) return "truncated"; v.i = x; return {}; }
    case GgufType::kF32: { float x; if (!c.Get(&x)) return "truncated"; v.f = x; return {}; }
    case GgufType::kF64: { double x; if (!c.Get(&x)) return "truncated"; v.f = x; return {}; }
    case GgufType::kBool: {
      uint8_t x;
      if (!c.Get(&x)) return "truncated";
      if (x > 1) return "bool value " + std::to_string(x) + " is not 0 or 1";
      v.u = x;
      return {};
    }
    case GgufType::kString:
      if (!c.Str(&v.str)) return "truncated or oversized string";
      return {};
    case GgufType::kArray: {
      if (depth >= kMaxArrayDepth) return "arrays nested too deeply";
      uint32_t et;
      uint64_t n;
      if (!c.Get(&et) || !c.Get(&n)) return "truncated array header";
      if (!ValidType(et)) return "unknown array element type " + std::to_string(et);
      v.elem_type = static_cast<GgufType>(et);
      // Every element takes at least one byte, so a count beyond the bytes left is corrupt
      // (and must not drive a huge allocation).
      const size_t min_elem = v.elem_type == GgufType::kString ? 8
                              : v.elem_type == GgufType::kArray ? 12
                                                                : ScalarSize(v.elem_type);
      if (n > (std::numeric_limits<size_t>::max() / min_elem)) return "array length overflows";
      Cursor probe = c;
      if (!probe.Skip(n * min_elem)) return "array of " + std::to_string(n) + " elements runs past the end";
      if (n > items_left) {
        return "array of " + std::to_string(n) + " elements exceeds the limit of " +
               std::to_string(kMaxArrayItems) + " array elements per file";
      }
      items_left -= n;
      v.items.resize(n);
      for (uint64_t k = 0; k < n; ++k) {
        std::string err = ReadValue(c, v.elem_type, v.items[k], depth + 1, items_left);
        if (!err.empty()) return "array element " + std::to_string(k) + ": " + err;
      }
      return {};
    }
  }
  return "unknown value type " + std::to_string(static_cast<uint32_t>(t));
}

bool MulOverflow(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

std::string_view GgufTypeName(GgufType t) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",   "u16",   "i16", "u32",
                                                "i32", "f32",  "bool",  "string", "array",
                                                "u64", "i64",  "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < 13 ? kNames[i] : "unknown";
}

bool GgufValue::IsInteger() const {
  switch (type) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16:
    case GgufType::kU32: case GgufType::kI32: case GgufType::kU64: case GgufType::kI64:
      return true;
    default: return false;
  }
}

int64_t GgufTensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

MatView GgufTensorInfo::AsMat() const {
  MatView m;
  m.type = type;
  m.data = data;
  m.cols = dims.empty() ? 1 : dims[0];
  m.rows = dims.empty() ? 1 : elements() / dims[0];
  return m;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path, MappedFile::Mode mode) {
  KVC_ASSIGN_OR_RETURN(MappedFile map, MappedFile::Open(path, mode));
  KVC_ASSIGN_OR_RETURN(auto file, Parse(map.data(), map.size(), path));
  file->map_ = std::move(map);
  return file;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Parse(const uint8_t* data, size_t size,
                                                  std::string label) {
  auto bad = [&](const std::string& what) { return Corrupt(label + ": invalid GGUF: " + what); };
  auto file = std::make_unique<GgufFile>();
  file->label_ = label;
  Cursor c(data, size);
  uint32_t magic;
  if (!c.Get(&magic)) return bad("file is too small for a GGUF header (" + std::to_string(size) + " bytes)");
  if (magic != kMagic) return bad("bad magic (not a GGUF file)");
  if (!c.Get(&file->version_)) return bad("truncated header");
  if (file->version_ != 2 && file->version_ != 3) {
    const bool swapped = file->version_ == 0x02000000u || file->version_ == 0x03000000u;
    return Unsupported(label + ": unsupported GGUF version " + std::to_string(file->version_) +
                       (swapped ? " (a big-endian GGUF?)" : "") + " (supported: 2, 3)");
  }
  uint64_t n_tensors, n_kv;
  if (!c.Get(&n_tensors) || !c.Get(&n_kv)) return bad("truncated header");
  // Each tensor info takes >= 24 bytes and each kv >= 12: reject counts the file cannot hold.
  if (n_tensors > size / 24 || n_kv > size / 12) return bad("tensor or metadata count exceeds the file size");

  uint64_t items_left = kMaxArrayItems;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string_view key;
    if (!c.Str(&key)) return bad("metadata entry " + std::to_string(k) + ": truncated key");
    uint32_t t;
    if (!c.Get(&t)) return bad("metadata '" + std::string(key) + "': truncated type");
    if (!ValidType(t)) return bad("metadata '" + std::string(key) + "': unknown value type " + std::to_string(t));
    GgufValue v;
    std::string err = ReadValue(c, static_cast<GgufType>(t), v, 0, items_left);
    if (!err.empty()) return bad("metadata '" + std::string(key) + "': " + err);
    if (!file->kv_.emplace(std::string(key), std::move(v)).second) {
      return bad("duplicate metadata key '" + std::string(key) + "'");
    }
  }
  if (file->Find("general.alignment")) {
    auto a = file->GetUint("general.alignment");
    const uint64_t al = a.ok() ? a.value() : 0;
    if (al == 0 || al > (1u << 20) || (al & (al - 1)) != 0) {
      return bad("general.alignment must be a power of two up to 2^20");
    }
    file->alignment_ = static_cast<uint32_t>(al);
  }

  // Grown as entries parse, not sized from the header: a corrupt count in a multi-GB file would
  // otherwise allocate gigabytes before the first entry is read.
  file->tensors_.reserve(std::min<uint64_t>(n_tensors, 4096));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo& ti = file->tensors_.emplace_back();
    std::string_view name;
    if (!c.Str(&name)) return bad("tensor " + std::to_string(k) + ": truncated name");
    ti.name = std::string(name);
    const std::string where = "tensor '" + ti.name + "': ";
    uint32_t n_dims;
    if (!c.Get(&n_dims)) return bad(where + "truncated");
    if (n_dims == 0 || n_dims > kMaxDims) return bad(where + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    uint64_t elems = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim;
      if (!c.Get(&dim)) return bad(where + "truncated shape");
      if (dim == 0 || dim > (1ull << 40)) return bad(where + "dimension " + std::to_string(d) + " is " + std::to_string(dim));
      if (MulOverflow(elems, dim, &elems)) return bad(where + "element count overflows");
      ti.dims.push_back(static_cast<int64_t>(dim));
    }
    uint32_t type_id;
    if (!c.Get(&type_id) || !c.Get(&ti.offset)) return bad(where + "truncated");
    auto dt = DTypeFromGgml(type_id);
    if (!dt) {
      return Unsupported(label + ": " + where + "unsupported tensor type " + std::to_string(type_id) +
                         " (" + std::string(GgmlTypeName(type_id)) + "); supported: F32, F16, BF16, Q8_0, Q4_0");
    }
    ti.type = *dt;
    const DTypeTraits tr = TraitsOf(ti.type);
    if (ti.dims[0] % tr.block_elems != 0) {
      return bad(where + "row length " + std::to_string(ti.dims[0]) + " is not a multiple of the " +
                 std::string(tr.name) + " block size " + std::to_string(tr.block_elems));
    }
    // Checked: e.g. 2^62 F32 elements would wrap to 0 bytes and pass the bounds check below.
    uint64_t nbytes;
    if (MulOverflow(elems / tr.block_elems, tr.block_bytes, &nbytes) || nbytes > size) {
      return bad(where + "needs more bytes than the whole file has (" + std::to_string(elems) +
                 " elements)");
    }
    ti.nbytes = static_cast<size_t>(nbytes);
    if (ti.offset % file->alignment_ != 0) return bad(where + "data offset is not aligned");
    if (!file->tensor_index_.emplace(ti.name, k).second) return bad("duplicate tensor name '" + ti.name + "'");
  }
  const size_t data_start = (c.pos() + file->alignment_ - 1) / file->alignment_ * file->alignment_;
  for (GgufTensorInfo& ti : file->tensors_) {
    if (n_tensors == 0) break;
    if (data_start > size || ti.offset > size - data_start || ti.nbytes > size - data_start - ti.offset) {
      return bad("tensor '" + ti.name + "': data (offset " + std::to_string(ti.offset) + ", " +
                 std::to_string(ti.nbytes) + " bytes) runs past the end of the file (truncated?)");
    }
    ti.data = data + data_start + ti.offset;
  }
  return file;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Status Missing(const std::string& label, std::string_view key) {
  return NotFound(label + ": missing metadata '" + std::string(key) + "'");
}
Status WrongType(const std::string& label, std::string_view key, const GgufValue& v,
                 const char* want) {
  return Corrupt(label + ": metadata '" + std::string(key) + "' is " +
                 std::string(GgufTypeName(v.type)) + ", expected " + want);
}
}  // namespace

Result<uint64_t> GgufFile::GetUint(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(label_, key);
  if (!v->IsInteger()) return WrongType(label_, key, *v, "an integer");
  const bool is_signed = v->type == GgufType::kI8 || v->type == GgufType::kI16 ||
                         v->type == GgufType::kI32 || v->type == GgufType::kI64;
  if (is_signed && v->i < 0) return Corrupt(label_ + ": metadata '" + std::string(key) + "' is negative");
  return is_signed ? static_cast<uint64_t>(v->i) : v->u;
}

Result<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(label_, key);
  if (v->IsFloat()) return v->f;
  if (v->type == GgufType::kU64) return static_cast<double>(v->u);  // beyond int64 range
  if (v->IsInteger()) return static_cast<double>(v->i);
  return WrongType(label_, key, *v, "a number");
}

Result<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(label_, key);
  if (v->type != GgufType::kString) return WrongType(label_, key, *v, "a string");
  return std::string(v->str);
}

Result<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(label_, key);
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) {
    return WrongType(label_, key, *v, "an array of strings");
  }
  std::vector<std::string_view> out;
  out.reserve(v->items.size());
  for (const GgufValue& it : v->items) out.push_back(it.str);
  return out;
}

Result<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(label_, key);
  if (v->type != GgufType::kArray) return WrongType(label_, key, *v, "an array of numbers");
  std::vector<float> out;
  out.reserve(v->items.size());
  for (const GgufValue& it : v->items) {
    if (it.IsFloat()) out.push_back(static_cast<float>(it.f));
    else if (it.IsInteger()) out.push_back(static_cast<float>(it.i));
    else return WrongType(label_, key, *v, "an array of numbers");
  }
  return out;
}

Result<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(label_, key);
  if (v->type != GgufType::kArray) return WrongType(label_, key, *v, "an array of integers");
  std::vector<int64_t> out;
  out.reserve(v->items.size());
  for (const GgufValue& it : v->items) {
    if (!it.IsInteger()) return WrongType(label_, key, *v, "an array of integers");
    out.push_back(it.i);
  }
  return out;
}

uint64_t GgufFile::GetUintOr(std::string_view key, uint64_t fallback) const {
  auto r = GetUint(key);
  return r.ok() ? r.value() : fallback;
}

double GgufFile::GetFloatOr(std::string_view key, double fallback) const {
  auto r = GetFloat(key);
  return r.ok() ? r.value() : fallback;
}

}  // namespace kvc
