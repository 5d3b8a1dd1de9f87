#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "gamebot/repo/pool.hpp"
#include "gamebot/repo/repo_facade.hpp"
#include "gamebot/repo/transaction.hpp"

namespace gamebot::repo::internal {

// A sandbox: one pinned connection in an open transaction, and who may use it.
struct SandboxState {
  std::shared_ptr<RepoState> repo;
  std::string label;
  std::thread::id owner;
  PooledConnection connection;
  std::optional<Transaction> transaction;

  // Guarded by RepoState::mutex.
  std::unordered_set<std::thread::id> allowed;

  // Exclusive use of the connection by one thread at a time.
  std::mutex use_mutex;
  std::condition_variable use_released;
  std::optional<std::thread::id> user;
  bool closed = false;

  ~SandboxState();
  // Rolls back and returns the connection (idempotent, never throws).
  void finish() noexcept;
};

// Which connection a thread currently holds from a repo.
struct Binding {
  Connection* connection = nullptr;
  int depth = 0;
  std::weak_ptr<SandboxState> sandbox;           // the sandbox lent the connection, if any
  std::shared_ptr<std::atomic<bool>> reclaimed;  // shared with the binding's leases
};

struct RepoState {
  std::shared_ptr<Pool> pool;
  RepoOptions options;
  mutable std::mutex mutex;
  std::unordered_map<std::thread::id, Binding> bindings;
  std::vector<std::shared_ptr<SandboxState>> sandboxes;  // active, in creation order
  std::shared_ptr<SandboxState> shared;

  // Must hold `mutex`. The sandbox `thread` routes to, or nullptr.
  std::shared_ptr<SandboxState> sandbox_for(std::thread::id thread) const;
  // Must hold `mutex`. Removes `sandbox` from the registry (idempotent).
  void unregister(const SandboxState* sandbox);
  // Must hold `mutex`. "sandbox 'test a' owned by thread 1; sandbox 'test b' ..."
  std::string describe_sandboxes() const;
};

}  // namespace gamebot::repo::internal
