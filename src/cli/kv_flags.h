// The --kv-* cache options, shared by every command that runs a model.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "core/status.h"
#include "kvcache/kv_cache_factory.h"

namespace kvc::cli {

struct KVFlags {
  std::string layout = "paged";
  int32_t block = 16;
  std::string type = "f32";
  std::string type_k, type_v;  // override `type` per side
  int32_t group = 32;
  std::string grouping = "token";
  int32_t residual = -1;
  int32_t window = 0;

  // Adds the flags to `app`.
  void Add(CLI::App& app);
  // Parses and validates the values (spec-level checks happen in MakeKVSpec).
  Result<KVCacheOptions> ToOptions() const;
  // e.g. "paged q4/q4 g32 kivi r128"
  static std::string Describe(const KVCacheOptions& o);
};

}  // namespace kvc::cli
