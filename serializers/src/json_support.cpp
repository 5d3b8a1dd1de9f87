// Error translation for the codecs, the jsonb compatibility check of JSON
// output, the nesting guard for JSON input, and JSON paths for messages.

// clang-format off
// First: cereal must configure rapidjson (throwing assertions) before anything includes it.
#include "gamebot/serializers/internal/codec_io.hpp"
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
// clang-format on

#include <fmt/format.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "gamebot/serializers/error.hpp"

// cereal::JSONInputArchive keeps its position (a stack of iterators) private.
// An explicit instantiation may name private members ([temp.explicit]: access
// checking does not apply to its template arguments), which is the one portable
// way to read it; we only read it after a decode failed, to say where.
namespace gamebot::serializers::internal {
namespace {

struct IteratorStackTag {};
struct IteratorIndexTag {};
struct IteratorSizeTag {};
struct IteratorTypeTag {};

template <class Tag, auto Member>
struct PrivateMember {
  friend auto private_member(Tag) { return Member; }
};

auto private_member(IteratorStackTag);
auto private_member(IteratorIndexTag);
auto private_member(IteratorSizeTag);
auto private_member(IteratorTypeTag);

template struct PrivateMember<IteratorStackTag, &cereal::JSONInputArchive::itsIteratorStack>;
template struct PrivateMember<IteratorIndexTag, &cereal::JSONInputArchive::Iterator::itsIndex>;
template struct PrivateMember<IteratorSizeTag, &cereal::JSONInputArchive::Iterator::itsSize>;
template struct PrivateMember<IteratorTypeTag, &cereal::JSONInputArchive::Iterator::itsType>;

// rapidjson recurses once per nesting level; this keeps the stack use small on
// any thread. cereal data nests a handful of levels.
constexpr std::size_t kMaxJsonDepth = 256;

bool is_identifier(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  return !(name[0] >= '0' && name[0] <= '9');
}

void append_member(std::string& path, std::string_view name) {
  if (is_identifier(name)) {
    path += '.';
    path += name;
  } else {
    path += "[\"";
    for (char c : name) {
      if (c == '"' || c == '\\') path += '\\';
      path += c;
    }
    path += "\"]";
  }
}

// cereal reports a JSON value of the wrong kind as a failed rapidjson assertion.
std::string explain_rapidjson_assertion(std::string_view what) {
  struct Known {
    std::string_view assertion;
    std::string_view meaning;
  };
  static constexpr Known known[] = {
      {"IsObject()", "expected a JSON object"},
      {"IsArray()", "expected a JSON array"},
      {"IsString()", "expected a JSON string"},
      {"IsBool()", "expected a JSON boolean"},
      {"IsNumber()", "expected a JSON number"},
      {"IsNull()", "expected JSON null"},
      {"kIntFlag", "expected an integer that fits in 32 bits"},
      {"kUintFlag", "expected a non-negative integer that fits in 32 bits"},
      {"kInt64Flag", "expected an integer that fits in 64 bits"},
      {"kUint64Flag", "expected a non-negative integer that fits in 64 bits"},
  };
  for (const Known& k : known) {
    if (what.find(k.assertion) != std::string_view::npos) {
      return fmt::format("{} ({})", k.meaning, what);
    }
  }
  return std::string(what);
}

std::string current_exception_text() {
  try {
    throw;
  } catch (const cereal::RapidJSONException& e) {
    return explain_rapidjson_assertion(e.what());
  } catch (const cereal::Exception& e) {
    return fmt::format("cereal: {}", e.what());
  } catch (const std::bad_alloc&) {
    return "out of memory";
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown exception";
  }
}

// cereal's message when a named value is missing: "... provided NVP (name) not found".
std::string missing_nvp_name(std::string_view message) {
  constexpr std::string_view open = "provided NVP (";
  constexpr std::string_view close = ") not found";
  const auto begin = message.find(open);
  if (begin == std::string_view::npos) return {};
  const auto end = message.rfind(close);
  if (end == std::string_view::npos || end < begin + open.size()) return {};
  return std::string(message.substr(begin + open.size(), end - begin - open.size()));
}

std::string archive_json_path(const cereal::JSONInputArchive& archive, std::string_view message) {
  const auto& stack = archive.*private_member(IteratorStackTag{});
  const std::string missing = missing_nvp_name(message);
  std::string path = "$";
  for (std::size_t level = 0; level < stack.size(); ++level) {
    const auto& iterator = stack[level];
    const bool top = level + 1 == stack.size();
    if (top && !missing.empty()) {
      append_member(path, missing);
      break;
    }
    const std::size_t index = iterator.*private_member(IteratorIndexTag{});
    const std::size_t size = iterator.*private_member(IteratorSizeTag{});
    // Iterator::Type is {Value, Member, Null_}: an array, an object, or empty.
    const int type = static_cast<int>(iterator.*private_member(IteratorTypeTag{}));
    if (const char* name = iterator.name()) {
      append_member(path, name);
    } else if (type == 0 || (type == 1 && index >= size)) {
      path += fmt::format("[{}]", index);
    }
  }
  return path;
}

struct ParseOutcome {
  bool ok = true;
  std::size_t offset = 0;
  std::string message;
};

ParseOutcome parse_json(std::string_view json) {
  rapidjson::MemoryStream stream(json.data(), json.size());
  rapidjson::Reader reader;
  rapidjson::BaseReaderHandler<> handler;
  rapidjson::ParseResult result;
  try {
    result = reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag |
                          rapidjson::kParseNanAndInfFlag>(stream, handler);
  } catch (const std::exception& e) {
    // cereal makes rapidjson's internal assertions throw; Debian's rapidjson asserts on some
    // malformed numbers (a fuzzer found "NaNe0"). Bad input is a parse failure, never a crash.
    return {false, stream.Tell(), std::string("malformed JSON (") + e.what() + ")"};
  }
  if (!result) {
    return {false, result.Offset(), rapidjson::GetParseError_En(result.Code())};
  }
  return {};
}

std::string_view root_kind(std::string_view json) {
  for (char c : json) {
    switch (c) {
      case ' ':
      case '\t':
      case '\n':
      case '\r':
        continue;
      case '[':
        return "an array";
      case '"':
        return "a string";
      case 't':
      case 'f':
        return "a boolean";
      case 'n':
        return "null";
      default:
        return "a number";
    }
  }
  return "empty";
}

// Lexes `json` up to `offset` and names the member or element there.
std::string json_path_at(std::string_view json, std::size_t offset) {
  struct Frame {
    bool object;
    bool expecting_key;
    std::size_t index;
    std::string key;
  };
  std::vector<Frame> frames;
  std::size_t i = 0;
  while (i < json.size() && i < offset) {
    const char c = json[i];
    if (c == '"') {
      std::string text;
      std::size_t end = i + 1;
      while (end < json.size() && json[end] != '"') {
        if (json[end] == '\\' && end + 1 < json.size()) ++end;
        text += json[end];
        ++end;
      }
      if (!frames.empty() && frames.back().object && frames.back().expecting_key) {
        frames.back().key = std::move(text);
        frames.back().expecting_key = false;
      }
      if (end >= offset) break;
      i = end + 1;
      continue;
    }
    switch (c) {
      case '{':
        frames.push_back({true, true, 0, {}});
        break;
      case '[':
        frames.push_back({false, false, 0, {}});
        break;
      case '}':
      case ']':
        if (!frames.empty()) frames.pop_back();
        break;
      case ',':
        if (!frames.empty()) {
          if (frames.back().object) {
            frames.back().expecting_key = true;
          } else {
            ++frames.back().index;
          }
        }
        break;
      default:
        break;
    }
    ++i;
  }
  std::string path = "$";
  for (const Frame& frame : frames) {
    if (frame.object) {
      if (!frame.key.empty()) append_member(path, frame.key);
    } else {
      path += fmt::format("[{}]", frame.index);
    }
  }
  return path;
}

// Tracks whether a position of JSON text is inside a string, lexing forward
// only as far as asked (positions are asked in increasing order).
class StringStateLexer {
 public:
  explicit StringStateLexer(std::string_view json) : json_(json) {}
  bool inside_string(std::size_t position) {
    while (position_ < position) {
      const char c = json_[position_];
      if (in_string_ && c == '\\') {
        position_ += 2;
        continue;
      }
      if (c == '"') in_string_ = !in_string_;
      ++position_;
    }
    return in_string_;
  }

