#pragma once

#include <string>
#include <string_view>

namespace gamebot::repo {

// The one way an identifier (database, schema, table, role name) enters SQL text: wrapped in
// double quotes with embedded quotes doubled, valid for SQLite and PostgreSQL alike. Values are
// never spliced into SQL; they are bound as parameters.
// Throws gamebot::Error(configuration) for an empty name, a NUL byte, or (PostgreSQL's limit)
// a name longer than 63 bytes. Thread-safe.
std::string quote_identifier(std::string_view name);

// "schema"."name", or just "name" when `schema` is empty. Same errors as quote_identifier.
std::string quote_qualified(std::string_view schema, std::string_view name);

}  // namespace gamebot::repo
