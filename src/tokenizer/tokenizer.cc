// Tokenizer::Decode and the GGUF loader, which picks the implementation from tokenizer.ggml.model.
#include "tokenizer/tokenizer.h"

#include "formats/gguf.h"
#include "tokenizer/gpt2_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/vocab.h"

namespace kvc {
namespace {

// A special token id: `fallback` when the key is absent; -1 for the "none" sentinels converters
// write (-1 as a signed value, 0xFFFFFFFF as u32).
Result<int32_t> SpecialId(const GgufFile& gguf, std::string_view key, int32_t fallback) {
  const GgufValue* v = gguf.Find(key);
  if (!v) return fallback;
  if (!v->IsInteger())
    return Corrupt(gguf.label() + ": metadata '" + std::string(key) + "' is not an integer");
  const bool is_signed = v->type == GgufType::kI8 || v->type == GgufType::kI16 ||
                         v->type == GgufType::kI32 || v->type == GgufType::kI64;
  if (is_signed) {
    if (v->i < 0) return -1;
    if (v->i > INT32_MAX) return Corrupt(gguf.label() + ": '" + std::string(key) + "' too large");
    return static_cast<int32_t>(v->i);
  }
  if (v->u == 0xFFFFFFFFu || v->u == UINT64_MAX) return -1;
  if (v->u > INT32_MAX) return Corrupt(gguf.label() + ": '" + std::string(key) + "' too large");
  return static_cast<int32_t>(v->u);
}

// Reads the keys both models share and builds the Vocab; GPT-2 vocabularies have no scores.
Result<Vocab> ReadVocab(const GgufFile& gguf, bool with_scores, SpecialIds defaults) {
  KVC_ASSIGN_OR_RETURN(std::vector<std::string_view> tokens,
                       gguf.GetStringArray("tokenizer.ggml.tokens"));
  std::vector<float> scores;
  if (with_scores) {
    KVC_ASSIGN_OR_RETURN(scores, gguf.GetFloatArray("tokenizer.ggml.scores"));
  }
  KVC_ASSIGN_OR_RETURN(std::vector<int64_t> raw_types,
                       gguf.GetIntArray("tokenizer.ggml.token_type"));
  if (raw_types.size() != tokens.size()) {
    return Corrupt(gguf.label() + ": tokenizer.ggml.token_type has " +
                   std::to_string(raw_types.size()) + " entries but tokenizer.ggml.tokens has " +
                   std::to_string(tokens.size()));
  }
  if (with_scores && scores.size() != tokens.size()) {
    return Corrupt(gguf.label() + ": tokenizer.ggml.scores has " + std::to_string(scores.size()) +
                   " entries but tokenizer.ggml.tokens has " + std::to_string(tokens.size()));
  }
  std::vector<TokenType> types(raw_types.size());
  for (size_t i = 0; i < raw_types.size(); ++i) {
    if (raw_types[i] < 1 || raw_types[i] > 6) {
      return Corrupt(gguf.label() + ": tokenizer.ggml.token_type[" + std::to_string(i) +
                     "] = " + std::to_string(raw_types[i]) + " is not a known token type");
    }
    types[i] = static_cast<TokenType>(raw_types[i]);
  }
  SpecialIds ids;
  KVC_ASSIGN_OR_RETURN(ids.bos, SpecialId(gguf, "tokenizer.ggml.bos_token_id", defaults.bos));
  KVC_ASSIGN_OR_RETURN(ids.eos, SpecialId(gguf, "tokenizer.ggml.eos_token_id", defaults.eos));
  KVC_ASSIGN_OR_RETURN(ids.unk, SpecialId(gguf, "tokenizer.ggml.unknown_token_id", defaults.unk));
  return Vocab::Create(std::vector<std::string>(tokens.begin(), tokens.end()), std::move(scores),
                       std::move(types), ids, gguf.label());
}

}  // namespace

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string text;
  int32_t prev = -1;
  for (int32_t id : ids) {
    text += DecodeToken(prev, id);
    prev = id;
  }
  return text;
}

Result<std::unique_ptr<Tokenizer>> LoadGgufTokenizer(const GgufFile& gguf) {
  KVC_ASSIGN_OR_RETURN(std::string model, gguf.GetString("tokenizer.ggml.model"));
  if (model == "llama") {
    // llama.cpp's defaults for SentencePiece vocabularies.
    KVC_ASSIGN_OR_RETURN(Vocab vocab, ReadVocab(gguf, /*with_scores=*/true, {1, 2, 0}));
    SpmOptions options;
    if (const GgufValue* v = gguf.Find("tokenizer.ggml.add_space_prefix")) {
      if (v->type != GgufType::kBool) {
        return Corrupt(gguf.label() + ": metadata 'tokenizer.ggml.add_space_prefix' is " +
                       std::string(GgufTypeName(v->type)) + ", expected bool");
      }
      options.add_space_prefix = v->u != 0;
    }
    return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(vocab), std::move(options)));
  }
  if (model == "gpt2") {
    // Pre-tokenizer types that use exactly the GPT-2 pattern; others (llama3, qwen2, ...) split
    // differently and would silently give wrong ids. An absent key is taken to mean GPT-2.
    const GgufValue* pre = gguf.Find("tokenizer.ggml.pre");
    if (pre && pre->type == GgufType::kString) {
      static constexpr std::string_view kGpt2Like[] = {"gpt-2", "gpt2", "mpt", "olmo", "jais"};
      bool known = false;
      for (std::string_view p : kGpt2Like) known = known || pre->str == p;
      if (!known) {
        return Unsupported(gguf.label() + ": GPT-2 BPE pre-tokenizer '" + std::string(pre->str) +
                           "' is not supported (supported: gpt-2, mpt, olmo, jais)");
      }
    }
    KVC_ASSIGN_OR_RETURN(Vocab vocab, ReadVocab(gguf, /*with_scores=*/false, {-1, -1, -1}));
    KVC_ASSIGN_OR_RETURN(std::vector<std::string_view> merges,
                         gguf.GetStringArray("tokenizer.ggml.merges"));
    KVC_ASSIGN_OR_RETURN(auto tok, Gpt2Tokenizer::Create(std::move(vocab), merges, gguf.label()));
    return std::unique_ptr<Tokenizer>(std::move(tok));
  }
  return Unsupported(gguf.label() + ": tokenizer model '" + model +
                     "' is not supported (supported: llama, gpt2)");
}

}  // namespace kvc