 private:
  std::string_view json_;
  std::size_t position_ = 0;
  bool in_string_ = false;
};

// Length of the valid UTF-8 sequence at `p` (with `left` bytes), or 0. Strict
// like PostgreSQL: no overlong forms, no surrogates, nothing above U+10FFFF.
std::size_t utf8_sequence_length(const unsigned char* p, std::size_t left) {
  const unsigned char b0 = p[0];
  auto cont = [&](std::size_t k, unsigned char low = 0x80, unsigned char high = 0xBF) {
    return k < left && p[k] >= low && p[k] <= high;
  };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 == 0xE0) return cont(1, 0xA0) && cont(2) ? 3 : 0;
  if ((b0 >= 0xE1 && b0 <= 0xEC) || b0 == 0xEE || b0 == 0xEF) return cont(1) && cont(2) ? 3 : 0;
  if (b0 == 0xED) return cont(1, 0x80, 0x9F) && cont(2) ? 3 : 0;
  if (b0 == 0xF0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xF1 && b0 <= 0xF3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 == 0xF4) return cont(1, 0x80, 0x8F) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

// Byte finders for the scans below, 16 bytes at a time with SSE2 (every x86-64
// has it), one byte at a time elsewhere. Each returns the first position in
// [p, end) holding a byte of its class, or end.

constexpr bool is_output_special(unsigned char c) {
  return c >= 0x80 || c == 'N' || c == 'I' || c == '\\';
}
constexpr bool is_string_special(char c) {
  return c == '"' || c == '\\';
}
constexpr bool is_structural(char c) {
  return c == '"' || c == '-' || (c >= '0' && c <= '9') || c == '{' || c == '[' || c == '}' ||
         c == ']';
}

#if defined(__SSE2__)
inline int output_special_mask(__m128i v) {
  const __m128i hits = _mm_or_si128(
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('N')), _mm_cmpeq_epi8(v, _mm_set1_epi8('I'))),
      _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
  return _mm_movemask_epi8(hits) | _mm_movemask_epi8(v);
}
inline int string_special_mask(__m128i v) {
  return _mm_movemask_epi8(
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
}
inline int structural_mask(__m128i v) {
  // '[' and '{' differ only in bit 0x20, as do ']' and '}'.
  const __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
  const __m128i digit_offset = _mm_sub_epi8(v, _mm_set1_epi8('0'));
  const __m128i digits = _mm_cmpeq_epi8(_mm_min_epu8(digit_offset, _mm_set1_epi8(9)), digit_offset);
  const __m128i hits = _mm_or_si128(
      _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('-'))),
      _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(folded, _mm_set1_epi8('{')),
                                _mm_cmpeq_epi8(folded, _mm_set1_epi8('}'))),
                   digits));
  return _mm_movemask_epi8(hits);
}
#endif

