#pragma once

// postgres: this run's database cloned from a template keyed by the migrations, on an ephemeral
// server or the one --database-url names, and per-test clones or schemas prepared ahead (see the
// .cpp).

#include <memory>

#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/options.hpp"
#include "gamebot/harness/run_id.hpp"
#include "provision/provider.hpp"

namespace gamebot::harness::provision {

// `options` and `setup` must outlive the provider.
std::unique_ptr<Provider> make_postgres_provider(const HarnessOptions& options,
                                                 const HarnessSetup& setup,
                                                 const RunIdentity& identity);

}  // namespace gamebot::harness::provision
