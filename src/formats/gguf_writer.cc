#include "formats/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace kvc {
namespace {

template <typename T>
void Put(std::vector<uint8_t>& out, T v) {
  const size_t n = out.size();
  out.resize(n + sizeof(T));
  std::memcpy(out.data() + n, &v, sizeof(T));
}

void PutStr(std::vector<uint8_t>& out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

template <typename T>
std::vector<uint8_t> Bytes(T v) {
  std::vector<uint8_t> out;
  Put(out, v);
  return out;
}

// Encodes the payload of `v` (without its type tag).
void PutValue(std::vector<uint8_t>& out, GgufType type, const GgufValue& v) {
  switch (type) {
    case GgufType::kU8: Put<uint8_t>(out, static_cast<uint8_t>(v.u)); return;
    case GgufType::kI8: Put<int8_t>(out, static_cast<int8_t>(v.i)); return;
    case GgufType::kU16: Put<uint16_t>(out, static_cast<uint16_t>(v.u)); return;
    case GgufType::kI16: Put<int16_t>(out, static_cast<int16_t>(v.i)); return;
    case GgufType::kU32: Put<uint32_t>(out, static_cast<uint32_t>(v.u)); return;
    case GgufType::kI32: Put<int32_t>(out, static_cast<int32_t>(v.i)); return;
    case GgufType::kU64: Put<uint64_t>(out, v.u); return;
    case GgufType::kI64: Put<int64_t>(out, v.i); return;
    case GgufType::kF32: Put<float>(out, static_cast<float>(v.f)); return;
    case GgufType::kF64: Put<double>(out, v.f); return;
    case GgufType::kBool: Put<uint8_t>(out, v.u ? 1 : 0); return;
    case GgufType::kString: PutStr(out, v.str); return;
    case GgufType::kArray:
      Put<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      Put<uint64_t>(out, v.items.size());
      for (const GgufValue& item : v.items) PutValue(out, v.elem_type, item);
      return;
  }
}

}  // namespace

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  KVC_CHECK(alignment > 0 && (alignment & (alignment - 1)) == 0);  // a caller bug, not input
}

void GgufWriter::Set(std::string_view key, GgufType type, std::vector<uint8_t> payload) {
  for (Entry& e : entries_) {
    if (e.key == key) {
      e.type = type;
      e.payload = std::move(payload);
      return;
    }
  }
  entries_.push_back({std::string(key), type, std::move(payload)});
}

void GgufWriter::SetRaw(std::string_view key, GgufType type, std::vector<uint8_t> payload) {
  Set(key, type, std::move(payload));
}
void GgufWriter::SetValue(std::string_view key, const GgufValue& v) {
  std::vector<uint8_t> p;
  PutValue(p, v.type, v);
  Set(key, v.type, std::move(p));
}
void GgufWriter::SetU32(std::string_view k, uint32_t v) { Set(k, GgufType::kU32, Bytes(v)); }
void GgufWriter::SetI32(std::string_view k, int32_t v) { Set(k, GgufType::kI32, Bytes(v)); }
void GgufWriter::SetU64(std::string_view k, uint64_t v) { Set(k, GgufType::kU64, Bytes(v)); }
void GgufWriter::SetF32(std::string_view k, float v) { Set(k, GgufType::kF32, Bytes(v)); }
void GgufWriter::SetBool(std::string_view k, bool v) {
  Set(k, GgufType::kBool, Bytes<uint8_t>(v ? 1 : 0));
}
void GgufWriter::SetString(std::string_view k, std::string_view v) {
  std::vector<uint8_t> p;
  PutStr(p, v);
  Set(k, GgufType::kString, std::move(p));
}
void GgufWriter::SetStringArray(std::string_view k, const std::vector<std::string>& v) {
  std::vector<uint8_t> p;
  Put<uint32_t>(p, static_cast<uint32_t>(GgufType::kString));
  Put<uint64_t>(p, v.size());
  for (const std::string& s : v) PutStr(p, s);
  Set(k, GgufType::kArray, std::move(p));
}
void GgufWriter::SetF32Array(std::string_view k, const std::vector<float>& v) {
  std::vector<uint8_t> p;
  Put<uint32_t>(p, static_cast<uint32_t>(GgufType::kF32));
  Put<uint64_t>(p, v.size());
  for (float x : v) Put(p, x);
  Set(k, GgufType::kArray, std::move(p));
}
void GgufWriter::SetI32Array(std::string_view k, const std::vector<int32_t>& v) {
  std::vector<uint8_t> p;
  Put<uint32_t>(p, static_cast<uint32_t>(GgufType::kI32));
  Put<uint64_t>(p, v.size());
  for (int32_t x : v) Put(p, x);
  Set(k, GgufType::kArray, std::move(p));
}

