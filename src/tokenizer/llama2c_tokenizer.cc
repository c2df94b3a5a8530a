// llama2.c tokenizer files: a SentencePiece BPE vocabulary with plain spaces and fixed ids
// (0 <unk>, 1 BOS, 2 EOS, 3..258 the bytes), tokenized like run.c's encode().
#include <cstring>

#include "core/mapped_file.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace kvc {

Result<std::unique_ptr<Tokenizer>> LoadLlama2cTokenizer(const std::string& path,
                                                        int32_t vocab_size) {
  if (vocab_size < 3) {
    return InvalidArgument(path + ": llama2.c vocab size " + std::to_string(vocab_size) +
                           " is too small (ids 0-2 are <unk>, BOS and EOS)");
  }
  KVC_ASSIGN_OR_RETURN(MappedFile map, MappedFile::Open(path));
  const uint8_t* data = map.data();
  const size_t size = map.size();
  auto bad = [&](const std::string& what) {
    return Corrupt(path + ": invalid llama2.c tokenizer: " + what);
  };
  size_t pos = 0;
  auto read_i32 = [&](int32_t* v) {
    if (size - pos < 4) return false;
    std::memcpy(v, data + pos, 4);
    pos += 4;
    return true;
  };
  int32_t max_len;
  if (!read_i32(&max_len)) return bad("file too small for the max_token_length header");
  if (max_len <= 0) return bad("max_token_length " + std::to_string(max_len) + " is not positive");

  std::vector<std::string> pieces(vocab_size);
  std::vector<float> scores(vocab_size);
  std::vector<TokenType> types(vocab_size, TokenType::kNormal);
  for (int32_t i = 0; i < vocab_size; ++i) {
    const std::string where = "token " + std::to_string(i) + " of " + std::to_string(vocab_size);
    int32_t score_bits, len;
    if (!read_i32(&score_bits) || !read_i32(&len)) return bad(where + ": truncated header");
    std::memcpy(&scores[i], &score_bits, 4);
    if (len < 0 || len > max_len) {
      return bad(where + ": length " + std::to_string(len) + " outside 0.." +
                 std::to_string(max_len));
    }
    if (size - pos < static_cast<size_t>(len)) return bad(where + ": truncated text");
    pieces[i].assign(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
    if (Vocab::ParseBytePiece(pieces[i]) >= 0) types[i] = TokenType::kByte;
  }
  types[0] = TokenType::kUnknown;
  types[1] = TokenType::kControl;  // "\n<s>\n" in llama2.c exports: never part of the text
  types[2] = TokenType::kControl;
  KVC_ASSIGN_OR_RETURN(Vocab vocab, Vocab::Create(std::move(pieces), std::move(scores),
                                                  std::move(types), {1, 2, 0}, path));
  SpmOptions options;
  options.space = " ";
  options.add_space_prefix = true;  // run.c's dummy prefix
  options.byte_token_offset = 3;    // run.c: byte b -> token b + 3
  return std::unique_ptr<Tokenizer>(new SpmTokenizer(std::move(vocab), std::move(options)));
}

}  // namespace kvc
