#include "kvcache/memory_plan.h"

#include <algorithm>
#include <limits>

namespace kvc {
namespace {

using u128 = unsigned __int128;

// Products of user-sized inputs: every step is checked, any overflow of 128 bits latches `bad`,
// and the final totals must fit in 64 bits.
struct Checked {
  bool bad = false;
  u128 Mul(u128 a, u128 b) {
    u128 r = 0;
    if (__builtin_mul_overflow(a, b, &r)) bad = true;
    return r;
  }
  u128 Add(u128 a, u128 b) {
    u128 r = 0;
    if (__builtin_add_overflow(a, b, &r)) bad = true;
    return r;
  }
  uint64_t To64(u128 v) {
    if (v > std::numeric_limits<uint64_t>::max()) bad = true;
    return static_cast<uint64_t>(v);
  }
};

u128 Gcd(u128 a, u128 b) {
  while (b != 0) {
    const u128 t = a % b;
    a = b;
    b = t;
  }
  return a;
}

std::string Str(int64_t v) { return std::to_string(v); }

// Bytes of `elems` elements stored as `t` with groups of `group` elements (kv_format.h's
// KVBytes, in 128-bit arithmetic): codes and group params separately.
void GroupBytes(KVType t, u128 elems, int64_t group, Checked* c, u128* code, u128* params) {
  if (!IsQuantized(t)) {
    *code = c->Mul(elems, KVTypeBits(t)) / 8;
    *params = 0;
    return;
  }
  const u128 groups = elems / static_cast<u128>(group);
  *code = c->Mul(groups, static_cast<u128>(group) * KVTypeBits(t) / 8);
  *params = c->Mul(groups, KVGroupParamBytes(t));
}

// Validates the group of one side and fills its static fields.
Status InitSide(const KVShape& s, const MemoryPlanOptions& o, KVType t, bool is_key,
                SidePlan* side) {
  side->type = t;
  if (!IsQuantized(t)) {
    side->bpe = {static_cast<uint64_t>(KVTypeBits(t) / 8), 1};
    return Status::Ok();
  }
  const char* name = is_key ? "K" : "V";
  side->groups_along_tokens = is_key && o.grouping == KVGrouping::kKivi;
  side->group = side->groups_along_tokens ? o.group : std::min(o.group, s.head_dim);
  const int64_t g = side->group;
  if (!side->groups_along_tokens && s.head_dim % g != 0) {
    return InvalidArgument(std::string(name) + " " + KVTypeName(t) + ": head_dim " +
                           Str(s.head_dim) + " is not a multiple of the group size " + Str(g));
  }
  if (g * KVTypeBits(t) % 8 != 0) {
    return InvalidArgument(std::string(name) + " " + KVTypeName(t) + ": a group of " + Str(g) +
                           " elements does not fill whole bytes (" + Str(KVTypeBits(t)) +
                           " bits each)");
  }
  side->bpe = {static_cast<uint64_t>(g * KVTypeBits(t) / 8 + KVGroupParamBytes(t)),
               static_cast<uint64_t>(g)};
  return Status::Ok();
}

// Slots of a side held in its storage type once `kept` tokens are kept; the newest sit in the f32
// ring of `ring` slots. KIVI keys leave the ring a whole group at a time, as soon as it would
// overflow, so their count rounds up to the group.
int64_t StorageTokens(const SidePlan& side, int64_t ring, int64_t kept) {
  if (ring == 0) return kept;
  const int64_t over = std::max<int64_t>(0, kept - ring);
  return side.groups_along_tokens ? (over + side.group - 1) / side.group * side.group : over;
}

// Sums the bytes of one side (over the batch) from its token counts.
void SideBytes(const KVShape& s, int64_t batch, Checked* c, SidePlan* side) {
  const u128 per_token_elems = c->Mul(c->Mul(s.n_layers, s.n_kv_heads), s.head_dim);
  const u128 elems = c->Mul(per_token_elems, batch);
  u128 code = 0, params = 0, pad_code = 0, pad_params = 0;
  GroupBytes(side->type, c->Mul(elems, side->stored_tokens), side->group, c, &code, &params);
  GroupBytes(side->type, c->Mul(elems, side->padding_tokens), side->group, c, &pad_code,
             &pad_params);
  const u128 residual_bytes = c->Mul(c->Mul(elems, side->residual_tokens), 4);
  side->code_bytes = c->To64(code);
  side->param_bytes = c->To64(params);
  side->residual_bytes = c->To64(residual_bytes);
  side->padding_bytes = c->To64(c->Add(pad_code, pad_params));
  side->total_bytes =
      c->To64(c->Add(c->Add(code, params), c->Add(residual_bytes, c->Add(pad_code, pad_params))));
  // One token in the storage type: layers x kv_heads x head_dim x num / den, reduced.
  u128 num = c->Mul(per_token_elems, side->bpe.num), den = side->bpe.den;
  const u128 g = Gcd(num, den);
  num /= g;
  den /= g;
  side->bytes_per_token = {c->To64(num), static_cast<uint64_t>(den)};
}

FormulaTerm Term(const std::string& what, const KVShape& s, int64_t batch, int64_t tokens,
                 BytesPerElement bpe, uint64_t bytes) {
  FormulaTerm t;
  t.what = what;
  t.sides = 1;
  t.batch = batch;
  t.tokens = tokens;
  t.layers = s.n_layers;
  t.kv_heads = s.n_kv_heads;
  t.head_dim = s.head_dim;
  t.bpe = bpe;
  t.bytes = bytes;
  return t;
}

std::string TypeLabel(const SidePlan& side) {
  std::string l = KVTypeName(side.type);
  if (side.groups_along_tokens) l += " (KIVI)";
  return l;
}

enum class TermKind { kStorage, kResidual, kPadding };

// The K and V terms of one kind, merged into one "K+V" term when they are the same, so the plain
// case reads as the textbook formula with its leading 2.
void AddTerms(const KVShape& s, int64_t batch, const SidePlan& k, const SidePlan& v, TermKind kind,
              const std::string& padding_label, std::vector<FormulaTerm>* out) {
  auto term = [&](const char* side_name, const SidePlan& p) {
    switch (kind) {
      case TermKind::kStorage:
        return Term(std::string(side_name) + " " + TypeLabel(p), s, batch, p.stored_tokens, p.bpe,
                    p.code_bytes + p.param_bytes);
      case TermKind::kResidual:
        return Term(std::string(side_name) + " f32 residual", s, batch, p.residual_tokens, {4, 1},
                    p.residual_bytes);
      case TermKind::kPadding:
        break;
    }
    return Term(std::string(side_name) + " " + TypeLabel(p) + " " + padding_label, s, batch,
                p.padding_tokens, p.bpe, p.padding_bytes);
  };
  FormulaTerm tk = term("K", k), tv = term("V", v);
  if (tk.what.substr(1) == tv.what.substr(1) && tk.tokens == tv.tokens &&
      tk.bpe.num == tv.bpe.num && tk.bpe.den == tv.bpe.den) {
    if (tk.tokens == 0) return;
    tk.what = "K+V" + tk.what.substr(1);
    tk.sides = 2;
    tk.bytes += tv.bytes;
    out->push_back(tk);
    return;
  }
  if (tk.tokens > 0) out->push_back(tk);
  if (tv.tokens > 0) out->push_back(tv);
}

}  // namespace

Result<MemoryPlan> PlanKVMemory(const KVShape& shape, const MemoryPlanOptions& options) {
  auto positive = [](const char* what, int64_t v) -> Status {
    if (v <= 0) return InvalidArgument(std::string(what) + " must be positive, got " + Str(v));
    return Status::Ok();
  };
  // Inputs beyond 2^50 are refused outright so that token arithmetic stays inside int64.
  for (int64_t v : {shape.n_layers, shape.n_kv_heads, shape.head_dim, options.tokens, options.batch,
                    options.residual, options.window, options.block_size}) {
    if (v > (int64_t{1} << 50)) return OutOfRange("a size of " + Str(v) + " is beyond 2^50");
  }
  KVC_RETURN_IF_ERROR(positive("layers", shape.n_layers));
  KVC_RETURN_IF_ERROR(positive("kv heads", shape.n_kv_heads));
  KVC_RETURN_IF_ERROR(positive("head dim", shape.head_dim));
  KVC_RETURN_IF_ERROR(positive("context tokens", options.tokens));
  KVC_RETURN_IF_ERROR(positive("batch", options.batch));
  KVC_RETURN_IF_ERROR(positive("group size", options.group));
  if (options.group > 256) return InvalidArgument("group size must be at most 256");
  KVC_RETURN_IF_ERROR(positive("block size", options.block_size));
  if (options.window < 0) return InvalidArgument("window must be >= 0, got " + Str(options.window));
  if (options.residual < -1) {
    return InvalidArgument("residual must be >= 0, got " + Str(options.residual));
  }

  MemoryPlan plan;
  plan.shape = shape;
  plan.options = options;
  plan.stored_tokens =
      options.window > 0 ? std::min(options.window, options.tokens) : options.tokens;
  KVC_RETURN_IF_ERROR(InitSide(shape, options, options.k_type, /*is_key=*/true, &plan.k));
  KVC_RETURN_IF_ERROR(InitSide(shape, options, options.v_type, /*is_key=*/false, &plan.v));

  plan.residual = options.residual >= 0
                      ? options.residual
                      : DefaultResidual(options.k_type, options.v_type, options.grouping);
  if (plan.k.groups_along_tokens && (plan.residual == 0 || plan.residual % plan.k.group != 0)) {
    return InvalidArgument(
        "KIVI keys gather a group in the f32 residual: the residual (" + Str(plan.residual) +
        ") must be a positive multiple of the group size (" + Str(plan.k.group) + ")");
  }
  // The ring is allocated whole, capped by the context (not the window).
  const int64_t ring = std::min(plan.residual, options.tokens);
  int64_t slots = 0;
  for (SidePlan* side : {&plan.k, &plan.v}) {
    side->residual_tokens = IsQuantized(side->type) ? ring : 0;
    side->stored_tokens = StorageTokens(*side, side->residual_tokens, plan.stored_tokens);
    slots = std::max(slots, side->stored_tokens);
  }
  // K and V share slot indices (one block table), so both get the larger count, rounded up to
  // whole blocks (paged) or whole KIVI key groups.
  const int64_t unit =
      options.layout == KVLayout::kPaged
          ? EffectiveBlockSize(options.block_size, plan.k.groups_along_tokens ? plan.k.group : 1)
      : plan.k.groups_along_tokens ? plan.k.group
                                   : 1;
  plan.slots = (slots + unit - 1) / unit * unit;
  Checked c;
  for (SidePlan* side : {&plan.k, &plan.v}) {
    side->padding_tokens = plan.slots - side->stored_tokens;
    SideBytes(shape, options.batch, &c, side);
  }
  plan.total_bytes = c.To64(c.Add(plan.k.total_bytes, plan.v.total_bytes));
  plan.elements =
      c.To64(c.Mul(c.Mul(c.Mul(c.Mul(c.Mul(2, options.batch), plan.stored_tokens), shape.n_layers),
                         shape.n_kv_heads),
                   shape.head_dim));
  if (c.bad) {
    return OutOfRange("the KV cache of this request would exceed 2^64 bytes; check the sizes");
  }
  for (TermKind kind : {TermKind::kStorage, TermKind::kResidual, TermKind::kPadding}) {
    AddTerms(shape, options.batch, plan.k, plan.v, kind,
             options.layout == KVLayout::kPaged ? "block rounding" : "slot rounding", &plan.terms);
  }
  return plan;
}

}  // namespace kvc
