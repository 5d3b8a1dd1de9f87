#include "gamebot/repo/migrator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>

#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/logging.hpp"
#include "gamebot/repo/transaction.hpp"
#include "sha256.hpp"

namespace gamebot::repo {
namespace {

std::string label(std::int64_t version, std::string_view name) {
  return fmt::format("{} '{}'", version, name);
}

[[noreturn]] void schema_error(Connection& connection, std::string message) {
  DatabaseErrorDetails details;
  details.driver = connection.driver();
  throw DatabaseError(FaultClass::schema, std::move(message), std::move(details));
}

std::int64_t lock_key(const std::string& qualified_table) {
  std::string hash = internal::sha256_hex("gamebot-migrations:" + qualified_table);
  std::uint64_t key = 0;
  std::from_chars(hash.data(), hash.data() + 16, key, 16);
  return static_cast<std::int64_t>(key);
}

bool table_exists(Connection& connection, const std::string& schema, const std::string& table) {
  if (connection.driver() == Driver::sqlite) {
    return connection
               .query_value<std::int64_t>(
                   "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1", table)
               .value_or(0) > 0;
  }
  return connection
      .query_value<bool>("SELECT to_regclass($1) IS NOT NULL", quote_qualified(schema, table))
      .value_or(false);
}

}  // namespace

std::string VerifyReport::describe() const {
  std::string out;
  auto line = [&out](std::string_view text) {
    if (!out.empty()) out += '\n';
    out.append(text);
  };
  for (const auto& problem : problems) line(problem);
  if (!pending.empty()) {
    std::string list;
    for (const auto& p : pending) {
      if (!list.empty()) list += ", ";
      list += p;
    }
    line(fmt::format("pending migrations: {}", list));
  }
  return out;
}

std::string Migrator::checksum(const std::string& sql) {
  return internal::sha256_hex(sql);
}

Migrator::Migrator(std::vector<Migration> migrations, MigratorOptions options)
    : migrations_(std::move(migrations)), options_(std::move(options)) {
  std::set<std::string> names;
  std::int64_t previous = 0;
  std::string identity;
  quote_identifier(options_.table);
  if (!options_.schema.empty()) quote_identifier(options_.schema);
  for (const auto& m : migrations_) {
    if (m.name.empty()) {
      throw gamebot::Error(FaultClass::configuration,
                           fmt::format("migration {} has an empty name", m.version));
    }
    if (m.version <= previous) {
      throw gamebot::Error(
          FaultClass::configuration,
          fmt::format("migration {} must have a version above {} (versions are positive and "
                      "strictly increasing)",
                      label(m.version, m.name), previous));
    }
    if (!names.insert(m.name).second) {
      throw gamebot::Error(FaultClass::configuration,
                           fmt::format("two migrations are named '{}'", m.name));
    }
    previous = m.version;
    checksums_.push_back(checksum(m.sql));
    identity += fmt::format("{}\t{}\t{}\n", m.version, m.name, checksums_.back());
  }
  set_hash_ = internal::sha256_hex(identity);
}

std::string Migrator::qualified_table() const {
  return quote_qualified(options_.schema, options_.table);
}

std::vector<AppliedMigration> Migrator::applied(Connection& connection) const {
  std::string schema = connection.driver() == Driver::postgres ? options_.schema : std::string();
  std::vector<AppliedMigration> out;
  if (!table_exists(connection, schema, options_.table)) return out;
  std::string table = quote_qualified(schema, options_.table);
  Result rows =
      connection.query("SELECT version, name, checksum FROM " + table + " ORDER BY version");
  for (Row row : rows) {
    out.push_back(AppliedMigration{row.get<std::int64_t>(0), row.get<std::string>(1),
                                   row.get<std::string>(2)});
  }
  return out;
}

VerifyReport Migrator::verify(Connection& connection) const {
  VerifyReport report;
  auto applied_list = applied(connection);
  std::map<std::int64_t, std::size_t> code_index;
  for (std::size_t i = 0; i < migrations_.size(); ++i) code_index[migrations_[i].version] = i;
  std::set<std::int64_t> applied_versions;
  std::int64_t max_applied = 0;
  for (const auto& a : applied_list) {
    applied_versions.insert(a.version);
    max_applied = std::max(max_applied, a.version);
    auto it = code_index.find(a.version);
    if (it == code_index.end()) {
      report.problems.push_back(fmt::format(
          "the database has migration {} that this code does not know (is the database newer "
          "than the code?)",
          label(a.version, a.name)));
      continue;
    }
    const Migration& m = migrations_[it->second];
    if (m.name != a.name) {
      report.problems.push_back(fmt::format("migration {} is recorded in the database as '{}'",
                                            label(m.version, m.name), a.name));
    }
    const bool earlier_text = std::find(m.earlier_checksums.begin(), m.earlier_checksums.end(),
                                        a.checksum) != m.earlier_checksums.end();
    if (checksums_[it->second] != a.checksum && !earlier_text) {
      report.problems.push_back(fmt::format(
          "migration {} was edited after it was applied (checksum in the database {}, in the "
          "code {})",
          label(m.version, m.name), a.checksum.substr(0, 12),
          checksums_[it->second].substr(0, 12)));
    }
  }
  for (const auto& m : migrations_) {
    if (applied_versions.contains(m.version)) continue;
    if (m.version < max_applied) {
      report.problems.push_back(fmt::format(
          "migration {} is not applied although the later migration {} is (out of order)",
          label(m.version, m.name), max_applied));
    } else {
      report.pending.push_back(label(m.version, m.name));
    }
  }
  return report;
}

void Migrator::require_current(Connection& connection) const {
  VerifyReport report = verify(connection);
  if (!report.current()) {
    schema_error(connection, fmt::format("the schema ({}) is not what the code expects: {}",
                                         qualified_table(), report.describe()));
  }
}

MigrationReport Migrator::migrate(Connection& connection) const {
  bool postgres = connection.driver() == Driver::postgres;
  std::string schema = postgres ? options_.schema : std::string();
  std::string table = quote_qualified(schema, options_.table);
  TransactionOptions tx_options;
  tx_options.isolation = IsolationLevel::read_committed;  // see rows committed while we waited
  tx_options.sqlite_locking = SqliteLocking::immediate;   // SQLite: writers serialize here
  Transaction tx(connection, tx_options);

  std::optional<std::string> saved_search_path;
  if (postgres) {
    connection.execute("SELECT pg_advisory_xact_lock($1)", lock_key(table));
    if (!schema.empty()) {
      connection.execute_batch("CREATE SCHEMA IF NOT EXISTS " + quote_identifier(schema));
      saved_search_path =
          connection.query_value<std::string>("SELECT current_setting('search_path')");
      connection.execute("SELECT set_config('search_path', $1, true)",
                         quote_identifier(schema) + ", public");
    }
    connection.execute_batch("CREATE TABLE IF NOT EXISTS " + table +
                             " (version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT "
                             "NULL, applied_at timestamptz NOT NULL DEFAULT now())");
  } else {
    connection.execute_batch("CREATE TABLE IF NOT EXISTS " + table +
                             " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT "
                             "NULL, applied_at TEXT NOT NULL DEFAULT "
                             "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))");
  }

  VerifyReport report = verify(connection);
  if (!report.problems.empty()) {
    schema_error(connection, fmt::format("cannot migrate {}: {}", table, report.describe()));
  }
  MigrationReport result;
  result.already_applied = migrations_.size() - report.pending.size();
  std::set<std::int64_t> done;
  for (const auto& a : applied(connection)) done.insert(a.version);
  for (std::size_t i = 0; i < migrations_.size(); ++i) {
    const Migration& m = migrations_[i];
    if (done.contains(m.version)) continue;
    try {
      connection.execute_batch(m.sql);
    } catch (const DatabaseError& e) {
      throw DatabaseError(
          e.fault(), fmt::format("migration {} failed: {}", label(m.version, m.name), e.message()),
          e.details());
    }
    connection.execute("INSERT INTO " + table + " (version, name, checksum) VALUES ($1, $2, $3)",
                       m.version, m.name, checksums_[i]);
    result.applied.push_back(AppliedMigration{m.version, m.name, checksums_[i]});
  }
  if (saved_search_path) {
    connection.execute("SELECT set_config('search_path', $1, true)", *saved_search_path);
  }
  tx.commit();
  for (const auto& a : result.applied) {
    logger()->info("applied migration {} to {}", label(a.version, a.name),
                   connection.url().describe_target());
  }
  return result;
}

}  // namespace gamebot::repo
