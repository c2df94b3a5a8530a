#include "core/huge_pages.h"

#include <sys/mman.h>

namespace kvc {

uint8_t* AllocateHugePages(size_t bytes, size_t* mapped) {
  constexpr size_t kHuge = size_t{2} << 20;
  *mapped = (bytes + kHuge - 1) / kHuge * kHuge;
  // Over-reserve one huge page so the start can be aligned (the kernel only backs aligned 2 MiB
  // ranges with huge pages), then give back the unaligned ends.
  void* raw = mmap(nullptr, *mapped + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    *mapped = 0;
    return nullptr;
  }
  auto* start = static_cast<uint8_t*>(raw);
  auto* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(start) + kHuge - 1) & ~(kHuge - 1));
  if (aligned > start) munmap(start, static_cast<size_t>(aligned - start));
  const size_t tail = static_cast<size_t>(start + *mapped + kHuge - (aligned + *mapped));
  if (tail > 0) munmap(aligned + *mapped, tail);
#if defined(MADV_HUGEPAGE)
  madvise(aligned, *mapped, MADV_HUGEPAGE);
#endif
  return aligned;
}

void FreeHugePages(void* p, size_t mapped) {
  if (p != nullptr && mapped > 0) munmap(p, mapped);
}

}  // namespace kvc