Status GgufWriter::CheckTensor(std::string_view name, DType type,
                               const std::vector<int64_t>& dims, size_t* nbytes) const {
  const std::string where = "tensor '" + std::string(name) + "': ";
  if (dims.empty() || dims.size() > 4) return InvalidArgument(where + "needs 1 to 4 dimensions");
  uint64_t elems = 1;
  for (int64_t d : dims) {
    if (d <= 0) return InvalidArgument(where + "has a non-positive dimension");
    if (__builtin_mul_overflow(elems, static_cast<uint64_t>(d), &elems) || elems > (1ull << 48)) {
      return InvalidArgument(where + "is too large");
    }
  }
  if (!DTypeFromGgml(static_cast<uint32_t>(type))) {
    return InvalidArgument(where + std::string(DTypeName(type)) +
                           " is a run-time layout, not a GGUF type");
  }
  const DTypeTraits tr = TraitsOf(type);
  if (dims[0] % tr.block_elems != 0) {
    return InvalidArgument(where + "row length " + std::to_string(dims[0]) +
                           " is not a multiple of the " + std::string(tr.name) + " block size " +
                           std::to_string(tr.block_elems));
  }
  for (const Tensor& t : tensors_) {
    if (t.name == name) return InvalidArgument("duplicate tensor name '" + std::string(name) + "'");
  }
  *nbytes = static_cast<size_t>(elems / tr.block_elems) * tr.block_bytes;
  return Status::Ok();
}

Status GgufWriter::AddTensor(std::string_view name, DType type, std::vector<int64_t> dims,
                             std::vector<uint8_t> data) {
  size_t nbytes = 0;
  KVC_RETURN_IF_ERROR(CheckTensor(name, type, dims, &nbytes));
  if (data.size() != nbytes) {
    return InvalidArgument("tensor '" + std::string(name) + "': " + std::to_string(data.size()) +
                           " bytes of data but its shape needs " + std::to_string(nbytes));
  }
  tensors_.push_back({std::string(name), type, std::move(dims), nbytes, std::move(data), {}});
  return Status::Ok();
}

Status GgufWriter::AddStreamedTensor(std::string_view name, DType type, std::vector<int64_t> dims,
                                     TensorSource source) {
  size_t nbytes = 0;
  KVC_RETURN_IF_ERROR(CheckTensor(name, type, dims, &nbytes));
  if (!source) return InvalidArgument("tensor '" + std::string(name) + "': no data source");
  tensors_.push_back({std::string(name), type, std::move(dims), nbytes, {}, std::move(source)});
  return Status::Ok();
}

std::vector<uint8_t> GgufWriter::Header() const {
  std::vector<uint8_t> out;
  Put<uint32_t>(out, 0x46554747);
  Put<uint32_t>(out, 3);
  Put<uint64_t>(out, tensors_.size());
  // general.alignment always comes from the constructor so the layout and the key agree.
  const bool has_align = alignment_ != 32;
  size_t n_entries = has_align ? 1 : 0;
  for (const Entry& e : entries_) n_entries += e.key != "general.alignment";
  Put<uint64_t>(out, n_entries);
  if (has_align) {
    PutStr(out, "general.alignment");
    Put<uint32_t>(out, static_cast<uint32_t>(GgufType::kU32));
    Put<uint32_t>(out, alignment_);
  }
  for (const Entry& e : entries_) {
    if (e.key == "general.alignment") continue;
    PutStr(out, e.key);
    Put<uint32_t>(out, static_cast<uint32_t>(e.type));
    out.insert(out.end(), e.payload.begin(), e.payload.end());
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutStr(out, t.name);
    Put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Put<uint64_t>(out, static_cast<uint64_t>(d));
    Put<uint32_t>(out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(out, offset);
    offset += t.nbytes + Padding(t.nbytes);
  }
  out.resize(out.size() + Padding(out.size()), 0);
  return out;
}

size_t GgufWriter::Padding(size_t n) const { return (alignment_ - n % alignment_) % alignment_; }

uint64_t GgufWriter::FileSize() const {
  uint64_t n = Header().size();
  for (const Tensor& t : tensors_) n += t.nbytes + Padding(t.nbytes);
  return n;
}

std::vector<uint8_t> GgufWriter::Serialize() const {
  std::vector<uint8_t> out = Header();
  for (const Tensor& t : tensors_) {
    const size_t at = out.size();
    out.resize(at + t.nbytes + Padding(t.nbytes), 0);
    if (t.source) {
      if (!t.source(out.data() + at, t.nbytes).ok()) return {};
    } else {
      std::memcpy(out.data() + at, t.data.data(), t.nbytes);
    }
  }
  return out;
}

Status GgufWriter::Write(const std::string& path) const {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return IoError("cannot create " + path + ": " + std::strerror(errno));
  // Streamed tensor by tensor: the header is small, the weights may be gigabytes.
  const std::vector<uint8_t> header = Header();
  Status st;
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  const std::vector<uint8_t> zeros(alignment_, 0);  // padding is at most alignment - 1 bytes
  std::vector<uint8_t> buf;
  for (const Tensor& t : tensors_) {
    if (!ok || !st.ok()) break;
    const uint8_t* bytes = t.data.data();
    if (t.source) {
      buf.resize(t.nbytes);
      st = t.source(buf.data(), t.nbytes);
      if (!st.ok()) break;
      bytes = buf.data();
    }
    ok = std::fwrite(bytes, 1, t.nbytes, f) == t.nbytes;
    const size_t pad = Padding(t.nbytes);
    ok = ok && std::fwrite(zeros.data(), 1, pad, f) == pad;
  }
  const bool closed = std::fclose(f) == 0;
  if (!st.ok() || !ok || !closed) {
    std::remove(path.c_str());
    return st.ok() ? IoError("failed writing " + path + " (disk full?)") : st;
  }
  return Status::Ok();
}

}  // namespace kvc
