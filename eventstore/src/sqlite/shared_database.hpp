#pragma once

// What the SqliteBackends of one database share inside a process, and the
// ownership tokens of persistent subscriptions.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "gamebot/eventstore/backend.hpp"

namespace gamebot::eventstore::sqlite_detail {

// The turn of one writer of this process at a time, waited for with a
// deadline. (A mutex and a condition variable rather than std::timed_mutex,
// whose try_lock_for ThreadSanitizer cannot follow.)
class WriterGate {
 public:
  // True once the caller holds the turn; false after `timeout`.
  bool try_lock_for(std::chrono::milliseconds timeout);
  void unlock() noexcept;

 private:
  std::mutex mutex_;
  std::condition_variable released_;
  bool held_ = false;
};

// One per database (file or named in-memory database) per process, shared by
// every backend on it. Thread-safe.
class SharedDatabase {
 public:
  // The state of database `key` (a canonical file path or "memdb:<name>"),
  // created on first use and dropped with its last backend.
  static std::shared_ptr<SharedDatabase> of(const std::string& key);

  const std::string& key() const noexcept { return key_; }

  // Writers of this process queue here before BEGIN IMMEDIATE: a handoff on a
  // mutex instead of SQLite's sleeping busy handler.
  WriterGate& writer() noexcept { return writer_; }

  // Backends register their notifier so one backend's commit wakes the
  // subscribers of all of them at once.
  void attach(ChangeNotifier* notifier);
  void detach(ChangeNotifier* notifier) noexcept;
  void notify_all() noexcept;

  // Ownership of a persistent subscription among the backends of this process
  // (used for in-memory databases, which no other process can open). False if
  // someone here owns `key` already.
  bool try_claim(const std::string& key);
  void release(const std::string& key) noexcept;
  // Whether someone here owns `key` now (a snapshot, for listings).
  bool claimed(const std::string& key);

  explicit SharedDatabase(std::string key) : key_(std::move(key)) {}

 private:
  const std::string key_;
  WriterGate writer_;
  std::mutex mutex_;
  std::vector<ChangeNotifier*> notifiers_;
  std::set<std::string, std::less<>> claims_;
};

// The (subscription, stream) key of an ownership claim.
std::string lease_key(std::string_view subscription, std::string_view stream_id);

// A process-local claim on `key` in `shared`; nullptr if taken.
std::unique_ptr<SubscriptionLease> try_claim_in_process(std::shared_ptr<SharedDatabase> shared,
                                                        std::string key);

// A claim across processes: an OFD write lock (fcntl F_OFD_SETLK) on one byte
// of `lock_path`, at an offset derived from SHA-256(key) (60 bits: collisions
// are out of reach). Each claim opens its own descriptor, so claims conflict
// between backends of one process too. The kernel drops the lock when the
// descriptor closes, also when the process dies. nullptr if taken. Throws
// gamebot::Error(configuration) when the file cannot be opened or locked.
std::unique_ptr<SubscriptionLease> try_lock_across_processes(std::shared_ptr<SharedDatabase> shared,
                                                             const std::string& lock_path,
                                                             const std::string& key);

// Whether some descriptor (of any process) holds the claim on `key` in
// `lock_path` now, tested with F_OFD_GETLK without taking it (a snapshot, for
// listings; OFD locks name no owner pid). False when the file does not exist.
// Throws gamebot::Error(configuration) when the file cannot be opened or tested.
bool locked_across_processes(const std::string& lock_path, const std::string& key);

}  // namespace gamebot::eventstore::sqlite_detail