#if defined(__SSE2__)
#define GAMEBOT_FIND_LOOP(mask_function)                                                  \
  while (end - p >= 16) {                                                                 \
    const int mask = mask_function(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); \
    if (mask != 0) return p + __builtin_ctz(static_cast<unsigned>(mask));                 \
    p += 16;                                                                              \
  }
#else
#define GAMEBOT_FIND_LOOP(mask_function)
#endif

inline const unsigned char* find_output_special(const unsigned char* p, const unsigned char* end) {
  GAMEBOT_FIND_LOOP(output_special_mask)
  while (p < end && !is_output_special(*p)) ++p;
  return p;
}
inline const char* find_string_special(const char* p, const char* end) {
  GAMEBOT_FIND_LOOP(string_special_mask)
  while (p < end && !is_string_special(*p)) ++p;
  return p;
}
inline const char* find_structural(const char* p, const char* end) {
  GAMEBOT_FIND_LOOP(structural_mask)
  while (p < end && !is_structural(*p)) ++p;
  return p;
}

#undef GAMEBOT_FIND_LOOP

[[noreturn]] void throw_unrepresentable(const CodecContext& context, std::string_view json,
                                        std::size_t offset, std::string detail) {
  SerializationErrorInfo info;
  info.kind = SerializationErrorKind::unrepresentable;
  info.type_name = std::string(context.type_name);
  info.version = context.version;
  info.codec = context.codec;
  info.json_path = json_path_at(json, offset);
  info.detail = std::move(detail);
  throw SerializationError(std::move(info));
}

