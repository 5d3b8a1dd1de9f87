// Stream-id / event-type validation (eventstore/validation.hpp) and identifier
// quoting (repo/identifier.hpp) on untrusted text.
//
// Checked, for every input:
// * is_valid_utf8 agrees with a plain byte-by-byte reference decoder (the
//   library's version has an 8-byte ASCII fast path);
// * validate_stream_id / validate_event_type accept exactly the documented
//   set (1..512 bytes of valid UTF-8 without NUL) and otherwise throw
//   InvalidArgument (FaultClass::configuration);
// * quote_identifier accepts exactly 1..63 bytes without NUL (else a
//   configuration error), its output is one double-quoted token whose
//   unquoting gives the input back, and SQLite, given
//   `SELECT 1 AS <quoted>`, names the column exactly the input: the name can
//   never break out of its quotes (no injection);
// * quote_qualified is the two quoted parts joined by '.'.
//
// Byte 0 splits the rest into two names (for quote_qualified).

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gamebot/core/error.hpp"
#include "gamebot/eventstore/errors.hpp"
#include "gamebot/eventstore/types.hpp"
#include "gamebot/eventstore/validation.hpp"
#include "gamebot/repo/identifier.hpp"

namespace {

[[noreturn]] void fail(const char* what, std::string_view input) {
  std::string hex;
  for (unsigned char c : input.substr(0, 64)) {
    static constexpr char digits[] = "0123456789abcdef";
    hex += digits[c >> 4];
    hex += digits[c & 15];
  }
  std::fprintf(stderr, "identifiers: %s (input %zu bytes: %s)\n", what, input.size(), hex.c_str());
  std::abort();
}

// Reference UTF-8 check, one code point at a time (RFC 3629).
bool reference_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t length = c < 0x80                 ? 1
                         : c >= 0xC2 && c <= 0xDF ? 2
                         : c >= 0xE0 && c <= 0xEF ? 3
                         : c >= 0xF0 && c <= 0xF4 ? 4
                                                  : 0;
    if (length == 0 || i + length > text.size()) return false;
    std::uint32_t code = length == 1 ? c : c & (0x7F >> length);
    for (std::size_t k = 1; k < length; ++k) {
      auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    if ((length == 3 && code < 0x800) || (length == 4 && (code < 0x10000 || code > 0x10FFFF)) ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

template <class Validate>
void check_name_rule(std::string_view name, std::size_t max_bytes, Validate validate) {
  const bool expected = !name.empty() && name.size() <= max_bytes &&
                        name.find('\0') == std::string_view::npos && reference_utf8(name);
  bool accepted = true;
  try {
    validate(name);
  } catch (const gamebot::eventstore::InvalidArgument& error) {
    if (error.fault() != gamebot::FaultClass::configuration) fail("wrong fault class", name);
    accepted = false;
  }
  if (accepted != expected) {
    fail(accepted ? "validation accepted an invalid name" : "validation rejected a valid name",
         name);
  }
}

std::string unquote(std::string_view quoted, std::string_view input) {
  if (quoted.size() < 2 || quoted.front() != '"' || quoted.back() != '"') {
    fail("quote_identifier output is not in double quotes", input);
  }
  std::string out;
  for (std::size_t i = 1; i + 1 < quoted.size(); ++i) {
    if (quoted[i] == '"') {
      if (i + 2 >= quoted.size() || quoted[i + 1] != '"') {
        fail("quote_identifier left a lone double quote inside", input);
      }
      ++i;
    }
    out += quoted[i];
  }
  return out;
}

sqlite3* database() {
  static sqlite3* db = [] {
    sqlite3* handle = nullptr;
    if (sqlite3_open(":memory:", &handle) != SQLITE_OK) fail("cannot open sqlite", "");
    return handle;
  }();
  return db;
}

// SQLite must read the quoted name back as exactly `name`.
void check_in_sqlite(const std::string& quoted, std::string_view name) {
  const std::string sql = "SELECT 1 AS " + quoted;
  sqlite3_stmt* statement = nullptr;
  const char* tail = nullptr;
  int rc =
      sqlite3_prepare_v2(database(), sql.c_str(), static_cast<int>(sql.size()), &statement, &tail);
  if (rc != SQLITE_OK) fail("sqlite rejected a quoted identifier", name);
  if (tail != sql.c_str() + sql.size()) {
    sqlite3_finalize(statement);
    fail("sqlite saw a second statement after a quoted identifier", name);
  }
  const char* column = sqlite3_column_name(statement, 0);
  const bool same = column != nullptr && std::string_view(column) == name;
  sqlite3_finalize(statement);
  if (!same) fail("sqlite read the quoted identifier as another name", name);
}

void check_quote(std::string_view name) {
  const bool expected = !name.empty() && name.size() <= 63 && name.find('\0') == std::string::npos;
  std::string quoted;
  try {
    quoted = gamebot::repo::quote_identifier(name);
  } catch (const gamebot::Error& error) {
    if (error.fault() != gamebot::FaultClass::configuration) fail("wrong fault class", name);
    if (expected) fail("quote_identifier rejected a valid name", name);
    return;
  }
  if (!expected) fail("quote_identifier accepted an invalid name", name);
  if (unquote(quoted, name) != name) fail("unquoting does not give the name back", name);
  check_in_sqlite(quoted, name);
}

void check_qualified(std::string_view schema, std::string_view name) {
  std::string expected;
  try {
    expected = schema.empty() ? gamebot::repo::quote_identifier(name)
                              : gamebot::repo::quote_identifier(schema) + "." +
                                    gamebot::repo::quote_identifier(name);
  } catch (const gamebot::Error&) {
    try {
      gamebot::repo::quote_qualified(schema, name);
    } catch (const gamebot::Error& error) {
      if (error.fault() != gamebot::FaultClass::configuration) fail("wrong fault class", name);
      return;
    }
    fail("quote_qualified accepted what quote_identifier rejects", name);
  }
  if (gamebot::repo::quote_qualified(schema, name) != expected) {
    fail("quote_qualified differs from its parts", name);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  if (gamebot::eventstore::is_valid_utf8(text) != reference_utf8(text)) {
    fail("is_valid_utf8 disagrees with the reference decoder", text);
  }
  check_name_rule(text, gamebot::eventstore::kMaxStreamIdBytes,
                  [](std::string_view s) { gamebot::eventstore::validate_stream_id(s); });
  check_name_rule(text, gamebot::eventstore::kMaxEventTypeBytes,
                  [](std::string_view s) { gamebot::eventstore::validate_event_type(s); });
  check_quote(text);

  const std::size_t split = text.empty() ? 0 : data[0] % (text.size() + 1);
  check_qualified(text.substr(0, split), text.substr(split));
  return 0;
}
