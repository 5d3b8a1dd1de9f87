#include "provision/template_cache.hpp"

#include <fmt/format.h>

#include <thread>
#include <utility>

#include "gamebot/core/error.hpp"
#include "gamebot/harness/marked_resources.hpp"
#include "gamebot/repo/identifier.hpp"
#include "log.hpp"

namespace gamebot::harness::provision {

TemplateCache::TemplateCache(repo::DatabaseUrl admin_url, std::string hash, std::string run_id,
                             std::chrono::seconds orphan_grace,
                             const repo::Migrator& store_migrator,
                             const std::optional<repo::Migrator>& app_migrator,
                             std::int64_t server_version, MarkerFor marker_for,
                             repo::ConnectOptions connect)
    : admin_url_(std::move(admin_url)),
      hash_(std::move(hash)),
      run_id_(std::move(run_id)),
      orphan_grace_(orphan_grace),
      store_migrator_(store_migrator),
      app_migrator_(app_migrator),
      server_version_(server_version),
      marker_for_(std::move(marker_for)),
      connect_(std::move(connect)) {}

namespace {

std::uint32_t role_hash(const repo::DatabaseUrl& url) {
  std::uint32_t role = 2166136261u;  // FNV-1a: stable across builds and runs
  for (unsigned char c : url.user()) role = (role ^ c) * 16777619u;
  return role;
}

}  // namespace

std::string TemplateCache::name() const {
  return fmt::format("gamebot_test_tpl_{}_{:08x}", hash_, role_hash(admin_url_));
}

std::string TemplateCache::ready_name(std::uint32_t oid) const {
  return fmt::format("gamebot_test_ready_{}_{:08x}_{}", hash_, role_hash(admin_url_), oid);
}

std::string pooled_database_name(const repo::DatabaseUrl& admin_url, const std::string& hash,
                                 int slot) {
  return fmt::format("gamebot_test_pool_{}_{:08x}_{}", hash, role_hash(admin_url), slot);
}

bool is_pooled_database_name(const repo::DatabaseUrl& admin_url, const std::string& hash,
                             const std::string& name) {
  const std::size_t cut = name.rfind('_');
  if (cut == std::string::npos || cut + 1 == name.size() || name.size() - cut > 5) return false;
  int slot = 0;
  for (char c : name.substr(cut + 1)) {
    if (c < '0' || c > '9') return false;
    slot = slot * 10 + (c - '0');
  }
  return slot >= 1 && slot <= kMaxPooledSlots &&
         name == pooled_database_name(admin_url, hash, slot);
}

std::string TemplateCache::pooled_name(int slot) const {
  return pooled_database_name(admin_url_, hash_, slot);
}

void TemplateCache::migrate_database(const std::string& db) const {
  auto c = repo::connect(admin_url_.with_database(db), connect_);
  store_migrator_.migrate(*c);
  if (app_migrator_) app_migrator_->migrate(*c);
}

void TemplateCache::build(std::unique_ptr<repo::Connection>& admin) {
  const std::string building = "gamebot_test_tplb_" + hash_;
  // A half-built template of ours or of a builder that is gone.
  marked::drop_if_owned(admin_url_, admin, building, [&](const RunMarker& builder) {
    return builder.run_id == run_id_ || marked::owner_gone(*admin, builder, orphan_grace_);
  });
  admin->execute("CREATE DATABASE " + repo::quote_identifier(building));
  marked::mark(*admin, building, marker_for_("template-building"));
  try {
    migrate_database(building);
  } catch (...) {
    // Ours and useless: dropped now, not left for a later run's reaper.
    try {
      marked::drop_if_owned(admin_url_, admin, building, marked::owned_by_run(run_id_));
    } catch (const std::exception& e) {
      detail::log().warn("dropping the half-built template {} failed: {}", building, e.what());
    }
    throw;
  }
  admin->execute("ALTER DATABASE " + repo::quote_identifier(building) + " RENAME TO " +
                 repo::quote_identifier(name()));
  marked::mark(*admin, name(), marker_for_("template"));
}

// The building database's name is taken while another run builds: wait for its builder to
// finish, or take over if that builder is gone.
bool TemplateCache::build_or_await(std::unique_ptr<repo::Connection>& admin) {
  const std::string building = "gamebot_test_tplb_" + hash_;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto exists = [&](const std::string& db) {
    return admin
               ->query_value<std::int64_t>("SELECT count(*) FROM pg_database WHERE datname = $1",
                                           db)
               .value_or(0) > 0;
  };
  for (;;) {
    if (marked::marker_of(*admin, name())) return true;
    auto builder = marked::marker_of(*admin, building);
    if (!exists(building) || (builder && marked::owner_gone(*admin, *builder, orphan_grace_))) {
      try {
        build(admin);
        return false;
      } catch (const Error&) {
        // Only losing the race to another run is waited for (the name is taken, its marker
        // may not be written yet); our own failure (a broken migration) fails the phase now.
        auto now_building = marked::marker_of(*admin, building);
        const bool ours = now_building && now_building->run_id == run_id_;
        if (ours || (!exists(building) && !marked::marker_of(*admin, name()))) throw;
      }
    }
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(FaultClass::timeout, "template database " + building +
                                           " was still being built by another run after 60 s "
                                           "(if no run is building it, drop it)");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string TemplateCache::clone_sql(const std::string& db) const {
  return "CREATE DATABASE " + repo::quote_identifier(db) + " TEMPLATE " +
         repo::quote_identifier(name()) + (server_version_ >= 150000 ? " STRATEGY FILE_COPY" : "");
}

}  // namespace gamebot::harness::provision