constexpr bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// One JSON number token, split into its parts.
struct NumberToken {
  bool negative = false;
  std::string_view integer;
  bool has_point = false;
  std::string_view fraction;
  bool has_exponent = false;
  bool exponent_negative = false;
  std::string_view exponent;
};

const char* scan_number(const char* p, const char* end, NumberToken& token) {
  if (*p == '-') {
    token.negative = true;
    ++p;
  }
  const char* begin = p;
  while (p < end && is_digit(*p)) ++p;
  token.integer = std::string_view(begin, static_cast<std::size_t>(p - begin));
  if (p < end && *p == '.') {
    token.has_point = true;
    begin = ++p;
    while (p < end && is_digit(*p)) ++p;
    token.fraction = std::string_view(begin, static_cast<std::size_t>(p - begin));
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    token.has_exponent = true;
    ++p;
    if (p < end && (*p == '+' || *p == '-')) token.exponent_negative = *p++ == '-';
    begin = p;
    while (p < end && is_digit(*p)) ++p;
    token.exponent = std::string_view(begin, static_cast<std::size_t>(p - begin));
  }
  return p;
}

std::size_t leading_zeros(std::string_view digits) {
  std::size_t n = 0;
  while (n < digits.size() && digits[n] == '0') ++n;
  return n;
}

// Longest run of digits and '.' in a number without exponent that rapidjson
// 1.1.0 parses exactly and safely (checked by fuzzing; from 25 on it does not,
// e.g. "0." followed by 23 zeros). Its writer never writes longer ones.
constexpr std::size_t kMaxPlainNumberLength = 24;

// True for number shapes rapidjson 1.1.0 parses exactly and safely: those its
// writer produces and std::to_chars' scientific form. Also true for malformed
// tokens, which rapidjson rejects before converting anything.
bool is_safe_number(const NumberToken& t) {
  const bool malformed = t.integer.empty() || (t.integer.size() > 1 && t.integer[0] == '0') ||
                         (t.has_point && t.fraction.empty()) ||
                         (t.has_exponent && t.exponent.empty());
  if (malformed) return true;
  if (!t.has_exponent) {
    return t.integer.size() + (t.has_point ? 1 + t.fraction.size() : 0) <= kMaxPlainNumberLength;
  }
  if (t.integer.size() != 1 || t.integer[0] == '0' || t.fraction.size() > 16 ||
      t.exponent.size() > 3) {
    return false;
  }
  int exponent = 0;
  for (char c : t.exponent) exponent = exponent * 10 + (c - '0');
  return t.exponent_negative ? exponent <= 324 : exponent <= 308;
}

[[noreturn]] void throw_bad_input(const CodecContext& context, std::size_t offset,
                                  std::string detail) {
  SerializationErrorInfo info;
  info.kind = SerializationErrorKind::malformed_input;
  info.type_name = std::string(context.type_name);
  info.version = context.version;
  info.codec = context.codec;
  info.byte_offset = offset;
  info.detail = std::move(detail);
  throw SerializationError(std::move(info));
}

// The same number in a form rapidjson parses safely.
void append_safe_number(std::string& out, std::string_view text, const NumberToken& token,
                        const CodecContext& context, std::size_t offset) {
  double value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    // Decimal exponent of the leading significant digit decides: underflow or overflow.
    long magnitude = 0;
    for (char c : token.exponent) magnitude = std::min(magnitude * 10 + (c - '0'), 100000L);
    if (token.exponent_negative) magnitude = -magnitude;
    const std::size_t integer_digits = token.integer == "0" ? 0 : token.integer.size();
    magnitude += integer_digits > 0 ? static_cast<long>(integer_digits)
                                    : -static_cast<long>(leading_zeros(token.fraction));
    if (magnitude > 0) {
      throw_bad_input(
          context, offset,
          fmt::format("the number {} is out of the range of a double", text.substr(0, 40)));
    }
    value = 0;
  } else if (ec != std::errc() || ptr != text.data() + text.size()) {
    throw_bad_input(context, offset, fmt::format("cannot read the number {}", text.substr(0, 40)));
  }
  if (value == 0) {
    out += token.negative ? "-0.0" : "0.0";
    return;
  }
  char buffer[32];
  const auto written =
      std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  out.append(buffer, written.ptr);
}

