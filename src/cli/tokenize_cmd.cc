// `kvcache tokenize`: prints the token ids (or id/piece pairs) a model's tokenizer gives a text.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/command.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "tokenizer/tokenizer.h"

namespace kvc::cli {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string tokenizer;
  std::string prompt;
  bool pieces = false;
  bool bos = false;
};

// The tokenizer of a GGUF file (vocab-only ones too) or of a llama2.c checkpoint plus its
// tokenizer file.
Result<std::unique_ptr<Tokenizer>> OpenTokenizer(const TokenizeOptions& opt) {
  bool is_gguf;
  {
    KVC_ASSIGN_OR_RETURN(MappedFile map, MappedFile::Open(opt.model));
    is_gguf = LooksLikeGguf(map.data(), map.size());
  }
  if (is_gguf) {
    if (!opt.tokenizer.empty()) {
      return InvalidArgument("-z is for llama2.c checkpoints; " + opt.model +
                             " is a GGUF file with its own tokenizer");
    }
    KVC_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> gguf, GgufFile::Open(opt.model));
    return LoadGgufTokenizer(*gguf);
  }
  if (opt.tokenizer.empty()) {
    return InvalidArgument(opt.model +
                           " is a llama2.c checkpoint: pass its tokenizer with -z "
                           "(e.g. tokenizer.bin or tok512.bin)");
  }
  KVC_ASSIGN_OR_RETURN(std::unique_ptr<Llama2cCheckpoint> ck, OpenLlama2c(opt.model));
  return LoadLlama2cTokenizer(opt.tokenizer, ck->config.vocab_size);
}

// Pieces may hold control characters (llama2.c's BOS is "\n<s>\n"); keep one token per line.
std::string Printable(std::string_view piece) {
  std::string out;
  for (char c : piece) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

int RunTokenize(const TokenizeOptions& opt) {
  auto tok = OpenTokenizer(opt);
  if (!tok.ok()) return Fail(tok.status().message());
  const std::vector<int32_t> ids = tok.value()->Encode(opt.prompt, opt.bos);
  if (opt.pieces) {
    for (int32_t id : ids) {
      std::printf("%d '%s'\n", id, Printable(tok.value()->Piece(id)).c_str());
    }
    return 0;
  }
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) line += ' ';
    line += std::to_string(ids[i]);
  }
  std::printf("%s\n", line.c_str());
  return 0;
}

RegisterCommand reg("tokenize", "Print the token ids of a text", [](CLI::App& sub) {
  auto opt = std::make_shared<TokenizeOptions>();
  sub.add_option("-m,--model", opt->model, "GGUF file (vocab-only works) or llama2.c checkpoint")
      ->required();
  sub.add_option("-z,--tokenizer", opt->tokenizer, "llama2.c tokenizer file (for .bin models)");
  sub.add_option("-p,--prompt", opt->prompt, "text to tokenize")->required();
  sub.add_flag("--pieces", opt->pieces, "print one `id 'piece'` line per token");
  sub.add_flag("--bos", opt->bos, "prepend the BOS token");
  return [opt]() -> int { return RunTokenize(*opt); };
});

}  // namespace
}  // namespace kvc::cli
