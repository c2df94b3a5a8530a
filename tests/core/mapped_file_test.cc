// MappedFile: both modes (memory-mapped, loaded into huge-page memory) give the file's exact
// bytes; missing files and empty files behave the same in both.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/mapped_file.h"

namespace kvc {
namespace {

std::string TempPath(const char* name) {
  return ::testing::TempDir() + "/kvc_mapped_" + std::to_string(getpid()) + "_" + name;
}

TEST(MappedFile, BothModesReadTheSameBytes) {
  const std::string path = TempPath("data");
  std::vector<char> bytes((3 << 20) + 12345);  // over one huge page, not a multiple of it
  std::mt19937 rng(5);
  for (char& b : bytes) b = static_cast<char>(rng());
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  for (MappedFile::Mode mode : {MappedFile::Mode::kMap, MappedFile::Mode::kLoad}) {
    auto f = MappedFile::Open(path, mode);
    ASSERT_TRUE(f.ok()) << f.status().message();
    ASSERT_EQ(f->size(), bytes.size());
    EXPECT_EQ(0, std::memcmp(f->data(), bytes.data(), bytes.size()));
    MappedFile moved = std::move(f.value());  // ownership moves; one unmap
    EXPECT_EQ(moved.size(), bytes.size());
  }
  std::remove(path.c_str());
}

TEST(MappedFile, MissingAndEmptyFiles) {
  for (MappedFile::Mode mode : {MappedFile::Mode::kMap, MappedFile::Mode::kLoad}) {
    auto missing = MappedFile::Open(TempPath("missing"), mode);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find("file not found"), std::string::npos);
    const std::string empty = TempPath("empty");
    std::ofstream(empty).close();
    auto e = MappedFile::Open(empty, mode);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->size(), 0u);
    EXPECT_EQ(e->data(), nullptr);
    std::remove(empty.c_str());
  }
}

}  // namespace
}  // namespace kvc
