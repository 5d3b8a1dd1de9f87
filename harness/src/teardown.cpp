#include "gamebot/harness/teardown.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "gamebot/core/error.hpp"
#include "log.hpp"

namespace gamebot::harness {

namespace detail {

struct TeardownEntry {
  std::uint64_t id = 0;
  std::string name;
  std::function<void()> action;
  pid_t owner = 0;  // a forked child never runs its parent's entries
  bool running = false;
  std::thread::id runner;
};

struct TeardownState {
  mutable std::mutex mutex;
  std::condition_variable finished;
  std::vector<TeardownEntry> entries;  // in registration order
  std::uint64_t next_id = 1;
};

}  // namespace detail

namespace {

using detail::TeardownEntry;
using detail::TeardownState;

std::vector<TeardownEntry>::iterator find_entry(TeardownState& state, std::uint64_t id) {
  return std::find_if(state.entries.begin(), state.entries.end(),
                      [id](const TeardownEntry& entry) { return entry.id == id; });
}

// Runs one pending entry with the lock released around the action.
void run_entry(TeardownState& state, std::unique_lock<std::mutex>& lock,
               std::vector<TeardownEntry>::iterator entry) {
  entry->running = true;
  entry->runner = std::this_thread::get_id();
  const std::uint64_t id = entry->id;
  std::string name = entry->name;
  std::function<void()> action = std::move(entry->action);
  lock.unlock();
  try {
    detail::log().debug("teardown: {}", name);
    if (action) action();
  } catch (const std::exception& e) {
    detail::log().error("teardown: {} failed: {}", name, e.what());
  } catch (...) {
    detail::log().error("teardown: {} failed with a non-standard exception", name);
  }
  action = nullptr;
  lock.lock();
  if (auto it = find_entry(state, id); it != state.entries.end()) state.entries.erase(it);
  state.finished.notify_all();
}

// --- process-wide hooks -------------------------------------------------------

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

TeardownState* g_process_state = nullptr;
std::atomic<int> g_pipe_write{-1};
std::atomic<int> g_pipe_read{-1};
std::atomic<pid_t> g_owner_pid{0};
std::atomic<int> g_signal_count{0};
std::atomic<int> g_first_signal{0};
std::mutex g_hooks_mutex;
bool g_hooks_installed = false;
std::terminate_handler g_previous_terminate = nullptr;

static_assert(std::atomic<int>::is_always_lock_free && std::atomic<pid_t>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

void write_stderr(const char* text) noexcept {
  ssize_t ignored = ::write(STDERR_FILENO, text, std::strlen(text));
  (void)ignored;
}

// Async-signal-safe: default disposition, then raise (delivered on return
// from a handler, at once elsewhere).
void reset_and_raise(int sig) noexcept {
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  ::sigaction(sig, &action, nullptr);
  ::raise(sig);
}

extern "C" void on_teardown_signal(int sig) {
  const int saved_errno = errno;
  if (::getpid() != g_owner_pid.load()) {
    reset_and_raise(sig);  // a forked child: not our cleanup to run
    errno = saved_errno;
    return;
  }
  // Once stopping, a SIGPIPE is only the echo of a write to the closed pipe (the cleanup's own
  // log lines included), not someone asking again: it must not escalate to an abandon.
  if (sig == SIGPIPE && g_signal_count.load() > 0) {
    errno = saved_errno;
    return;
  }
  const int count = g_signal_count.fetch_add(1) + 1;
  if (count == 1) g_first_signal.store(sig);
  if (count >= 3) {
    write_stderr("gamebot harness: cleanup abandoned; the next run reaps what is left\n");
    reset_and_raise(sig);
  } else {
    if (count == 2) {
      write_stderr(
          "gamebot harness: cleanup in progress, letting it finish (signal once more to abandon "
          "it; the next run reaps what is left)\n");
    }
    const auto byte = static_cast<unsigned char>(sig);
    ssize_t ignored = ::write(g_pipe_write.load(), &byte, 1);
    (void)ignored;
  }
  errno = saved_errno;
}

void watch_signals(int read_fd) {
  unsigned char byte = 0;
  for (;;) {
    ssize_t n = ::read(read_fd, &byte, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    return;  // the pipe is gone (fork child reset): nothing more to watch
  }
  const int sig = byte;
  detail::log().warn("received {}; cleaning up before exiting", ::strsignal(sig));
  stop_requests().run_all();
  process_teardown().run_all();
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  reset_and_raise(sig);
  ::_exit(128 + sig);  // only if the signal could not terminate us
}

[[noreturn]] void on_terminate() {
  process_teardown().run_all();
  if (g_previous_terminate != nullptr) g_previous_terminate();
  std::abort();
}

void run_process_teardown_at_exit() {
  process_teardown().run_all();
  // A signal arrived: the watcher re-raises it once the cleanup is done, and the process must
  // end by it, not by this exit's status (a run stopped by Ctrl-C never looks like a pass).
  if (g_signal_count.load() > 0 && g_owner_pid.load() == ::getpid() && g_pipe_write.load() >= 0)
    for (;;) ::pause();
}

// The locks are held across fork() so the child never inherits one locked by
// a thread that does not exist there.
void atfork_prepare() {
  g_hooks_mutex.lock();
  if (g_process_state != nullptr) g_process_state->mutex.lock();
}
void atfork_parent() {
  if (g_process_state != nullptr) g_process_state->mutex.unlock();
  g_hooks_mutex.unlock();
}
void atfork_child() {
  if (g_process_state != nullptr) g_process_state->mutex.unlock();
  // The watcher thread does not exist in the child; it may install its own.
  // Only async-signal-safe work here: the handlers see the pid mismatch.
  int write_fd = g_pipe_write.exchange(-1);
  int read_fd = g_pipe_read.exchange(-1);
  if (write_fd >= 0) ::close(write_fd);
  if (read_fd >= 0) ::close(read_fd);
  g_signal_count.store(0);
  g_first_signal.store(0);
  g_hooks_installed = false;
  g_hooks_mutex.unlock();
}

}  // namespace

// --- TeardownHandle -------------------------------------------------------------

TeardownHandle::TeardownHandle(std::shared_ptr<detail::TeardownState> state,
                               std::uint64_t id) noexcept
    : state_(std::move(state)), id_(id) {}

TeardownHandle::~TeardownHandle() {
  run_now();
}

TeardownHandle::TeardownHandle(TeardownHandle&& other) noexcept
    : state_(std::move(other.state_)), id_(std::exchange(other.id_, 0)) {}

TeardownHandle& TeardownHandle::operator=(TeardownHandle&& other) noexcept {
  if (this != &other) {
    run_now();
    state_ = std::move(other.state_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

void TeardownHandle::run_now() noexcept {
  if (!state_) return;
  auto state = std::move(state_);
  const std::uint64_t id = std::exchange(id_, 0);
  try {
    std::unique_lock lock(state->mutex);
    auto entry = find_entry(*state, id);
    if (entry == state->entries.end() || entry->owner != ::getpid()) return;
    if (!entry->running) {
      run_entry(*state, lock, entry);
      return;
    }
    if (entry->runner == std::this_thread::get_id()) return;  // called from its own action
    state->finished.wait(lock, [&] { return find_entry(*state, id) == state->entries.end(); });
  } catch (const std::exception& e) {
    detail::log().error("teardown: {}", e.what());
  }
}

void TeardownHandle::dismiss() noexcept {
  if (!state_) return;
  auto state = std::move(state_);
  const std::uint64_t id = std::exchange(id_, 0);
  try {
    std::lock_guard lock(state->mutex);
    auto entry = find_entry(*state, id);
    if (entry != state->entries.end() && !entry->running && entry->owner == ::getpid()) {
      state->entries.erase(entry);
    }
  } catch (const std::exception& e) {
    detail::log().error("teardown: {}", e.what());
  }
}

void TeardownHandle::release() noexcept {
  state_.reset();
  id_ = 0;
}

bool TeardownHandle::pending() const noexcept {
  if (!state_) return false;
  std::lock_guard lock(state_->mutex);
  auto entry = find_entry(*state_, id_);
  return entry != state_->entries.end() && !entry->running;
}

// --- TeardownRegistry -----------------------------------------------------------

TeardownRegistry::TeardownRegistry() : state_(std::make_shared<detail::TeardownState>()) {}

TeardownRegistry::~TeardownRegistry() {
  run_all();
}

TeardownHandle TeardownRegistry::add(std::string name, std::function<void()> action) {
  std::lock_guard lock(state_->mutex);
  TeardownEntry entry;
  entry.id = state_->next_id++;
  entry.name = std::move(name);
  entry.action = std::move(action);
  entry.owner = ::getpid();
  state_->entries.push_back(std::move(entry));
  return TeardownHandle(state_, state_->entries.back().id);
}

std::size_t TeardownRegistry::run_all() noexcept {
  std::size_t ran = 0;
  try {
    const pid_t self = ::getpid();
    std::unique_lock lock(state_->mutex);
    for (;;) {
      auto pending = std::find_if(
          state_->entries.rbegin(), state_->entries.rend(),
          [self](const TeardownEntry& entry) { return !entry.running && entry.owner == self; });
      if (pending == state_->entries.rend()) break;
      run_entry(*state_, lock, std::prev(pending.base()));
      ++ran;
    }
    const auto me = std::this_thread::get_id();
    state_->finished.wait(lock, [&] {
      return std::none_of(state_->entries.begin(), state_->entries.end(),
                          [&](const TeardownEntry& entry) {
                            return entry.running && entry.owner == self && entry.runner != me;
                          });
    });
  } catch (const std::exception& e) {
    detail::log().error("teardown: {}", e.what());
  }
  return ran;
}

std::size_t TeardownRegistry::pending() const noexcept {
  const pid_t self = ::getpid();
  std::lock_guard lock(state_->mutex);
  return static_cast<std::size_t>(
      std::count_if(state_->entries.begin(), state_->entries.end(),
                    [self](const TeardownEntry& e) { return !e.running && e.owner == self; }));
}

TeardownRegistry& process_teardown() {
  static TeardownRegistry* registry = [] {
    // Never destroyed: atexit handlers and the signal watcher may use it
    // after static destructors have started.
    auto* created = new TeardownRegistry();
    g_process_state = created->state_.get();
    std::atexit(run_process_teardown_at_exit);
    ::pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    return created;
  }();
  return *registry;
}

void install_process_teardown_hooks() {
  process_teardown();
  std::lock_guard lock(g_hooks_mutex);
  if (g_hooks_installed) return;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw Error(FaultClass::internal,
                std::string("teardown: cannot create the signal pipe: ") + std::strerror(errno));
  }
  g_pipe_read.store(fds[0]);
  g_pipe_write.store(fds[1]);
  g_owner_pid.store(::getpid());
  g_signal_count.store(0);
  g_first_signal.store(0);
  try {
    std::thread(watch_signals, fds[0]).detach();
  } catch (const std::system_error& e) {
    throw Error(FaultClass::internal,
                std::string("teardown: cannot start the signal watcher: ") + e.what());
  }
  for (int sig : kSignals) {
    struct sigaction previous {};
    ::sigaction(sig, nullptr, &previous);
    if (previous.sa_handler == SIG_IGN) continue;  // e.g. nohup: stay ignored
    struct sigaction action {};
    action.sa_handler = on_teardown_signal;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (int blocked : kSignals) sigaddset(&action.sa_mask, blocked);
    ::sigaction(sig, &action, nullptr);
  }
  std::terminate_handler previous = std::set_terminate(on_terminate);
  if (previous != on_terminate) g_previous_terminate = previous;
  g_hooks_installed = true;
}

int teardown_signal_count() noexcept {
  return g_signal_count.load();
}

int teardown_signal() noexcept {
  return g_first_signal.load();
}

TeardownRegistry& stop_requests() {
  // Never destroyed, like process_teardown(): the watcher may use it during static destruction.
  static TeardownRegistry* registry = new TeardownRegistry();
  return *registry;
}

TeardownScope::~TeardownScope() {
  process_teardown().run_all();
}

}  // namespace gamebot::harness
