#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

// Cleanup that always runs: at normal end, on exceptions, on std::exit, on
// SIGINT/SIGTERM/SIGHUP and on std::terminate.
//
// Guarantees: each registered action runs at most once, in LIFO order of
// registration when run together; actions run outside any lock and may throw
// (the exception is logged and the next action runs). A forked child never
// runs its parent's actions. SIGKILL, _exit and power loss run nothing: that
// is why every resource the harness creates carries a RunMarker written
// before the resource and removed after it, so the next run's reaper finds it.
//
// Signals (after install_process_teardown_hooks()): SIGINT, SIGTERM, SIGHUP and
// SIGPIPE. SIGPIPE is handled, not ignored: `tests | head -1` closes the pipe
// while the run still writes, and the run then stops like on Ctrl-C (the write
// itself returns EPIPE). Signals only *request* a stop; nothing is torn down in
// the handler or under a thread that may still use it:
//
//   1. the handler writes the signal number to a self-pipe (async-signal-safe);
//   2. the watcher thread runs stop_requests().run_all(): each owner of run
//      resources (DatabaseManager) refuses new work, cancels its in-flight
//      database work and returns once its threads are at a safe point (no
//      test between begin and end), or its grace period is over;
//   3. the watcher runs process_teardown().run_all() and waits for actions
//      other threads are running;
//   4. it restores the default disposition and re-raises the signal, so the
//      process dies "by the signal" as its parent expects (a shell reports
//      130/143/129/141 for SIGINT/SIGTERM/SIGHUP/SIGPIPE). A thread that
//      reaches exit() after a signal was received waits for that instead of
//      exiting with its own status.
//
// A second signal during the cleanup is absorbed (a note goes to stderr) so the
// cleanup is not abandoned halfway, and ends the owners' wait for their safe
// points early; a third one kills the process at once — and what is left then
// still carries its markers, so the next run reaps it.

namespace gamebot::harness {

namespace detail {
struct TeardownState;
}

class TeardownRegistry;
TeardownRegistry& process_teardown();

// Owner of one registered action (RAII): the destructor runs the action if it
// has not run yet. Move-only.
class TeardownHandle {
 public:
  TeardownHandle() noexcept = default;
  ~TeardownHandle();
  TeardownHandle(TeardownHandle&& other) noexcept;
  TeardownHandle& operator=(TeardownHandle&& other) noexcept;
  TeardownHandle(const TeardownHandle&) = delete;
  TeardownHandle& operator=(const TeardownHandle&) = delete;

  // Runs the action now unless it already ran; if another thread is running
  // it, waits until it has finished. Afterwards the handle is empty. Thread-safe.
  void run_now() noexcept;
  // Unregisters the action without running it. Thread-safe.
  void dismiss() noexcept;
  // Leaves the action registered (it runs with the registry) and empties the handle.
  void release() noexcept;
  // Whether the action is registered and has not started.
  bool pending() const noexcept;

 private:
  friend class TeardownRegistry;
  TeardownHandle(std::shared_ptr<detail::TeardownState> state, std::uint64_t id) noexcept;
  std::shared_ptr<detail::TeardownState> state_;
  std::uint64_t id_ = 0;
};

// A LIFO list of cleanup actions, each run exactly once. Thread-safe.
class TeardownRegistry {
 public:
  TeardownRegistry();
  // Runs what is still registered.
  ~TeardownRegistry();
  TeardownRegistry(const TeardownRegistry&) = delete;
  TeardownRegistry& operator=(const TeardownRegistry&) = delete;

  // Registers `action` under `name` (named in logs). The returned handle owns
  // it: discard the handle and the action runs at once — keep it, or
  // release() it to leave the action to run_all().
  [[nodiscard]] TeardownHandle add(std::string name, std::function<void()> action);

  // Runs every pending action of this process, last registered first, then
  // waits for actions that other threads are running. Re-entrant: an action
  // that calls run_all() (e.g. through std::exit) continues the list. Returns
  // the number of actions this call ran.
  std::size_t run_all() noexcept;

  // Actions registered by this process that have not started.
  std::size_t pending() const noexcept;

 private:
  friend TeardownRegistry& process_teardown();
  std::shared_ptr<detail::TeardownState> state_;
};

// The process-wide registry. Never destroyed; its pending actions run from an
// atexit handler (registered on first use), from TeardownScope, and — once
// install_process_teardown_hooks() was called — on signals and std::terminate.
TeardownRegistry& process_teardown();

// Installs, once per process (idempotent, thread-safe): handlers for SIGINT,
// SIGTERM, SIGHUP and SIGPIPE (signals ignored at the time stay ignored), the watcher
// thread, and a std::terminate handler that runs the cleanup before chaining
// to the previous one. Throws gamebot::Error(internal) if the pipe or thread
// cannot be created. Catch2's own fatal-signal handler restores the previous
// handlers before re-raising, so it chains to these.
void install_process_teardown_hooks();

// The number of SIGINT/SIGTERM/SIGHUP/SIGPIPE signals received so far by this
// process (the watcher's view). Thread-safe.
int teardown_signal_count() noexcept;

// The first of those signals (0: none yet). Thread-safe.
int teardown_signal() noexcept;

// Stop requests: actions the watcher runs on the first signal, before
// process_teardown(). Each brings its owner to a safe point (see step 2 above)
// and must return; an owner finishing normally runs or dismisses its own
// handle first (run_now() waits when the watcher is running it). Never destroyed.
TeardownRegistry& stop_requests();

// Put one in main(): its destructor runs process_teardown() on return and
// when an exception unwinds through it. (An exception nobody catches reaches
// std::terminate without unwinding; the terminate hook covers that case.)
class TeardownScope {
 public:
  TeardownScope() = default;
  ~TeardownScope();
  TeardownScope(const TeardownScope&) = delete;
  TeardownScope& operator=(const TeardownScope&) = delete;
};

}  // namespace gamebot::harness