// Position after the closing quote of the string whose body starts at p (or end).
const char* skip_string(const char* p, const char* end) {
  while ((p = find_string_special(p, end)) != end) {
    if (*p == '"') return p + 1;
    p += std::min<std::ptrdiff_t>(2, end - p);  // an escape: skip the escaped character
  }
  return end;
}

}  // namespace

void check_json_output(std::string_view json, const CodecContext& context) {
  const auto* const begin = reinterpret_cast<const unsigned char*>(json.data());
  const auto* const end = begin + json.size();
  StringStateLexer lexer(json);
  const unsigned char* p = begin;
  while ((p = find_output_special(p, end)) != end) {
    const auto offset = static_cast<std::size_t>(p - begin);
    const unsigned char c = *p;
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence_length(p, static_cast<std::size_t>(end - p));
      if (length == 0) {
        throw_unrepresentable(context, json, offset,
                              fmt::format("invalid UTF-8 (byte 0x{:02x}) in a string; JSON and "
                                          "PostgreSQL jsonb need valid UTF-8",
                                          c));
      }
      p += length;
    } else if (c == '\\') {
      if (json.substr(offset, 6) == "\\u0000") {
        throw_unrepresentable(context, json, offset,
                              "a string contains U+0000, which PostgreSQL jsonb rejects");
      }
      p += std::min<std::size_t>(2, static_cast<std::size_t>(end - p));
    } else if (c == 'N' && json.substr(offset, 3) == "NaN" && !lexer.inside_string(offset)) {
      throw_unrepresentable(context, json, offset, "NaN is not representable in JSON");
    } else if (c == 'I' && json.substr(offset, 8) == "Infinity" && !lexer.inside_string(offset)) {
      throw_unrepresentable(context, json, offset, "an infinity is not representable in JSON");
    } else {
      ++p;
    }
  }
}

namespace {

#if defined(__SSE2__)
// Masks of one 64-byte block (bit i = byte i).
struct BlockMasks {
  std::uint64_t quote = 0;
  std::uint64_t backslash = 0;
  std::uint64_t open = 0;          // '{' '['
  std::uint64_t close = 0;         // '}' ']'
  std::uint64_t digit = 0;         // 0-9
  std::uint64_t digit_or_dot = 0;  // 0-9 '.'
  std::uint64_t exponent = 0;      // 'e' 'E'
};

BlockMasks classify_block(const char* p) {
  BlockMasks m;
  for (int part = 0; part < 4; ++part) {
    const __m128i v =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + std::ptrdiff_t{16} * part));
    const __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
    const __m128i digit_offset = _mm_sub_epi8(v, _mm_set1_epi8('0'));
    const __m128i digits =
        _mm_cmpeq_epi8(_mm_min_epu8(digit_offset, _mm_set1_epi8(9)), digit_offset);
    auto bits = [&](__m128i hits) {
      return static_cast<std::uint64_t>(static_cast<unsigned>(_mm_movemask_epi8(hits)))
             << (16 * part);
    };
    m.quote |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
    m.backslash |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    m.open |= bits(_mm_cmpeq_epi8(folded, _mm_set1_epi8('{')));
    m.close |= bits(_mm_cmpeq_epi8(folded, _mm_set1_epi8('}')));
    m.digit |= bits(digits);
    m.digit_or_dot |= bits(_mm_or_si128(digits, _mm_cmpeq_epi8(v, _mm_set1_epi8('.'))));
    m.exponent |= bits(_mm_cmpeq_epi8(folded, _mm_set1_epi8('e')));
  }
  return m;
}

