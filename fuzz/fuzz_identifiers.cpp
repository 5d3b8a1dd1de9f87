// Stream-id / event-type validation (eventstore/validation.hpp) and the
// embedding of names in SQL (repo/identifier.hpp) on untrusted text.
//
// Checked, for every input:
// * is_valid_utf8 agrees with a plain byte-by-byte reference decoder (the
//   library's version has an 8-byte ASCII fast path);
// * validate_stream_id / validate_event_type accept exactly the documented
//   set (1..512 bytes of valid UTF-8 without NUL) and otherwise throw
//   InvalidArgument (FaultClass::configuration);
// * embed_sql_name, for each token (identifier, literal) and place (statement,
//   dollar-quoted body), accepts exactly the documented set (1 or more bytes of
//   valid UTF-8 without NUL; identifiers at most 63 bytes; literals without a
//   backslash; nothing with '$' inside a body), else a configuration error;
//   its output is one token whose unquoting gives the input back, as
//   PostgreSQL's lexer reads it: an identifier holds no lone '"', a literal no
//   lone "'" and no backslash (so standard_conforming_strings cannot change
//   where it ends), and inside `$fn$ ... $fn$` the body ends exactly where we
//   end it (no '$' in the output, so no dollar-quote tag). SQLite, given
//   `SELECT <literal> AS <identifier>`, reads back exactly the input twice: the
//   name can never break out of its quotes (no injection);
// * quote_identifier is the identifier in a statement; quote_qualified is the
//   two quoted parts joined by '.'.
//
// Byte 0 splits the rest into two names (for quote_qualified).

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
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

// The token's content as a lexer reads it: the quote character doubled inside, nothing else.
std::string unquote(std::string_view quoted, char quote, std::string_view input) {
  if (quoted.size() < 2 || quoted.front() != quote || quoted.back() != quote) {
    fail("embedded name is not inside its quotes", input);
  }
  std::string out;
  for (std::size_t i = 1; i + 1 < quoted.size(); ++i) {
    if (quoted[i] == quote) {
      if (i + 2 >= quoted.size() || quoted[i + 1] != quote) {
        fail("embedded name left a lone quote inside (it would end the token early)", input);
      }
      ++i;
    }
    out += quoted[i];
  }
  return out;
}

// Where PostgreSQL ends the dollar-quoted body that starts right after `$fn$` in `sql`: at the
// first `$fn$` that follows.
std::size_t dollar_body_end(std::string_view sql, std::size_t body_start) {
  return sql.find("$fn$", body_start);
}

sqlite3* database() {
  static sqlite3* db = [] {
    sqlite3* handle = nullptr;
    if (sqlite3_open(":memory:", &handle) != SQLITE_OK) fail("cannot open sqlite", "");
    return handle;
  }();
  return db;
}

// SQLite must read both tokens back as exactly `name`: the literal as the value, the identifier
// as the column name.
void check_in_sqlite(const std::string& literal, const std::string& identifier,
                     std::string_view name) {
  const std::string sql = "SELECT " + literal + " AS " + identifier;
  sqlite3_stmt* statement = nullptr;
  const char* tail = nullptr;
  int rc =
      sqlite3_prepare_v2(database(), sql.c_str(), static_cast<int>(sql.size()), &statement, &tail);
  if (rc != SQLITE_OK) fail("sqlite rejected an embedded name", name);
  if (tail != sql.c_str() + sql.size()) {
    sqlite3_finalize(statement);
    fail("sqlite saw a second statement after an embedded name", name);
  }
  const char* column = sqlite3_column_name(statement, 0);
  bool same = column != nullptr && std::string_view(column) == name;
  if (same && sqlite3_step(statement) == SQLITE_ROW) {
    const auto* value = reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
    const auto bytes = static_cast<std::size_t>(sqlite3_column_bytes(statement, 0));
    same = value != nullptr && std::string_view(value, bytes) == name;
  } else {
    same = false;
  }
  sqlite3_finalize(statement);
  if (!same) fail("sqlite read an embedded name as another name", name);
}

// The documented rule, written out independently of the library.
bool embeddable(std::string_view name, gamebot::repo::SqlToken token,
                gamebot::repo::SqlPlace place) {
  using gamebot::repo::SqlPlace;
  using gamebot::repo::SqlToken;
  if (name.empty() || name.find('\0') != std::string_view::npos || !reference_utf8(name)) {
    return false;
  }
  if (token == SqlToken::identifier && name.size() > 63) return false;
  if (token == SqlToken::literal && name.find('\\') != std::string_view::npos) return false;
  return place != SqlPlace::dollar_quoted_body || name.find('$') == std::string_view::npos;
}

// The embedded token, or nullopt when refused (after checking the refusal is the documented one).
std::optional<std::string> embed(std::string_view name, gamebot::repo::SqlToken token,
                                 gamebot::repo::SqlPlace place) {
  const bool expected = embeddable(name, token, place);
  std::string out;
  try {
    out = gamebot::repo::embed_sql_name(name, token, place);
  } catch (const gamebot::Error& error) {
    if (error.fault() != gamebot::FaultClass::configuration) fail("wrong fault class", name);
    if (expected) fail("embed_sql_name rejected an embeddable name", name);
    return std::nullopt;
  }
  if (!expected) fail("embed_sql_name accepted a name it cannot embed safely", name);
  const char quote = token == gamebot::repo::SqlToken::identifier ? '"' : '\'';
  if (unquote(out, quote, name) != name) fail("unquoting does not give the name back", name);
  if (token == gamebot::repo::SqlToken::literal && out.find('\\') != std::string::npos) {
    fail("a literal holds a backslash (standard_conforming_strings would move its end)", name);
  }
  if (place == gamebot::repo::SqlPlace::dollar_quoted_body) {
    const std::string body = "$fn$ BEGIN RETURN " + out + "; END $fn$";
    if (dollar_body_end(body, 4) != body.size() - 4)
      fail("the name ends a dollar-quoted body", name);
  }
  return out;
}

void check_embed(std::string_view name) {
  using gamebot::repo::SqlPlace;
  using gamebot::repo::SqlToken;
  for (SqlPlace place : {SqlPlace::statement, SqlPlace::dollar_quoted_body}) {
    const auto identifier = embed(name, SqlToken::identifier, place);
    const auto literal = embed(name, SqlToken::literal, place);
    if (identifier && literal) check_in_sqlite(*literal, *identifier, name);
  }
  std::optional<std::string> quoted;
  try {
    quoted = gamebot::repo::quote_identifier(name);
  } catch (const gamebot::Error&) {
    quoted.reset();  // refused: must match the refusal below
  }
  if (quoted != embed(name, SqlToken::identifier, SqlPlace::statement)) {
    fail("quote_identifier is not the identifier in a statement", name);
  }
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
  check_embed(text);

  const std::size_t split = text.empty() ? 0 : data[0] % (text.size() + 1);
  check_qualified(text.substr(0, split), text.substr(split));
  return 0;
}
