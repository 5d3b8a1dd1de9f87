#pragma once

// The repo settings every provider gives the run's and the tests' databases.

#include <cstddef>
#include <string>

#include "gamebot/repo/migrator.hpp"
#include "gamebot/repo/pool.hpp"

namespace gamebot::harness::provision {

// The application's migrations are tracked in a table of their own (the store's are in the
// store's), in `schema` (empty: the search path's first schema).
repo::MigratorOptions app_migrator_options(std::string schema = {});

// A pool for a test that uses at most `threads` threads (one connection more for the harness).
repo::PoolOptions pool_for(std::size_t threads);

}  // namespace gamebot::harness::provision
