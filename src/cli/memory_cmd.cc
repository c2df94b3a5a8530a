// kvcache memory: the exact KV cache size of a request, with the formula and every term, for a
// GGUF (metadata only), a preset or a bare shape; a table over all KV types by default.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include "cli/command.h"
#include "kvcache/memory_plan.h"
#include "model/config_from_gguf.h"
#include "model/presets.h"

namespace kvc::cli {
namespace {

using u128 = unsigned __int128;

struct MemoryArgs {
  std::string model, preset;
  std::string ctx, batch = "1";
  std::string kv_type, kv_type_k, kv_type_v;
  std::string kv_group = "32", kv_grouping = "per-token", kv_residual, kv_window;
  std::string kv_layout = "contiguous", kv_block = "16";
  std::string layers, kv_heads, head_dim;
};

// A count from the command line: digits with optional ',' or '_' separators, or a sum such as
// "512+32" (prompt + generated tokens). Errors name the flag.
Result<int64_t> ParseCount(const std::string& flag, const std::string& text, int64_t min) {
  const auto bad = [&] {
    return InvalidArgument(flag + ": '" + text + "' is not a number >= " + std::to_string(min));
  };
  int64_t sum = 0, term = 0;
  bool digits = false;
  for (size_t i = 0; i <= text.size(); ++i) {
    const char ch = i < text.size() ? text[i] : '+';
    if (ch >= '0' && ch <= '9') {
      if (term > ((int64_t{1} << 50) - 9) / 10) return bad();
      term = term * 10 + (ch - '0');
      digits = true;
    } else if (ch == '+') {
      if (!digits) return bad();
      sum += term;
      term = 0;
      digits = false;
    } else if ((ch != ',' && ch != '_') || !digits) {
      return bad();
    }
  }
  if (sum < min || sum > (int64_t{1} << 50)) return bad();
  return sum;
}

std::string Commas(u128 v) {
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
    v /= 10;
  } while (v != 0);
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) digits.insert(i, ",");
  return digits;
}

