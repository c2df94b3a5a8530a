// Tokenizers on the shared tiny models, decoding and streaming, the GPT-2 pre-tokenizer, Unicode
// classes and user-defined tokens.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/gguf_writer.h"
#include "tokenizer/gpt2_tokenizer.h"
#include "tokenizer/unicode.h"

namespace kvc {
namespace {

using Ids = std::vector<int32_t>;

const std::string kModels = std::string(KVC_SHARED_DIR) + "/models/";
const std::string kVectors = std::string(KVC_SHARED_DIR) + "/tokenizer-vectors/";

bool Exists(const std::string& path) { return std::ifstream(path).good(); }

// Tokenizers are loaded once per process: the 32000/50257-token vocabularies take a moment.
struct Loaded {
  std::unique_ptr<GgufFile> gguf;
  std::unique_ptr<Tokenizer> tok;
  std::string error;
};

const Loaded& FromGguf(const std::string& path) {
  static std::map<std::string, Loaded> cache;
  auto [it, inserted] = cache.try_emplace(path);
  if (!inserted) return it->second;
  auto gguf = GgufFile::Open(path);
  if (!gguf.ok()) {
    it->second.error = gguf.status().message();
    return it->second;
  }
  auto tok = LoadGgufTokenizer(*gguf.value());
  if (!tok.ok()) {
    it->second.error = tok.status().message();
    return it->second;
  }
  it->second.gguf = std::move(gguf).value();
  it->second.tok = std::move(tok).value();
  return it->second;
}

#define LOAD_GGUF_OR_SKIP(var, path)                          \
  if (!Exists(path)) {                                        \
    GTEST_SKIP() << "../shared not found: " << (path);        \
  }                                                           \
  const Loaded& var##_loaded = FromGguf(path);                \
  ASSERT_NE(var##_loaded.tok, nullptr) << var##_loaded.error; \
  const Tokenizer& var = *var##_loaded.tok

std::unique_ptr<Tokenizer> LoadTok512() {
  auto tok = LoadLlama2cTokenizer(kModels + "tok512.bin", 512);
  EXPECT_TRUE(tok.ok()) << tok.status().message();
  return tok.ok() ? std::move(tok).value() : nullptr;
}

// llama2.c's greedy run from the models README: BOS, "Once upon a time", then the continuation.
const Ids kStoriesRun = {
    1,   403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
    267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261,
    370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312, 286, 267,
    414, 270, 333, 415, 426, 13,  438, 310, 439, 419, 357, 336, 432, 313, 438, 310, 432, 278, 316,
    439, 419, 298, 414, 267, 265, 282, 295, 433, 426, 436, 317, 286, 296, 418, 269, 279, 292, 416,
    439, 413, 409, 416, 327, 263, 415, 294, 267, 400, 426, 338, 336, 432, 313, 442, 391, 267, 337,
    335, 364, 420, 268, 388, 432, 398, 359, 280, 303, 439, 413, 272, 417, 264, 312, 426, 436, 13,
    438, 310, 286, 296, 418, 269, 279, 292, 416, 439, 413, 409, 416, 327, 263, 415, 294, 267, 400,
    426, 338, 336, 432, 313, 442, 439, 423, 262, 304, 420, 422, 432, 317, 426, 359, 279, 292, 416,
    439, 413, 409, 416, 327, 263, 415, 294, 267, 400, 426, 436, 13,  438, 310, 279, 292, 416, 439,
    413, 391, 267, 281, 421, 427, 311, 357, 432, 384, 358};

TEST(StoriesTokenizer, OnceUponATimeFromGgufAndLlama2c) {
  const std::string tok512 = kModels + "tok512.bin";
  if (!Exists(tok512)) GTEST_SKIP() << "../shared not found: " << tok512;
  LOAD_GGUF_OR_SKIP(gguf_tok, kModels + "stories260K.gguf");
  auto bin_tok = LoadTok512();
  ASSERT_NE(bin_tok, nullptr);
  const Ids want = {1, 403, 407, 261, 378};
  for (const Tokenizer* tok : {&gguf_tok, static_cast<const Tokenizer*>(bin_tok.get())}) {
    EXPECT_EQ(tok->vocab_size(), 512);
    EXPECT_EQ(tok->bos(), 1);
    EXPECT_EQ(tok->eos(), 2);
    EXPECT_EQ(tok->Encode("Once upon a time", true), want);
    EXPECT_EQ(tok->Encode("Once upon a time", false), Ids(want.begin() + 1, want.end()));
    EXPECT_EQ(tok->Encode("", true), Ids{1});
    EXPECT_EQ(tok->Encode("", false), Ids{});
    EXPECT_EQ(tok->Decode(want), "Once upon a time");
    // The llama2.c export spells BOS "\n<s>\n"; control tokens never reach the text.
    EXPECT_EQ(tok->DecodeToken(-1, 1), "");
    EXPECT_EQ(tok->DecodeToken(378, 2), "");
  }
  EXPECT_EQ(gguf_tok.Piece(403), "\xE2\x96\x81Once");
  EXPECT_EQ(bin_tok->Piece(403), " Once");
}

TEST(StoriesTokenizer, DecodesTheReferenceRunToItsText) {
  const std::string txt = kModels + "stories260K.once-upon-a-time.txt";
  if (!Exists(txt) || !Exists(kModels + "tok512.bin"))
    GTEST_SKIP() << "../shared not found: " << txt;
  LOAD_GGUF_OR_SKIP(gguf_tok, kModels + "stories260K.gguf");
  auto bin_tok = LoadTok512();
  ASSERT_NE(bin_tok, nullptr);
  std::ifstream f(txt, std::ios::binary);
  const std::string reference((std::istreambuf_iterator<char>(f)), {});
  for (const Tokenizer* tok : {&gguf_tok, static_cast<const Tokenizer*>(bin_tok.get())}) {
    // Token by token, as generation prints it.
    std::string text;
    Utf8Stream stream;
    for (size_t i = 0; i < kStoriesRun.size(); ++i) {
      text += stream.Push(tok->DecodeToken(i == 0 ? -1 : kStoriesRun[i - 1], kStoriesRun[i]));
    }
    text += stream.Flush();
    EXPECT_EQ(text, tok->Decode(kStoriesRun));
    ASSERT_GT(text.size(), 100u);
    EXPECT_EQ(reference.substr(0, text.size()), text);
    // Round trip of the reference text itself.
    EXPECT_EQ(tok->Decode(tok->Encode(reference, true)), reference);
  }
}

TEST(SpmTokenizer, ByteFallbackDecodesToUtf8) {
  LOAD_GGUF_OR_SKIP(tok, kVectors + "ggml-vocab-llama-spm.gguf");
  // "🦙" is not in the LLaMA vocabulary: four byte tokens after the "▁" prefix.
  const Ids ids = tok.Encode("🦙", false);
  ASSERT_EQ(ids, (Ids{29871, 243, 162, 169, 156}));
  EXPECT_EQ(tok.Piece(243), "<0xF0>");
  EXPECT_EQ(tok.Decode(ids), "🦙");
  // Each byte alone is an incomplete character; the stream emits all four bytes at once.
  Utf8Stream stream;
  std::string shown;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string out = stream.Push(tok.DecodeToken(i ? ids[i - 1] : -1, ids[i]));
    if (i < ids.size() - 1) {
      EXPECT_EQ(out, "") << "after token " << i;
    }
    shown += out;
  }
  EXPECT_EQ(shown, "🦙");
  EXPECT_EQ(stream.Flush(), "");
}

TEST(SpmTokenizer, LeadingSpaceAndControlTokens) {
  LOAD_GGUF_OR_SKIP(tok, kVectors + "ggml-vocab-llama-spm.gguf");
  const Ids hello = tok.Encode("Hello world", true);
  ASSERT_EQ(hello, (Ids{1, 15043, 3186}));
  EXPECT_EQ(tok.DecodeToken(1, 15043), "Hello");   // first piece after BOS: prefix stripped
  EXPECT_EQ(tok.DecodeToken(-1, 15043), "Hello");  // at the very start too
  EXPECT_EQ(tok.DecodeToken(15043, 3186), " world");
  EXPECT_EQ(tok.Decode({1, 15043, 3186, 2}), "Hello world");
  EXPECT_EQ(tok.Decode(tok.Encode("  two spaces", false)), "  two spaces");
}

TEST(Tokenizer, OutOfRangeIdsDecodeToNothing) {
  LOAD_GGUF_OR_SKIP(spm, kVectors + "ggml-vocab-llama-spm.gguf");
  LOAD_GGUF_OR_SKIP(gpt2, kVectors + "ggml-vocab-gpt-2.gguf");
  for (const Tokenizer* tok : {&spm, &gpt2}) {
    for (int32_t bad : {-1, -100, tok->vocab_size(), INT32_MAX}) {
      EXPECT_EQ(tok->DecodeToken(-1, bad), "");
      EXPECT_EQ(tok->Piece(bad), "");
    }
    EXPECT_EQ(tok->Decode({tok->vocab_size(), -7}), "");
  }
}

TEST(Gpt2Tokenizer, DecodeAndControlToken) {
  LOAD_GGUF_OR_SKIP(tok, kVectors + "ggml-vocab-gpt-2.gguf");
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.bos(), 50256);
  EXPECT_EQ(tok.Encode("Hello world", true), (Ids{50256, 15496, 995}));
  EXPECT_EQ(tok.Piece(995), "\xC4\xA0world");  // "Ġworld"
  EXPECT_EQ(tok.DecodeToken(15496, 995), " world");
  EXPECT_EQ(tok.DecodeToken(-1, 50256), "");  // <|endoftext|> is a control token
  // Control tokens are not parsed out of plain text (llama.cpp's parse_special = false).
  const Ids ids = tok.Encode("<|endoftext|>", false);
  EXPECT_GT(ids.size(), 1u);
  EXPECT_EQ(tok.Decode(ids), "<|endoftext|>");
  // Invalid UTF-8 still round-trips through the byte-level mapping.
  const std::string invalid = "a\xFF\xC3 b\x80";
  EXPECT_EQ(tok.Decode(tok.Encode(invalid, false)), invalid);
}

TEST(Tokenizer, LongInputsAreFast) {
  LOAD_GGUF_OR_SKIP(spm, kVectors + "ggml-vocab-llama-spm.gguf");
  LOAD_GGUF_OR_SKIP(gpt2, kVectors + "ggml-vocab-gpt-2.gguf");
  // A quadratic merge loop would take minutes on these; the heap-based ones take milliseconds.
  std::string words;
  while (words.size() < 400000) words += "The quick brown fox jumps over the lazy dog 1234. ";
  const std::string one_word(200000, 'a');
  const std::string* texts[] = {&words, &one_word};
  for (const Tokenizer* tok : {&spm, &gpt2}) {
    for (const std::string* text : texts) {
      const Ids ids = tok->Encode(*text, false);
      EXPECT_LT(ids.size(), text->size());
      EXPECT_EQ(tok->Decode(ids), *text);
    }
  }
}

TEST(Utf8Stream, HoldsBackSplitCharacters) {
  Utf8Stream s;
  EXPECT_EQ(s.Push("a\xE2"), "a");  // "€" = E2 82 AC split across pushes
  EXPECT_EQ(s.Push("\x82"), "");
  EXPECT_EQ(s.Push("\xAC"
                   "b"),
            "\xE2\x82\xAC"
            "b");
  EXPECT_EQ(s.Push("\xF0\x9F"), "");  // 4-byte "🦙"
  EXPECT_EQ(s.Push("\xA6\x99!"), "\xF0\x9F\xA6\x99!");
  EXPECT_EQ(s.Push("\xC3"), "");
  EXPECT_EQ(s.Flush(), "\xC3");  // incomplete at the end: returned as is
  EXPECT_EQ(s.Flush(), "");
  // Bytes that can never complete are not held back.
  EXPECT_EQ(s.Push("\x80\x80"), "\x80\x80");
  EXPECT_EQ(s.Push("x\xFF"), "x\xFF");
  EXPECT_EQ(s.Push(""), "");
}

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view w : Gpt2PreTokenize(text)) out.emplace_back(w);
  return out;
}

