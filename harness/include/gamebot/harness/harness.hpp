#pragma once

// Umbrella header for gamebot::harness.
#include "gamebot/harness/database_manager.hpp"
#include "gamebot/harness/ephemeral_postgres.hpp"
#include "gamebot/harness/logging.hpp"
#include "gamebot/harness/options.hpp"
#include "gamebot/harness/report.hpp"
#include "gamebot/harness/retry.hpp"
#include "gamebot/harness/run_id.hpp"
#include "gamebot/harness/run_marker.hpp"
#include "gamebot/harness/teardown.hpp"
#include "gamebot/harness/version.hpp"
