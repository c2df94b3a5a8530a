// The --kv-* cache options, shared by every command that runs a model.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "core/status.h"
#include "kvcache/kv_cache_factory.h"
#include "kvcache/shift_policy.h"

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
  int32_t sinks = 0;
  bool context_shift = false;

  // Adds the flags to `app`.
  void Add(CLI::App& app);
  // Parses and validates the values (spec-level checks happen in MakeKVSpec).
  Result<KVCacheOptions> ToOptions() const;
  // The sinks / context-shift policy for a context of `ctx` tokens. With sinks the window is
  // the policy's (the cache itself keeps every token it is given).
  Result<ShiftPolicy> Policy(int32_t ctx) const;
  // e.g. "paged q4/q4 g32 kivi r128"
  static std::string Describe(const KVCacheOptions& o);
};

}  // namespace kvc::cli