std::uint64_t prefix_xor(std::uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}

// True if x holds a run of at least kMaxPlainNumberLength + 1 set bits.
bool has_long_run(std::uint64_t x) {
  static_assert(kMaxPlainNumberLength == 24);
  std::uint64_t r = x & (x >> 1);  // runs of 2
  r &= r >> 2;                     // 4
  r &= r >> 4;                     // 8
  r &= r >> 8;                     // 16
  r &= r >> 8;                     // 24
  return (r & (x >> 24)) != 0;     // 25
}

unsigned trailing_ones(std::uint64_t x) {
  return x == ~0ULL ? 64 : std::countr_zero(~x);
}
unsigned leading_ones(std::uint64_t x) {
  return x == ~0ULL ? 64 : std::countl_zero(~x);
}

// True when `json` certainly needs no rewriting and nests shallowly enough:
// no number outside strings has an exponent or a run of digits and '.' longer
// than kMaxPlainNumberLength, and fewer brackets open than kMaxJsonDepth. The
// same escape/string tracking as simdjson's first stage, 64 bytes at a time.
// False means "look closer" (the exact scan decides).
bool plainly_safe(std::string_view json) {
  constexpr std::uint64_t kOddBits = 0xAAAAAAAAAAAAAAAAULL;
  std::uint64_t next_is_escaped = 0;
  std::uint64_t in_string_carry = 0;  // all ones if the previous block ended inside a string
  std::uint64_t digit_carry = 0;      // 1 if the previous block ended with a digit
  std::size_t run_carry = 0;          // digits/dots ending the previous block
  std::size_t depth = 0;
  char tail[64];
  for (std::size_t offset = 0; offset < json.size(); offset += 64) {
    const char* block = json.data() + offset;
    if (json.size() - offset < 64) {
      std::memset(tail, ' ', sizeof tail);
      std::memcpy(tail, block, json.size() - offset);
      block = tail;
    }
    const BlockMasks m = classify_block(block);
    // Quotes preceded by an odd run of backslashes are escaped.
    std::uint64_t escaped = next_is_escaped;
    if (m.backslash != 0) {
      const std::uint64_t potential = m.backslash & ~next_is_escaped;
      const std::uint64_t maybe_escaped = potential << 1;
      const std::uint64_t codes = ((maybe_escaped | kOddBits) - potential) ^ kOddBits;
      escaped = codes ^ (m.backslash | next_is_escaped);
      next_is_escaped = (codes & m.backslash) >> 63;
    } else {
      next_is_escaped = 0;
    }
    const std::uint64_t quotes = m.quote & ~escaped;
    const std::uint64_t in_string = prefix_xor(quotes) ^ in_string_carry;
    in_string_carry = static_cast<std::uint64_t>(static_cast<std::int64_t>(in_string) >> 63);
    const std::uint64_t outside = ~in_string;

    const std::uint64_t digits = m.digit & outside;
    if ((m.exponent & outside & ((digits << 1) | digit_carry)) != 0) return false;
    digit_carry = digits >> 63;

    const std::uint64_t number = m.digit_or_dot & outside;
    if (run_carry + trailing_ones(number) > kMaxPlainNumberLength || has_long_run(number)) {
      return false;
    }
    run_carry = number == ~0ULL ? run_carry + 64 : leading_ones(number);

    const auto opens = static_cast<std::size_t>(std::popcount(m.open & outside));
    const auto closes = static_cast<std::size_t>(std::popcount(m.close & outside));
    if (depth + opens > kMaxJsonDepth) return false;
    depth = depth + opens > closes ? depth + opens - closes : 0;
  }
  return true;
}
#else
bool plainly_safe(std::string_view) {
  return false;
}
#endif

}  // namespace

