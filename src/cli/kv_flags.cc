#include "cli/kv_flags.h"

#include "kvcache/kv_format.h"

namespace kvc::cli {

void KVFlags::Add(CLI::App& app) {
  app.add_option("--kv-layout", layout, "KV cache layout: paged, contiguous, growable");
  app.add_option("--kv-block", block, "Tokens per block of the paged layout");
  app.add_option("--kv-type", type, "KV element type for K and V: f32, f16, bf16, q8, q4, q2");
  app.add_option("--kv-type-k", type_k, "Key type (overrides --kv-type)");
  app.add_option("--kv-type-v", type_v, "Value type (overrides --kv-type)");
  app.add_option("--kv-group", group, "Quantization group size");
  app.add_option("--kv-grouping", grouping, "Low-bit grouping: token (along head_dim) or kivi (keys per channel)");
  app.add_option("--kv-residual", residual, "Most recent tokens kept in f32 (default 128 for q4/q2)");
  app.add_option("--kv-window", window, "Sliding window: attend to (and keep) the last N tokens");
  app.add_option("--kv-sinks", sinks, "With --kv-window: also keep the first S tokens (attention sinks); "
                 "positions stay within the cache so generation can run past the context");
  app.add_flag("--context-shift", context_shift, "When the context is full, drop the older half "
               "after the first tokens (--kv-sinks, default 1) and continue");
}

Result<KVCacheOptions> KVFlags::ToOptions() const {
  KVCacheOptions o;
  KVC_ASSIGN_OR_RETURN(o.layout, ParseKVLayout(layout));
  KVC_ASSIGN_OR_RETURN(o.type_k, ParseKVType(type_k.empty() ? type : type_k));
  KVC_ASSIGN_OR_RETURN(o.type_v, ParseKVType(type_v.empty() ? type : type_v));
  KVC_ASSIGN_OR_RETURN(o.grouping, ParseKVGrouping(grouping));
  if (block <= 0) return InvalidArgument("--kv-block must be positive, got " + std::to_string(block));
  o.block_size = block;
  o.group = group;
  o.residual = residual;
  // With sinks the window is the shift policy's; the cache keeps every token it is given.
  o.window = sinks > 0 ? 0 : window;
  return o;
}

Result<ShiftPolicy> KVFlags::Policy(int32_t ctx) const {
  if (sinks < 0 || window < 0) return InvalidArgument("--kv-sinks and --kv-window must be >= 0");
  if (sinks > 0 && context_shift) return InvalidArgument("use either --kv-sinks or --context-shift");
  if (sinks > 0) {
    if (window <= 0) return InvalidArgument("--kv-sinks needs --kv-window N (the recent tokens kept)");
    return ShiftPolicy::Sinks(sinks, window);
  }
  if (context_shift) return ShiftPolicy::ContextShift(1, ctx);
  return ShiftPolicy{};
}

std::string KVFlags::Describe(const KVCacheOptions& o) {
  std::string s = std::string(KVLayoutName(o.layout)) + " " + KVTypeName(o.type_k);
  if (o.type_v != o.type_k) s += "/" + std::string(KVTypeName(o.type_v));
  if (IsQuantized(o.type_k) || IsQuantized(o.type_v)) {
    s += " g" + std::to_string(o.group);
    if (o.grouping == KVGrouping::kKivi) s += " kivi";
    s += " r" + std::to_string(o.residual >= 0 ? o.residual : DefaultResidual(o.type_k, o.type_v, o.grouping));
  }
  if (o.window > 0) s += " window " + std::to_string(o.window);
  return s;
}

}  // namespace kvc::cli
