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

}  // namespace

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

Status GgufWriter::AddTensor(std::string_view name, DType type, std::vector<int64_t> dims,
                             std::vector<uint8_t> data) {
  if (dims.empty() || dims.size() > 4) return InvalidArgument("tensor needs 1 to 4 dimensions");
  int64_t elems = 1;
  for (int64_t d : dims) {
    if (d <= 0) return InvalidArgument("tensor '" + std::string(name) + "' has a non-positive dimension");
    elems *= d;
  }
  const DTypeTraits tr = TraitsOf(type);
  if (dims[0] % tr.block_elems != 0) {
    return InvalidArgument("tensor '" + std::string(name) + "': row length not a multiple of the block size");
  }
  if (data.size() != static_cast<size_t>(elems / tr.block_elems) * tr.block_bytes) {
    return InvalidArgument("tensor '" + std::string(name) + "': data size does not match its shape");
  }
  tensors_.push_back({std::string(name), type, std::move(dims), std::move(data)});
  return Status::Ok();
}

std::vector<uint8_t> GgufWriter::Header() const {
  std::vector<uint8_t> out;
  Put<uint32_t>(out, 0x46554747);
  Put<uint32_t>(out, 3);
  Put<uint64_t>(out, tensors_.size());
  const bool has_align = alignment_ != 32;
  Put<uint64_t>(out, entries_.size() + (has_align ? 1 : 0));
  if (has_align) {
    PutStr(out, "general.alignment");
    Put<uint32_t>(out, static_cast<uint32_t>(GgufType::kU32));
    Put<uint32_t>(out, alignment_);
  }
  for (const Entry& e : entries_) {
    PutStr(out, e.key);
    Put<uint32_t>(out, static_cast<uint32_t>(e.type));
    out.insert(out.end(), e.payload.begin(), e.payload.end());
  }
  auto align = [&](size_t x) { return (x + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutStr(out, t.name);
    Put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) Put<uint64_t>(out, static_cast<uint64_t>(d));
    Put<uint32_t>(out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(out, offset);
    offset = align(offset + t.data.size());
  }
  out.resize(align(out.size()), 0);
  return out;
}

size_t GgufWriter::Padding(size_t n) const { return (alignment_ - n % alignment_) % alignment_; }

std::vector<uint8_t> GgufWriter::Serialize() const {
  std::vector<uint8_t> out = Header();
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(out.size() + Padding(t.data.size()), 0);
  }
  return out;
}

Status GgufWriter::Write(const std::string& path) const {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return IoError("cannot create " + path + ": " + std::strerror(errno));
  // Streamed tensor by tensor: the header is small, the weights may be gigabytes.
  const std::vector<uint8_t> header = Header();
  bool ok = std::fwrite(header.data(), 1, header.size(), f) == header.size();
  static const uint8_t kZeros[256] = {};
  for (const Tensor& t : tensors_) {
    if (!ok) break;
    ok = std::fwrite(t.data.data(), 1, t.data.size(), f) == t.data.size();
    const size_t pad = Padding(t.data.size());
    ok = ok && std::fwrite(kZeros, 1, pad, f) == pad;
  }
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    std::remove(path.c_str());
    return IoError("failed writing " + path + " (disk full?)");
  }
  return Status::Ok();
}

}  // namespace kvc