std::string_view prepare_json_input(std::string_view json, std::string& storage,
                                    const CodecContext& context) {
  if (plainly_safe(json)) return json;
  const char* const begin = json.data();
  const char* const end = begin + json.size();
  const char* p = begin;
  const char* copied = begin;  // json up to here is in storage (once rewriting started)
  bool rewriting = false;
  std::size_t depth = 0;
  while ((p = find_structural(p, end)) != end) {
    switch (*p) {
      case '"':
        p = skip_string(p + 1, end);
        break;
      case '{':
      case '[':
        if (++depth > kMaxJsonDepth) {
          throw_bad_input(context, static_cast<std::size_t>(p - begin),
                          fmt::format("JSON nests deeper than {} levels", kMaxJsonDepth));
        }
        ++p;
        break;
      case '}':
      case ']':
        if (depth > 0) --depth;
        ++p;
        break;
      case '-':
      case '0':
      case '1':
      case '2':
      case '3':
      case '4':
      case '5':
      case '6':
      case '7':
      case '8':
      case '9': {
        NumberToken token;
        const char* start = p;
        p = scan_number(p, end, token);
        if (p == start) ++p;
        if (is_safe_number(token)) break;
        // "668e-96669998e-99" is not JSON; rewriting its first number would
        // make "0.0e-99", which rapidjson 1.1.0 mis-parses (clz of zero).
        if (p != end && (std::isdigit(static_cast<unsigned char>(*p)) != 0 || *p == '.' ||
                         *p == 'e' || *p == 'E' || *p == '+' || *p == '-')) {
          throw_bad_input(context, static_cast<std::size_t>(start - begin),
                          "malformed number: a number runs on after its exponent");
        }
        if (!rewriting) {
          storage.clear();
          storage.reserve(json.size() + 32);
          rewriting = true;
        }
        storage.append(copied, start);
        append_safe_number(storage, std::string_view(start, static_cast<std::size_t>(p - start)),
                           token, context, static_cast<std::size_t>(start - begin));
        copied = p;
        break;
      }
      default:
        ++p;
    }
  }
  if (!rewriting) return json;
  storage.append(copied, end);
  return storage;
}

void rethrow_encode_failure(const CodecContext& context) {
  try {
    throw;
  } catch (const SerializationError&) {
    throw;
  } catch (...) {
    SerializationErrorInfo info;
    info.kind = SerializationErrorKind::encode_failed;
    info.type_name = std::string(context.type_name);
    info.version = context.version;
    info.codec = context.codec;
    info.detail = current_exception_text();
    throw SerializationError(std::move(info));
  }
}

void rethrow_json_decode_failure(const CodecContext& context, std::string_view json,
                                 const cereal::JSONInputArchive* archive) {
  try {
    throw;
  } catch (const SerializationError&) {
    throw;
  } catch (...) {
    SerializationErrorInfo info;
    info.kind = SerializationErrorKind::malformed_input;
    info.type_name = std::string(context.type_name);
    info.version = context.version;
    info.codec = context.codec;
    std::string cause = current_exception_text();
    if (archive != nullptr) {
      info.json_path = archive_json_path(*archive, cause);
      info.detail = std::move(cause);
    } else {
      const ParseOutcome parsed = parse_json(json);
      if (!parsed.ok) {
        info.byte_offset = parsed.offset;
        info.json_path = json_path_at(json, parsed.offset);
        info.detail = fmt::format("invalid JSON: {}", parsed.message);
      } else {
        info.detail = fmt::format("the JSON document is {}, expected an object", root_kind(json));
      }
    }
    throw SerializationError(std::move(info));
  }
}

void rethrow_binary_decode_failure(const CodecContext& context, std::size_t offset) {
  try {
    throw;
  } catch (const SerializationError&) {
    throw;
  } catch (...) {
    SerializationErrorInfo info;
    info.kind = SerializationErrorKind::malformed_input;
    info.type_name = std::string(context.type_name);
    info.version = context.version;
    info.codec = context.codec;
    info.byte_offset = offset;
    info.detail = current_exception_text();
    throw SerializationError(std::move(info));
  }
}

void throw_trailing_bytes(const CodecContext& context, std::size_t offset, std::size_t size) {
  SerializationErrorInfo info;
  info.kind = SerializationErrorKind::malformed_input;
  info.type_name = std::string(context.type_name);
  info.version = context.version;
  info.codec = context.codec;
  info.byte_offset = offset;
  info.detail = fmt::format("{} trailing bytes after the value", size - offset);
  throw SerializationError(std::move(info));
}

}  // namespace gamebot::serializers::internal
