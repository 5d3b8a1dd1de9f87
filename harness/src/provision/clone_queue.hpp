#pragma once

// The per-test queue of `database` and `schema` isolation: preparer threads keep databases or
// schemas ready ahead of the tests that take them, and a releaser thread drops the used ones
// behind them (and, as it starts, tidies what earlier processes left). The queue only moves them
// between threads; what preparing and releasing one does (cloning the template, marking, recording
// it in the provider's list of created databases, dropping it) is the provider's, passed in as two
// functions.
//
// Locks: the queue's mutex guards its ready and used queues, the last preparation failure and
// the stop flag, and nothing else; it is never held while `prepare` or `release` runs, so those
// may take the provider's own locks (the provider's list of created databases has its own
// mutex, owned by the provider).
//
// After a stop (request_stop() or stop()): take() throws instead of waiting, the threads prepare
// and release nothing more (a preparation under way is finished, so what it created is recorded
// by `prepare`), start() starts threads that return at once, and give_back() keeps the clone
// until the next stop() or the queue's end closes it.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gamebot/eventstore/postgres_backend.hpp"
#include "gamebot/repo/connection.hpp"
#include "gamebot/repo/repo_facade.hpp"

namespace gamebot::harness::provision {

// A database or schema made ready ahead of the test that takes it: created from the verified
// template, marked, with a connected repo and a store backend on it, so a test's setup only
// pops it from a queue (zonky's embedded-postgres pre-creates databases the same way).
struct Prepared {
  std::string name;
  std::optional<repo::Repo> repo;
  std::shared_ptr<eventstore::PostgresBackend> backend;
};

class CloneQueue {
 public:
  // The connections one preparer or releaser thread keeps across calls; the functions connect
  // them when empty, and the queue closes them after a failure.
  struct ThreadConnections {
    std::unique_ptr<repo::Connection> admin;  // to the admin URL's database
    std::unique_ptr<repo::Connection> run;    // to the run database
  };
  // Prepares one (on a preparer thread). A throw is handed to the next take().
  using Prepare = std::function<Prepared(ThreadConnections&)>;
  // Drops a used one by name (on the releaser thread; its repo and backend are closed first). A
  // throw is logged and the name left to the provider's teardown.
  using Release = std::function<void(const std::string& name, ThreadConnections&)>;
  // Run once by the releaser thread as it starts, before the first release: work left by
  // earlier processes that must stay off the tests' path. A throw is logged. May be empty.
  using Tidy = std::function<void(ThreadConnections&)>;

  // `kind` names what is prepared ("database", "schema") in log lines.
  CloneQueue(std::string kind, Prepare prepare, Release release, Tidy tidy = {});
  ~CloneQueue();  // stop()
  CloneQueue(const CloneQueue&) = delete;
  CloneQueue& operator=(const CloneQueue&) = delete;

  // Starts `ready_target` preparer threads (each keeps one ready at a time; preparing is mostly
  // waiting on the server, so they overlap) and the releaser. Called once.
  void start(std::size_t ready_target);

  // The next prepared one; waits up to 30 s. Throws the last preparation failure if nothing is
  // ready, a timeout, or an internal error once stopping.
  Prepared take();

  // Hands an ended test's one to the releaser.
  void give_back(Prepared used);

  // Sets the stop flag and wakes every waiter, without waiting for the threads: safe from the
  // signal path (cancel_in_flight()).
  void request_stop() noexcept;

  // request_stop(), then joins the threads and closes the repos of what is left in both queues
  // (dropping them is the provider's teardown). Idempotent.
  void stop() noexcept;

  // After stop(): the names of those prepared and never taken by a test (unused, so the provider
  // may hand them on instead of dropping them).
  std::vector<std::string> never_taken();

 private:
  void prepare_loop();
  void release_loop();

  static constexpr std::size_t kMaxUsedBacklog = 8;  // preparation pauses past this many drops

  const std::string kind_;
  const Prepare prepare_;
  const Release release_;
  const Tidy tidy_;
  std::size_t ready_target_ = 1;          // set by start(), before the threads
  std::mutex mutex_;                      // guards what follows, up to the threads
  std::condition_variable prepare_cv_;    // the preparers: room in ready_, or stopping
  std::condition_variable release_cv_;    // the releaser: something in used_, or stopping
  std::condition_variable ready_cv_;      // take(): something in ready_, a failure, or stopping
  std::deque<Prepared> ready_;            // prepared, not yet taken
  std::deque<Prepared> used_;             // ended tests' databases/schemas, to drop
  std::exception_ptr prepare_failure_;    // the last preparation failure, for the next take()
  std::vector<std::string> never_taken_;  // set by stop(): ready_ when it stopped
  bool stopping_ = false;
  std::size_t in_flight_ = 0;           // being prepared now
  std::vector<std::thread> preparers_;  // touched only by start() and stop()
  std::thread releaser_;
};

}  // namespace gamebot::harness::provision
