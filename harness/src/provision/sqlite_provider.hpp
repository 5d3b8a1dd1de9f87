#pragma once

// sqlite: a private run directory with a marker, the run database copied from a cached template
// file, and a copy per test under `database` isolation (see the .cpp).

#include <memory>

#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/options.hpp"
#include "gamebot/harness/run_id.hpp"
#include "provision/provider.hpp"

namespace gamebot::harness::provision {

// `options` and `setup` must outlive the provider.
std::unique_ptr<Provider> make_sqlite_provider(const HarnessOptions& options,
                                               const HarnessSetup& setup,
                                               const RunIdentity& identity);

}  // namespace gamebot::harness::provision
