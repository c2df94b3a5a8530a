// Locations of the shared test models; tests skip when ../shared is absent.
#pragma once

#include <filesystem>
#include <string>

namespace kvc::testing {

inline std::string SharedPath(const std::string& rel) { return std::string(KVC_SHARED_DIR) + "/" + rel; }
inline bool HaveShared(const std::string& rel) { return std::filesystem::exists(SharedPath(rel)); }

#define KVC_REQUIRE_SHARED(rel)                                                     \
  if (!::kvc::testing::HaveShared(rel))                                             \
  GTEST_SKIP() << "../shared not found (" << ::kvc::testing::SharedPath(rel)        \
               << "): shared-model tests skipped"

}  // namespace kvc::testing
