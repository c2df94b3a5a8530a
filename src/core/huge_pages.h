// Large read/write buffers backed by transparent huge pages where the kernel grants them: the
// model's weights (--no-mmap) and the paged KV pool are streamed through once per token, and
// with 4 KiB pages that stream takes a TLB miss every 4 KiB.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvc {

// Zero-filled anonymous memory of at least `bytes`, rounded up to whole 2 MiB pages (*mapped
// receives the size to pass to FreeHugePages). Returns nullptr when the memory is not available.
uint8_t* AllocateHugePages(size_t bytes, size_t* mapped);
void FreeHugePages(void* p, size_t mapped);

}  // namespace kvc
