#pragma once

// memory: one in-process event store for the run, reset after each test (see the .cpp).

#include <memory>

#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/options.hpp"
#include "provision/provider.hpp"

namespace gamebot::harness::provision {

std::unique_ptr<Provider> make_memory_provider(Isolation isolation, const HarnessSetup& setup);

}  // namespace gamebot::harness::provision