TEST(Gpt2PreTokenize, FollowsTheRegex) {
  using W = std::vector<std::string>;
  EXPECT_EQ(Words("Hello world"), (W{"Hello", " world"}));
  EXPECT_EQ(Words("I've they'll 'RE"), (W{"I", "'ve", " they", "'ll", " '", "RE"}));
  EXPECT_EQ(Words("a  b"), (W{"a", " ", " b"}));  // \s+(?!\S) leaves one space to " b"
  EXPECT_EQ(Words("a\n\n b "), (W{"a", "\n\n", " b", " "}));
  EXPECT_EQ(Words("\tx"), (W{"\t", "x"}));  // the final \s+ alternative
  EXPECT_EQ(Words("x123 4.5!!"), (W{"x", "123", " 4", ".", "5", "!!"}));
  EXPECT_EQ(Words("''s"), (W{"''", "s"}));
  EXPECT_EQ(Words("нещо 日本 ٣"), (W{"нещо", " 日本", " ٣"}));
  EXPECT_EQ(Words(""), W{});
}

TEST(Unicode, Classes) {
  EXPECT_EQ(ClassifyCodepoint('a'), CharClass::kLetter);
  EXPECT_EQ(ClassifyCodepoint(0x00E9), CharClass::kLetter);  // é
  EXPECT_EQ(ClassifyCodepoint(0x65E5), CharClass::kLetter);  // 日
  EXPECT_EQ(ClassifyCodepoint(0x0663), CharClass::kNumber);  // Arabic-Indic 3
  EXPECT_EQ(ClassifyCodepoint(0x00BD), CharClass::kNumber);  // ½ (No)
  EXPECT_EQ(ClassifyCodepoint(0x2167), CharClass::kNumber);  // Roman numeral (Nl)
  EXPECT_EQ(ClassifyCodepoint(0x3000), CharClass::kWhitespace);
  EXPECT_EQ(ClassifyCodepoint(0x00A0), CharClass::kWhitespace);
  EXPECT_EQ(ClassifyCodepoint(0x1F999), CharClass::kOther);  // 🦙
  EXPECT_EQ(ClassifyCodepoint(0x0301), CharClass::kOther);   // combining mark
  EXPECT_EQ(ClassifyCodepoint(kInvalidCodepoint), CharClass::kOther);
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(Gpt2CodepointToByte(Gpt2ByteToCodepoint(static_cast<uint8_t>(b))), b);
  }
  EXPECT_EQ(Gpt2ByteToCodepoint(' '), 0x120u);  // "Ġ"
  int len;
  EXPECT_EQ(DecodeUtf8("\xC0\xAF", 0, &len), kInvalidCodepoint);  // overlong
  EXPECT_EQ(len, 1);
  EXPECT_EQ(DecodeUtf8("\xE2\x82", 0, &len), kInvalidCodepoint);  // truncated
}

