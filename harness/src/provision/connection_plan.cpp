#include "provision/connection_plan.hpp"

#include <algorithm>
#include <string>

#include "gamebot/core/error.hpp"
#include "provision/repo_settings.hpp"

namespace gamebot::harness::provision {

namespace {

constexpr std::size_t kAdmin = 1;
constexpr std::size_t kTransient = 2;  // template migrations, schema check (one at a time each)
constexpr std::size_t kListener = 1;   // per store backend

}  // namespace

ConnectionPlan plan_connections(Isolation isolation, std::size_t test_threads,
                                std::size_t prepared_clones, std::size_t cap, bool server_lease) {
  const std::size_t test_pool = pool_for(test_threads).max_size;
  const std::size_t kAdminAndLease = kAdmin + (server_lease ? 1 : 0);
  ConnectionPlan plan;
  std::size_t fixed = 0;
  std::size_t per_preparer = 0;
  if (isolation == Isolation::transaction || isolation == Isolation::none) {
    // The tests' sessions are the run pool's: it needs one, and may grow to a test's pool.
    fixed = kAdminAndLease + kListener;
    plan.reserve = kAdminAndLease + kTransient + 1;
    plan.run_pool_max = std::min(test_pool, cap > fixed ? cap - fixed : 0);
    if (plan.run_pool_max == 0) plan.run_pool_max = 1;
    plan.peak = std::max(plan.reserve, fixed + plan.run_pool_max);
  } else {
    // The run database serves the schema check only (a transient): no pool, no store on it.
    plan.run_pool_max = 0;
    const std::size_t releaser = 1;
    const std::size_t in_use = test_pool + kListener;
    fixed = kAdminAndLease + releaser + in_use;
    // A preparer's admin connection (and, for schemas, one to the run database), and the
    // prepared one's pool (one connection) and listener.
    per_preparer = (isolation == Isolation::schema ? 2 : 1) + 1 + kListener;
    // Admin, lease, the transients, a preparer's connection(s) and the first prepared
    // database's pool: the listeners and the releaser can wait for a free slot.
    plan.reserve = kAdminAndLease + kTransient + per_preparer - kListener;
    const std::size_t room = cap > fixed ? (cap - fixed) / per_preparer : 0;
    plan.preparers = std::min(std::max<std::size_t>(1, prepared_clones), room);
    plan.peak = std::max(plan.reserve, fixed + plan.preparers * per_preparer);
  }
  plan.reserve_warm = plan.reserve - kTransient;
  const std::size_t minimum =
      std::max(plan.reserve, fixed + (per_preparer == 0 ? 1 : per_preparer));
  if (cap < minimum) {
    throw Error(FaultClass::configuration, "--max-connections " + std::to_string(cap) +
                                               " is too few: " + std::string(to_string(isolation)) +
                                               " isolation with " + std::to_string(test_threads) +
                                               " test thread(s) needs at least " +
                                               std::to_string(minimum) + " connections at once");
  }
  return plan;
}

}  // namespace gamebot::harness::provision
