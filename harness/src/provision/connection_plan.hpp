#pragma once

// How a PostgreSQL run's connections fit HarnessOptions::max_connections: which it needs at
// least (reserved before any is held, see repo/connection_budget.hpp), how large the run's pool
// may grow and how many clone preparers run. One place counts what each part of the provider
// opens, so the sizing and the cap cannot drift apart.
//
// What a run opens (t = HarnessSetup::test_threads, a test's pool holds up to t + 1):
// * every isolation: the admin connection, the server lease (when the run creates resources
//   judged by their owner's life, see PostgresProvider::holds_lease()), a transient connection for
//   the template's migrations (a cold template) and one for the schema check (an unverified
//   template);
// * transaction/none isolation, besides: the run database's pool, the store's listener on it;
// * database/schema isolation, besides: the releaser's connection, the test's prepared
//   database (its pool and its listener) and per preparer thread its connection(s) and the
//   one it keeps ready (pool and listener).

#include <cstddef>

#include "gamebot/harness/options.hpp"

namespace gamebot::harness::provision {

struct ConnectionPlan {
  std::size_t reserve = 0;  // the minimum set, taken all or nothing before any is held
  // The same without the transients (template migrations, schema check): what a run needs on a
  // template that is built and whose check a clone passed, as every process after the first.
  std::size_t reserve_warm = 0;
  std::size_t run_pool_max = 0;  // the run database's pool (transaction/none isolation only)
  std::size_t preparers = 0;     // database/schema isolation: preparer threads (0 otherwise)
  std::size_t peak = 0;          // most connections the plan has open at once
};

// The plan for `cap` connections at most; `server_lease`: whether the run holds a server lease.
// Throws gamebot::Error(configuration) naming
// --max-connections when even the minimum (one preparer, pools of one) does not fit. Pure.
ConnectionPlan plan_connections(Isolation isolation, std::size_t test_threads,
                                std::size_t prepared_clones, std::size_t cap, bool server_lease);

}  // namespace gamebot::harness::provision
