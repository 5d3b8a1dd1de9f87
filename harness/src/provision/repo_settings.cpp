#include "provision/repo_settings.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace gamebot::harness::provision {

repo::MigratorOptions app_migrator_options(std::string schema) {
  repo::MigratorOptions options;
  options.table = "gamebot_app_migrations";
  options.schema = std::move(schema);
  return options;
}

repo::PoolOptions pool_for(std::size_t threads) {
  repo::PoolOptions pool;
  pool.max_size = std::max<std::size_t>(2, threads + 1);
  pool.checkout_timeout = std::chrono::milliseconds(5000);
  return pool;
}

}  // namespace gamebot::harness::provision
