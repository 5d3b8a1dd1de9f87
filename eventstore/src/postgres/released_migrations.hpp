#pragma once

// Earlier texts of the PostgreSQL store's migrations 1 and 2. Each was on main, so stores exist
// that recorded its checksum; the migrator accepts those checksums as the migration applied, and
// migration 3 brings such a store to today's functions and tables. The list only grows: a
// released migration is never edited again.

#include <cstdint>
#include <span>
#include <string_view>

namespace gamebot::eventstore::postgres_detail {

// Until bdc94af the writers' lock namespace kept 31 bits of the schema name's hash; the
// namespace (and the notification channel named after it) is expanded into the functions.
enum class LockNamespaceBits { thirty_one, thirty };

struct ReleasedMigrationText {
  std::int64_t version;     // the migration this text was
  std::string_view commit;  // first commit on main that created stores with it
  LockNamespaceBits lock_namespace;
  std::string_view sql;  // template: {s}, {ns}, {channel}, ... as in schema.cpp's expand
};

// Every earlier text, oldest first per version. Thread-safe (static data).
std::span<const ReleasedMigrationText> earlier_migration_texts() noexcept;

}  // namespace gamebot::eventstore::postgres_detail
