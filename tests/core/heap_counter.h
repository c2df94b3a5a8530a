// Counts a test binary's heap allocations by replacing the global operator new (the array forms
// call it). A replacement is defined once per program: include this in one file of a binary.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

// GCC pairs the malloc inside the replaced operator new with the free inside operator delete
// where it inlines both and warns of a mismatch that is not one.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace kvc::testing {
inline std::atomic<long> g_heap_allocations{0};
// Calls of operator new so far in this binary.
inline long HeapAllocations() { return g_heap_allocations.load(std::memory_order_relaxed); }
}  // namespace kvc::testing

void* operator new(size_t n) {
  kvc::testing::g_heap_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
