#pragma once

// Umbrella header for gamebot::repo.
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/database_url.hpp"
#include "gamebot/repo/errors.hpp"
#include "gamebot/repo/identifier.hpp"
#include "gamebot/repo/logging.hpp"
#include "gamebot/repo/migrator.hpp"
#include "gamebot/repo/options.hpp"
#include "gamebot/repo/param.hpp"
#include "gamebot/repo/pool.hpp"
#include "gamebot/repo/postgres_connection.hpp"
#include "gamebot/repo/repo_facade.hpp"
#include "gamebot/repo/result.hpp"
#include "gamebot/repo/retry.hpp"
#include "gamebot/repo/sandbox.hpp"
#include "gamebot/repo/sqlite_connection.hpp"
#include "gamebot/repo/transaction.hpp"
