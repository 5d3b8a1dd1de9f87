#pragma once

// Names derived from a PostgreSQL event store's schema name: the schema as it
// enters SQL text (through repo::embed_sql_name only), the advisory-lock
// namespace and the notification channel.

#include <cstdint>
#include <string>
#include <string_view>

namespace gamebot::eventstore::postgres_detail {

struct SqlNames {
  // Throws InvalidArgument (configuration) for a name that cannot be embedded safely in each
  // place the store's SQL puts it, inside function bodies included (repo::embed_sql_name): empty,
  // over 63 bytes, NUL, invalid UTF-8, '$' or a backslash. The released migrations embed the
  // name in those places, so a name is refused here, before any of them runs.
  explicit SqlNames(std::string_view schema_name);

  // The same names with another lock namespace (earlier releases derived a wider one).
  SqlNames with_lock_namespace(std::int32_t other) const;

  // "schema"."name" for an unquoted, lower-case object name.
  std::string table(std::string_view name) const;

  std::string schema;             // as given
  std::string quoted_schema;      // "schema", quotes doubled
  std::string schema_literal;     // '"schema"' (for ::regnamespace)
  std::string xids_literal;       // '"schema".writer_xids' (for ::regclass)
  std::string positions_literal;  // '"schema".positions' (for ::regclass)
  std::int32_t lock_namespace;    // postgres_lock_namespace(schema)
  std::string channel;            // LISTEN/NOTIFY channel: gamebot_es_<namespace in hex>
  std::int64_t reservation_key;   // advisory lock taken while positions are reserved
};

}  // namespace gamebot::eventstore::postgres_detail