// `bytes` in the largest unit it reaches of a 1024 or 1000 ladder: exact when it is ("512 MiB",
// "524.288 kB"), else "~" and three decimals ("~5.243 GB").
std::string Unit(uint64_t bytes, bool binary) {
  static const char* kBin[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  static const char* kDec[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  const u128 step = binary ? 1024 : 1000;
  u128 unit = 1;
  int k = 0;
  while (k < 6 && bytes / unit >= step) {
    unit *= step;
    ++k;
  }
  const u128 whole = bytes / unit, rem = bytes % unit;
  std::string s = Commas(whole);
  if (rem != 0) {
    const bool exact = rem * 1000 % unit == 0;
    u128 milli = (rem * 1000 + (exact ? 0 : unit / 2)) / unit;
    if (milli == 1000) {  // rounding carried into the whole part
      s = Commas(whole + 1);
    } else {
      std::string frac = std::to_string(static_cast<unsigned>(milli));
      frac.insert(0, 3 - frac.size(), '0');
      while (exact && frac.back() == '0') frac.pop_back();
      s += "." + frac;
    }
    if (!exact) s = "~" + s;
  }
  return s + " " + (binary ? kBin[k] : kDec[k]);
}

std::string Human(uint64_t bytes) { return Unit(bytes, true) + " = " + Unit(bytes, false); }

std::string Ratio(BytesPerElement r) {
  if (r.num % r.den == 0) return Commas(r.num / r.den);
  return Commas(r.num) + "/" + Commas(r.den);
}

// K + V bytes per token, exactly (a fraction only for odd KIVI shapes).
BytesPerElement TokenBytes(const MemoryPlan& p) {
  const BytesPerElement k = p.k.bytes_per_token, v = p.v.bytes_per_token;
  if (k.den == v.den) return {k.num + v.num, k.den};
  return {k.num * v.den + v.num * k.den, k.den * v.den};
}

std::string TypeDetail(const SidePlan& s) {
  if (!IsQuantized(s.type)) {
    return std::string(KVTypeName(s.type)) + ": " + Ratio(s.bpe) + " bytes per element";
  }
  const int64_t code = s.group * KVTypeBits(s.type) / 8;
  return std::string(KVTypeName(s.type)) + ": " + std::to_string(code) + " B codes + " +
         std::to_string(KVGroupParamBytes(s.type)) + " B " +
         (s.type == KVType::kQ8 ? "scale" : "scale/zero-point") + " per group of " +
         std::to_string(s.group) + (s.groups_along_tokens ? " tokens of one channel" : "");
}

void PrintFormula(const MemoryPlan& p) {
  std::printf("formula: 2 x batch x tokens x layers x kv_heads x head_dim x bytes_per_element\n");
  std::vector<std::string> lines, bytes;
  size_t width = 0, bytes_width = 0;
  bool split = false;
  for (const FormulaTerm& t : p.terms) {
    lines.push_back(std::to_string(t.sides) + " x " + Commas(t.batch) + " x " + Commas(t.tokens) +
                    " x " + Commas(t.layers) + " x " + Commas(t.kv_heads) + " x " +
                    Commas(t.head_dim) + " x " + Ratio(t.bpe));
    bytes.push_back(Commas(t.bytes));
    width = std::max(width, lines.back().size());
    bytes_width = std::max(bytes_width, bytes.back().size());
    split |= t.sides == 1;
  }
  if (split) std::printf("         (K and V differ: each has its own 1 x ... term)\n");
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line = lines[i];
    if (p.terms.size() > 1) {
      line.resize(width, ' ');
      line += "  = " + std::string(bytes_width - bytes[i].size(), ' ') + bytes[i] + "  " +
              p.terms[i].what;
    }
    std::printf("       %s %s\n", i == 0 ? "=" : "+", line.c_str());
  }
  std::printf("       = %s bytes\n", Commas(p.total_bytes).c_str());
}

void PrintPlan(const MemoryPlan& p) {
  PrintFormula(p);
  const BytesPerElement tok = TokenBytes(p);
  std::printf("per token: %s bytes", Ratio(tok).c_str());
  if (tok.den == 1 && tok.num >= 1024) std::printf(" = %s", Unit(tok.num, true).c_str());
  std::printf(" (K %s + V %s", Ratio(p.k.bytes_per_token).c_str(),
              Ratio(p.v.bytes_per_token).c_str());
  if (p.k.residual_tokens + p.v.residual_tokens > 0) {
    const uint64_t f32 = 4ull * p.shape.n_layers * p.shape.n_kv_heads * p.shape.head_dim;
    std::printf("; a residual token costs %s per side in f32", Commas(f32).c_str());
  }
  std::printf(")\n");
  for (const SidePlan* s : {&p.k, &p.v}) {
    const char* name = s == &p.k ? "K" : "V";
    if (s->param_bytes + s->residual_bytes + s->padding_bytes == 0) continue;
    std::vector<std::pair<std::string, std::string>> rows;  // name, "bytes (detail)"
    const bool q = IsQuantized(s->type);
    rows.push_back({q ? "codes" : "elements", Commas(s->code_bytes)});
    if (q) rows.push_back({"scales/zero-points", Commas(s->param_bytes)});
    if (s->residual_tokens > 0) {
      rows.push_back({"f32 residual", Commas(s->residual_bytes) + "  (" +
                                          Commas(s->residual_tokens) + "-token ring/seq)"});
    }
    if (p.options.layout == KVLayout::kPaged || s->padding_tokens > 0) {
      rows.push_back(
          {p.options.layout == KVLayout::kPaged ? "block rounding" : "slot rounding",
           Commas(s->padding_bytes) + "  (" + Commas(s->padding_tokens) + " empty slots/seq)"});
    }
    rows.push_back({"total", Commas(s->total_bytes)});
    std::printf("%s %s\n", name, TypeDetail(*s).c_str());
    const size_t w = Commas(s->total_bytes).size();
    for (const auto& [label, value] : rows) {
      const size_t digits = value.find(' ') == std::string::npos ? value.size() : value.find(' ');
      std::printf("  %-18s  %s%s\n", label.c_str(),
                  std::string(w - std::min(w, digits), ' ').c_str(), value.c_str());
    }
  }
  std::printf("total: %s bytes = %s\n", Commas(p.total_bytes).c_str(),
              Human(p.total_bytes).c_str());
}

// Every type (both groupings for q4/q2) under the same request.
void PrintTable(const KVShape& shape, MemoryPlanOptions o) {
  struct Row {
    KVType type;
    KVGrouping grouping;
  };
  const Row rows[] = {{KVType::kF32, KVGrouping::kPerToken},  {KVType::kF16, KVGrouping::kPerToken},
                      {KVType::kBF16, KVGrouping::kPerToken}, {KVType::kQ8, KVGrouping::kPerToken},
                      {KVType::kQ4, KVGrouping::kPerToken},   {KVType::kQ4, KVGrouping::kKivi},
                      {KVType::kQ2, KVGrouping::kPerToken},   {KVType::kQ2, KVGrouping::kKivi}};
  std::vector<std::vector<std::string>> cells = {
      {"type", "grouping", "bytes/elem", "residual", "bytes/token", "total bytes", "total"}};
  for (const Row& r : rows) {
    o.k_type = o.v_type = r.type;
    o.grouping = r.grouping;
    const std::string grouping = !IsQuantized(r.type)              ? "-"
                                 : r.grouping == KVGrouping::kKivi ? "kivi"
                                                                   : "per-token";
    auto plan = PlanKVMemory(shape, o);
    if (!plan.ok()) {
      cells.push_back({KVTypeName(r.type), grouping, "n/a: " + plan.status().message()});
      continue;
    }
    const MemoryPlan& p = plan.value();
    std::string bpe = Ratio(p.v.bpe);
    if (p.k.groups_along_tokens) bpe = Ratio(p.k.bpe) + " (K) " + bpe;
    cells.push_back({KVTypeName(r.type), grouping, bpe,
                     Commas(std::max(p.k.residual_tokens, p.v.residual_tokens)),
                     Ratio(TokenBytes(p)), Commas(p.total_bytes), Human(p.total_bytes)});
  }
  std::vector<size_t> width(7, 0);
  for (const auto& row : cells) {
    if (row.size() < 7) continue;
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  for (const auto& row : cells) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const bool right = c >= 3 && c <= 5 && row.size() == 7;
      const size_t pad = width[c] > row[c].size() ? width[c] - row[c].size() : 0;
      line += right ? std::string(pad, ' ') + row[c] : row[c] + std::string(pad, ' ');
      if (c + 1 < row.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
}

std::string PresetList() {
  std::string s;
  for (std::string_view n : PresetNames()) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

int Run(const MemoryArgs& a) {
  // The model: a GGUF's metadata, a preset, or nothing but the shape flags.
  if (!a.model.empty() && !a.preset.empty()) return Fail("give either -m or --preset, not both");
  std::optional<ModelConfig> model;
  std::string source;
  if (!a.model.empty()) {
    auto c = ReadConfigFromGguf(a.model);
    if (!c.ok()) return Fail(c.status().message());
    model = c.value();
    source = a.model;
  } else if (!a.preset.empty()) {
    auto c = FindPreset(a.preset);
    if (!c.ok()) return Fail(c.status().message());
    model = c.value();
    source = "preset";
  }
  KVShape shape;
  if (model) shape = {model->n_layers, model->n_kv_heads, model->head_dim};
  const std::pair<const std::string*, int64_t*> dims[] = {{&a.layers, &shape.n_layers},
                                                          {&a.kv_heads, &shape.n_kv_heads},
                                                          {&a.head_dim, &shape.head_dim}};
  const char* dim_flags[] = {"--layers", "--kv-heads", "--head-dim"};
  for (int i = 0; i < 3; ++i) {
    if (dims[i].first->empty()) {
      if (!model) {
        return Fail(std::string("no model: give -m FILE.gguf, --preset NAME (") + PresetList() +
                    ") or all of --layers, --kv-heads and --head-dim (missing " + dim_flags[i] +
                    ")");
      }
      continue;
    }
    auto v = ParseCount(dim_flags[i], *dims[i].first, 1);
    if (!v.ok()) return Fail(v.status().message());
    *dims[i].second = v.value();
  }

  MemoryPlanOptions o;
  auto count = [&](const std::string& flag, const std::string& text, int64_t min, int64_t* out) {
    auto v = ParseCount(flag, text, min);
    if (v.ok()) *out = v.value();
    return v.status();
  };
  Status st;
  if (!a.ctx.empty()) {
    st = count("--ctx", a.ctx, 1, &o.tokens);
  } else if (model) {
    o.tokens = model->context_length;
  } else {
    st = InvalidArgument("-c/--ctx TOKENS is required without a model");
  }
  if (st.ok()) st = count("--batch", a.batch, 1, &o.batch);
  if (st.ok()) st = count("--kv-group", a.kv_group, 1, &o.group);
  if (st.ok()) st = count("--kv-block", a.kv_block, 1, &o.block_size);
  if (st.ok() && !a.kv_residual.empty()) st = count("--kv-residual", a.kv_residual, 0, &o.residual);
  if (st.ok() && !a.kv_window.empty()) st = count("--kv-window", a.kv_window, 0, &o.window);
  if (!st.ok()) return Fail(st.message());
  if (a.kv_window.empty() && model) o.window = model->sliding_window;
  auto layout = ParseKVLayout(a.kv_layout);
  if (!layout.ok()) return Fail(layout.status().message());
  o.layout = layout.value();
  if (a.kv_grouping == "per-token" || a.kv_grouping == "token") {
    o.grouping = KVGrouping::kPerToken;
  } else if (a.kv_grouping == "kivi") {
    o.grouping = KVGrouping::kKivi;
  } else {
    return Fail("unknown --kv-grouping '" + a.kv_grouping + "' (choices: per-token, kivi)");
  }
  const std::string types = "f32, f16, bf16, q8, q4, q2";
  auto type = [&](const std::string& flag, const std::string& name, KVType* out) {
    if (KVTypeFromName(name, out)) return Status::Ok();
    return InvalidArgument("unknown " + flag + " '" + name + "' (choices: " + types + ")");
  };
  const bool table = a.kv_type.empty() && a.kv_type_k.empty() && a.kv_type_v.empty();
  if (!a.kv_type.empty()) st = type("--kv-type", a.kv_type, &o.k_type);
  o.v_type = o.k_type;
  if (st.ok() && !a.kv_type_k.empty()) st = type("--kv-type-k", a.kv_type_k, &o.k_type);
  if (st.ok() && !a.kv_type_v.empty()) st = type("--kv-type-v", a.kv_type_v, &o.v_type);
  if (!st.ok()) return Fail(st.message());

  // Checked before printing anything. In table mode this is the f16 plan, which fails only for
  // sizes beyond 64 bits (group problems of the quantized rows are reported per row).
  auto plan = PlanKVMemory(shape, o);
  if (!plan.ok()) return Fail(plan.status().message());

  if (model) {
    std::printf("model: %s (%s): %lld layers, %lld kv heads, head_dim %lld, context %d\n",
                model->name.c_str(), source.c_str(), static_cast<long long>(shape.n_layers),
                static_cast<long long>(shape.n_kv_heads), static_cast<long long>(shape.head_dim),
                model->context_length);
  } else {
    std::printf("shape: %lld layers, %lld kv heads, head_dim %lld\n",
                static_cast<long long>(shape.n_layers), static_cast<long long>(shape.n_kv_heads),
                static_cast<long long>(shape.head_dim));
  }
  std::printf("request: batch %s x %s tokens", Commas(o.batch).c_str(), Commas(o.tokens).c_str());
  if (!table) std::printf(", K %s, V %s", KVTypeName(o.k_type), KVTypeName(o.v_type));
  std::printf(", %s layout", KVLayoutName(o.layout));
  if (o.layout == KVLayout::kPaged)
    std::printf(" (blocks of %s tokens)", Commas(o.block_size).c_str());
  std::printf("\n");
  if (model && o.tokens > model->context_length) {
    std::printf("note: %s tokens exceed the model's context length %d\n", Commas(o.tokens).c_str(),
                model->context_length);
  }
  if (o.window > 0 && o.window < o.tokens) {
    std::printf("note: sliding window %s: only the last %s tokens of each sequence are stored%s\n",
                Commas(o.window).c_str(), Commas(o.window).c_str(),
                a.kv_window.empty() ? " (the model's; --kv-window 0 for full attention)" : "");
  }
  if (o.layout == KVLayout::kGrowable) {
    std::printf("note: growable doubles up to the context, so its peak equals contiguous\n");
  }
  if (!table) {
    PrintPlan(plan.value());
    return 0;
  }
  const int64_t stored = plan->stored_tokens;
  std::printf("formula: 2 x batch x tokens x layers x kv_heads x head_dim x bytes_per_element\n");
  std::printf("       = 2 x %s x %s x %s x %s x %s x bytes_per_element\n", Commas(o.batch).c_str(),
              Commas(stored).c_str(), Commas(shape.n_layers).c_str(),
              Commas(shape.n_kv_heads).c_str(), Commas(shape.head_dim).c_str());
  std::printf("       = %s x bytes_per_element (plus the f32 residual and slot rounding)\n",
              Commas(plan->elements).c_str());
  std::printf(
      "group %s (per-token groups clipped to head_dim %s); residual: the most recent "
      "tokens in f32\n\n",
      Commas(o.group).c_str(), Commas(shape.head_dim).c_str());
  PrintTable(shape, o);
  return 0;
}

RegisterCommand reg(
    "memory", "Exact KV cache memory of a request, term by term", [](CLI::App& sub) {
      auto a = std::make_shared<MemoryArgs>();
      auto opt = [&](const char* flags, std::string* dst, const std::string& help,
                     const char* type) { sub.add_option(flags, *dst, help)->type_name(type); };
      opt("-m,--model", &a->model, "GGUF model file (only its metadata is read)", "FILE");
      opt("--preset", &a->preset, "Named model shape (" + PresetList() + ")", "NAME");
      opt("-c,--ctx,--ctx-size", &a->ctx,
          "Tokens per sequence, e.g. 4096 or 512+32 (default: the model's context length)",
          "TOKENS");
      opt("-b,--batch", &a->batch, "Sequences (default 1)", "N");
      opt("--kv-type", &a->kv_type, "K and V type: f32, f16, bf16, q8, q4, q2 (default: a table)",
          "TYPE");
      opt("--kv-type-k", &a->kv_type_k, "K type (overrides --kv-type; default f16)", "TYPE");
      opt("--kv-type-v", &a->kv_type_v, "V type (overrides --kv-type; default f16)", "TYPE");
      opt("--kv-group", &a->kv_group, "Quantization group size (default 32)", "N");
      opt("--kv-grouping", &a->kv_grouping,
          "token (default; also per-token) or kivi (keys grouped per channel)", "NAME");
      opt("--kv-residual", &a->kv_residual,
          "Most recent tokens kept in f32 (default 128 for q4/q2, 0 otherwise)", "TOKENS");
      opt("--kv-window", &a->kv_window,
          "Sliding window: tokens stored per sequence (default: the model's; 0: all)", "TOKENS");
      opt("--kv-layout", &a->kv_layout, "contiguous (default), growable or paged", "NAME");
      opt("--kv-block", &a->kv_block, "Tokens per block of the paged layout (default 16)",
          "TOKENS");
      opt("--layers", &a->layers, "Layers (overrides the model's)", "N");
      opt("--kv-heads", &a->kv_heads, "KV heads (overrides the model's)", "N");
      opt("--head-dim", &a->head_dim, "Head dimension (overrides the model's)", "N");
      return [a] { return Run(*a); };
    });

}  // namespace
}  // namespace kvc::cli
