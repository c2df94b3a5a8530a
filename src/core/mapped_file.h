// A whole file in memory, read-only: memory-mapped (weights are read in place from the page
// cache), or loaded into anonymous memory backed by transparent huge pages. Decode streams every
// weight byte once per token; with 4 KiB file pages that walk costs a TLB miss every 4 KiB, which
// 2 MiB pages avoid (the filesystem's page cache cannot map files with huge pages here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"

namespace kvc {

class MappedFile {
 public:
  MappedFile() = default;
  ~MappedFile();
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  enum class Mode { kMap, kLoad };
  // Maps (or loads) `path` read-only. Empty files map to size 0 with a null data pointer.
  static Result<MappedFile> Open(const std::string& path, Mode mode = Mode::kMap);

  const uint8_t* data() const { return data_; }
  // kLoad only: runs `edit` on the loaded copy with write access (e.g. to repack weights into
  // a kernel's layout), then makes it read-only again. False (nothing run) for mapped files.
  bool Edit(const std::function<void(uint8_t* bytes)>& edit);
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // bytes to unmap (kLoad rounds up to whole huge pages)
  Mode mode_ = Mode::kMap;
  std::string path_;
};

}  // namespace kvc