// A tiny SentencePiece vocabulary with a user-defined token, written as GGUF.
TEST(SpmTokenizer, UserDefinedTokensAreMatchedVerbatim) {
  std::vector<std::string> tokens = {"<unk>",
                                     "<s>",
                                     "</s>",
                                     "\xE2\x96\x81",
                                     "a",
                                     "b",
                                     "ab",
                                     "\xE2\x96\x81"
                                     "ab",
                                     "<tag>"};
  std::vector<float> scores = {0, 0, 0, -1, -2, -3, -1, -0.5f, 0};
  std::vector<int32_t> types = {2, 3, 3, 1, 1, 1, 1, 1, 4};
  for (int b = 0; b < 256; ++b) {
    char piece[8];
    std::snprintf(piece, sizeof(piece), "<0x%02X>", b);
    tokens.push_back(piece);
    scores.push_back(0);
    types.push_back(6);
  }
  GgufWriter w;
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetF32Array("tokenizer.ggml.scores", scores);
  w.SetI32Array("tokenizer.ggml.token_type", types);
  const std::vector<uint8_t> image = w.Serialize();
  auto gguf = GgufFile::Parse(image.data(), image.size(), "tiny");
  ASSERT_TRUE(gguf.ok()) << gguf.status().message();
  auto tok = LoadGgufTokenizer(*gguf.value());
  ASSERT_TRUE(tok.ok()) << tok.status().message();
  // Text after a user-defined token gets the space prefix again, as in llama.cpp.
  EXPECT_EQ(tok.value()->Encode("ab<tag>ab", true), (Ids{1, 7, 8, 7}));
  EXPECT_EQ(tok.value()->Encode("ba", false), (Ids{3, 5, 4}));
  EXPECT_EQ(tok.value()->Encode("c", false), (Ids{3, 9 + 'c'}));  // byte fallback
  EXPECT_EQ(tok.value()->Decode({1, 7, 8, 7}), "ab<tag> ab");
}

}  // namespace
}  // namespace kvc
