#pragma once

// Names derived from a PostgreSQL event store's schema name: the quoted schema
// for SQL text, the advisory-lock namespace and the notification channel.

#include <cstdint>
#include <string>
#include <string_view>

namespace gamebot::eventstore::postgres_detail {

struct SqlNames {
  // Throws InvalidArgument for an empty, over-long (> 63 bytes) or NUL-containing name.
  explicit SqlNames(std::string_view schema_name);

  // "schema"."name" for an unquoted, lower-case object name.
  std::string table(std::string_view name) const;

  std::string schema;            // as given
  std::string quoted_schema;     // "schema", quotes doubled
  std::int32_t lock_namespace;   // postgres_lock_namespace(schema)
  std::string channel;           // LISTEN/NOTIFY channel: gamebot_es_<namespace in hex>
  std::int64_t reservation_key;  // advisory lock taken while positions are reserved
};

}  // namespace gamebot::eventstore::postgres_detail
