#pragma once

// The PostgreSQL template database of a migration set: built once (migrated and marked), kept
// across runs, and cloned for each run database and test clone. Keyed by the migrations and by
// the role: only a database's owner (or a superuser) may copy it, so runs connecting as
// different roles keep templates of their own. Callers hold the template advisory lock
// (kTemplateLockKey) around building and cloning; the cache itself is not thread-safe except
// name() and clone_sql().

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "gamebot/harness/run_marker.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/migrator.hpp"

namespace gamebot::harness::provision {

// The advisory lock (on the admin connection's database) that serializes template work.
inline constexpr std::int64_t kTemplateLockKey = 0x67616d65626f74;  // "gamebot"

// The most pooled run databases a template has (slots 1 to this).
inline constexpr int kMaxPooledSlots = 1000;

// The name of slot `slot` of the pooled run databases of the template keyed `hash` for the role
// of `admin_url` (TemplateCache::pooled_name(), before the cache exists).
std::string pooled_database_name(const repo::DatabaseUrl& admin_url, const std::string& hash,
                                 int slot);

// Whether `name` is one of those (a slot from 1 to kMaxPooledSlots).
bool is_pooled_database_name(const repo::DatabaseUrl& admin_url, const std::string& hash,
                             const std::string& name);

class TemplateCache {
 public:
  // The marker for a resource of this run (see marked_resources.hpp).
  using MarkerFor = std::function<RunMarker(const std::string& resource)>;

  // `store_migrator` and `app_migrator` must outlive the cache. `connect`: for the connection
  // that migrates a template being built.
  TemplateCache(repo::DatabaseUrl admin_url, std::string hash, std::string run_id,
                std::chrono::seconds orphan_grace, const repo::Migrator& store_migrator,
                const std::optional<repo::Migrator>& app_migrator, std::int64_t server_version,
                MarkerFor marker_for, repo::ConnectOptions connect = {});

  std::string name() const;

  // The name of slot `slot` (1, 2, ...) of the template's pooled run databases
  // (marked::kPooledResource): `gamebot_test_pool_<hash>_<role>_<slot>`, so each template (and
  // role) has pools of its own.
  std::string pooled_name(int slot) const;

  // The name of a ready clone of the template (marked::kReadyResource), by its own oid (unique
  // on the server): `gamebot_test_ready_<hash>_<role>_<oid>`.
  std::string ready_name(std::uint32_t oid) const;

  // Builds the template under a building name, then renames and marks it. `admin` is replaced
  // if the server closed it.
  void build(std::unique_ptr<repo::Connection>& admin);

  // Builds the template, or waits for another run building it (the advisory lock only excludes
  // runs whose admin connection is to the same database). Returns true when another run's
  // template was found (cached), false when this run built it.
  bool build_or_await(std::unique_ptr<repo::Connection>& admin);

  // CREATE DATABASE `db` as a copy of the template.
  std::string clone_sql(const std::string& db) const;

 private:
  void migrate_database(const std::string& db) const;

  repo::DatabaseUrl admin_url_;
  std::string hash_;
  std::string run_id_;
  std::chrono::seconds orphan_grace_;
  const repo::Migrator& store_migrator_;
  const std::optional<repo::Migrator>& app_migrator_;
  std::int64_t server_version_;
  MarkerFor marker_for_;
  repo::ConnectOptions connect_;
};

}  // namespace gamebot::harness::provision
