#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/huge_pages.h"

namespace kvc {

MappedFile::~MappedFile() {
  if (data_ && mapped_) munmap(const_cast<uint8_t*>(data_), mapped_);
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)),
      mapped_(std::exchange(o.mapped_, 0)), mode_(o.mode_), path_(std::move(o.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_ && mapped_) munmap(const_cast<uint8_t*>(data_), mapped_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
    mode_ = o.mode_;
    path_ = std::move(o.path_);
  }
  return *this;
}

namespace {

// Huge-page memory holding the file's bytes, then made read-only. Returns MAP_FAILED with errno
// set on failure.
void* LoadIntoMemory(int fd, size_t size, size_t* mapped) {
  void* p = AllocateHugePages(size, mapped);
  if (p == nullptr) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  for (size_t off = 0; off < size;) {
    const ssize_t r = pread(fd, static_cast<uint8_t*>(p) + off, size - off, static_cast<off_t>(off));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      const int err = r == 0 ? EIO : errno;  // 0: the file shrank while being read
      FreeHugePages(p, *mapped);
      errno = err;
      return MAP_FAILED;
    }
    off += static_cast<size_t>(r);
  }
  mprotect(p, *mapped, PROT_READ);
  return p;
}

}  // namespace

bool MappedFile::Edit(const std::function<void(uint8_t* bytes)>& edit) {
  if (mode_ != Mode::kLoad || data_ == nullptr) return false;
  auto* p = const_cast<uint8_t*>(data_);
  if (mprotect(p, mapped_, PROT_READ | PROT_WRITE) != 0) return false;
  edit(p);
  mprotect(p, mapped_, PROT_READ);
  return true;
}

Result<MappedFile> MappedFile::Open(const std::string& path, Mode mode) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound("file not found: " + path);
    return IoError("cannot open " + path + ": " + std::strerror(err));
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return IoError("not a regular file: " + path);
  }
  MappedFile f;
  f.path_ = path;
  f.size_ = static_cast<size_t>(st.st_size);
  if (f.size_ > 0) {
    f.mapped_ = f.size_;
    void* p = mode == Mode::kLoad ? LoadIntoMemory(fd, f.size_, &f.mapped_)
                                  : mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      f.size_ = f.mapped_ = 0;
      return IoError(std::string(mode == Mode::kLoad ? "cannot load " : "cannot map ") + path + ": " +
                     std::strerror(err));
    }
    f.data_ = static_cast<const uint8_t*>(p);
    f.mode_ = mode;
  }
  ::close(fd);
  return f;
}

}  // namespace kvc
