// UTF-8 decoding, the Unicode classes the GPT-2 pre-tokenizer needs, and GPT-2's byte <-> char map.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace kvc {

// Length of the UTF-8 sequence a lead byte announces; 1 for continuation or invalid bytes, so
// malformed input still advances one byte at a time.
int Utf8SeqLen(uint8_t lead);

// Decodes the character at s[pos] (pos < s.size()) and stores its byte length in *len. A malformed
// or truncated sequence decodes as kInvalidCodepoint with *len = 1.
inline constexpr uint32_t kInvalidCodepoint = 0xFFFFFFFF;
uint32_t DecodeUtf8(std::string_view s, size_t pos, int* len);

// Appends the UTF-8 encoding of `cp` (<= 0x10FFFF) to *out.
void AppendUtf8(uint32_t cp, std::string* out);

// The classes behind \p{L}, \p{N} and \s. Letters and numbers are general categories L* and N*;
// whitespace is the White_Space property. Invalid codepoints are kOther.
enum class CharClass : uint8_t { kOther, kLetter, kNumber, kWhitespace };
CharClass ClassifyCodepoint(uint32_t cp);

// GPT-2's reversible byte -> printable character map (bytes_to_unicode in OpenAI's encoder.py):
// printable Latin-1 bytes map to themselves, the other 68 bytes to U+0100 upward.
uint32_t Gpt2ByteToCodepoint(uint8_t b);
// The inverse; -1 for characters outside the map.
int Gpt2CodepointToByte(uint32_t cp);

}  // namespace kvc
