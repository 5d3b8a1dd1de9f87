#pragma once

// The one way a name (database, schema, table, role name, or a text built from such names) enters
// SQL text, for SQLite and PostgreSQL alike. Values are never spliced into SQL; they are bound as
// parameters. A name that cannot be embedded safely where it is going is refused, never altered.

#include <string>
#include <string_view>

namespace gamebot::repo {

// What the name becomes in the SQL text.
enum class SqlToken {
  identifier,  // "name", embedded double quotes doubled; at most 63 bytes (PostgreSQL's limit)
  literal,     // 'name', embedded single quotes doubled. Backslashes are refused: with
               // standard_conforming_strings off (settable per role or database) they would escape
};

// Where that token lands.
enum class SqlPlace {
  statement,           // directly in a statement sent to the server
  dollar_quoted_body,  // inside a $tag$ ... $tag$ function or DO body: '$' is refused, since a name
                       // holding "$tag$" would end the body and run the rest as SQL
};

// Every name: not empty, no NUL byte, valid UTF-8 (the server refuses other bytes, mid-statement).
// Throws gamebot::Error(configuration) naming the rule a name breaks. Thread-safe.
std::string embed_sql_name(std::string_view name, SqlToken token,
                           SqlPlace place = SqlPlace::statement);

// embed_sql_name(name, SqlToken::identifier).
std::string quote_identifier(std::string_view name);

// "schema"."name", or just "name" when `schema` is empty. Same errors as quote_identifier.
std::string quote_qualified(std::string_view schema, std::string_view name);

}  // namespace gamebot::repo
