#include "gamebot/repo/repo_facade.hpp"

#include <fmt/format.h>

#include <sstream>

#include "gamebot/repo/errors.hpp"
#include "repo_state.hpp"

namespace gamebot::repo {
namespace internal {
namespace {
std::string thread_name(std::thread::id id) {
  std::ostringstream out;
  out << id;
  return out.str();
}
}  // namespace

std::shared_ptr<SandboxState> RepoState::sandbox_for(std::thread::id thread) const {
  for (const auto& sandbox : sandboxes) {
    if (sandbox->owner == thread) return sandbox;
  }
  for (const auto& sandbox : sandboxes) {
    if (sandbox->allowed.contains(thread)) return sandbox;
  }
  return shared;
}

void RepoState::unregister(const SandboxState* sandbox) {
  std::erase_if(sandboxes, [&](const auto& s) { return s.get() == sandbox; });
  if (shared.get() == sandbox) shared.reset();
}

std::string RepoState::describe_sandboxes() const {
  std::string out;
  for (const auto& sandbox : sandboxes) {
    if (!out.empty()) out += "; ";
    out +=
        fmt::format("sandbox '{}' owned by thread {}", sandbox->label, thread_name(sandbox->owner));
    if (!sandbox->allowed.empty()) {
      out += " (allowed:";
      for (auto id : sandbox->allowed) {
        out += ' ';
        out += thread_name(id);
      }
      out += ")";
    }
  }
  return out;
}

}  // namespace internal

ConnectionLease::ConnectionLease() noexcept = default;

ConnectionLease::ConnectionLease(ConnectionLease&& other) noexcept
    : repo_(std::move(other.repo_)),
      connection_(std::exchange(other.connection_, nullptr)),
      pooled_(std::move(other.pooled_)),
      sandbox_(std::move(other.sandbox_)),
      thread_(other.thread_),
      nested_(other.nested_),
      reclaimed_(std::move(other.reclaimed_)) {}

ConnectionLease& ConnectionLease::operator=(ConnectionLease&& other) noexcept {
  if (this != &other) {
    release();
    repo_ = std::move(other.repo_);
    connection_ = std::exchange(other.connection_, nullptr);
    pooled_ = std::move(other.pooled_);
    sandbox_ = std::move(other.sandbox_);
    thread_ = other.thread_;
    nested_ = other.nested_;
    reclaimed_ = std::move(other.reclaimed_);
  }
  return *this;
}

ConnectionLease::~ConnectionLease() {
  release();
}

bool ConnectionLease::sandboxed() const noexcept {
  if (sandbox_) return true;
  return false;
}

bool ConnectionLease::reclaimed() const noexcept {
  return reclaimed_ && reclaimed_->load();
}

void ConnectionLease::release() noexcept {
  if (connection_ == nullptr) return;
  bool inert = false;
  {
    std::lock_guard lock(repo_->mutex);
    inert = reclaimed();
    if (!inert) {
      auto it = repo_->bindings.find(thread_);
      if (it != repo_->bindings.end() && --it->second.depth <= 0) repo_->bindings.erase(it);
    }
  }
  connection_ = nullptr;
  reclaimed_.reset();
  if (inert) {
    // The sandbox may be another thread's by now; a pool checkout is still this lease's own
    // (or was taken back by Pool::reclaim_held_by, which closes it on release).
    sandbox_.reset();
    pooled_.release();
    repo_.reset();
    return;
  }
  if (nested_) {
    repo_.reset();
    return;
  }
  if (sandbox_) {
    {
      std::lock_guard lock(sandbox_->use_mutex);
      sandbox_->user.reset();
    }
    sandbox_->use_released.notify_all();
    sandbox_.reset();
  }
  pooled_.release();
  repo_.reset();
}

Repo Repo::open(const DatabaseUrl& url, RepoOptions options) {
  auto pool = Pool::create(url, options.pool);
  return Repo(std::move(pool), std::move(options));
}

Repo Repo::open(std::string_view url, RepoOptions options) {
  return open(DatabaseUrl::parse(url), std::move(options));
}

Repo::Repo(std::shared_ptr<Pool> pool, RepoOptions options)
    : state_(std::make_shared<internal::RepoState>()) {
  state_->pool = std::move(pool);
  state_->options = std::move(options);
}

Pool& Repo::pool() const noexcept {
  return *state_->pool;
}
const std::shared_ptr<Pool>& Repo::shared_pool() const noexcept {
  return state_->pool;
}
const DatabaseUrl& Repo::url() const noexcept {
  return state_->pool->url();
}
Driver Repo::driver() const noexcept {
  return state_->pool->driver();
}

ConnectionLease Repo::acquire(std::string_view label) const {
  internal::RepoState& s = *state_;
  auto self = std::this_thread::get_id();
  ConnectionLease lease;
  lease.thread_ = self;
  lease.repo_ = state_;
  std::shared_ptr<internal::SandboxState> sandbox;
  {
    std::lock_guard lock(s.mutex);
    auto bound = s.bindings.find(self);
    if (bound != s.bindings.end()) {
      ++bound->second.depth;
      lease.connection_ = bound->second.connection;
      lease.nested_ = true;
      lease.reclaimed_ = bound->second.reclaimed;
      return lease;
    }
    sandbox = s.sandbox_for(self);
    if (!sandbox && !s.sandboxes.empty()) {
      throw OwnershipError(fmt::format(
          "thread {} used the repo for {} while test sandboxes are active, but it owns none, is "
          "allowed into none and no sandbox is shared: {}. Call Sandbox::allow(thread id) or "
          "use a shared sandbox so the thread joins the test's transaction",
          internal::thread_name(self), url().redacted(), s.describe_sandboxes()));
    }
  }
  Connection* connection = nullptr;
  std::weak_ptr<internal::SandboxState> lent_by = sandbox;
  // Allocated before the sandbox is taken, so a bad_alloc leaves nothing in use.
  lease.reclaimed_ = std::make_shared<std::atomic<bool>>(false);
  if (sandbox) {
    std::unique_lock use(sandbox->use_mutex);
    bool free = sandbox->use_released.wait_for(use, s.options.sandbox_wait_timeout, [&] {
      return !sandbox->user.has_value() || sandbox->closed;
    });
    if (sandbox->closed) {
      throw OwnershipError(fmt::format("sandbox '{}' was closed", sandbox->label));
    }
    if (!free) {
      throw gamebot::Error(
          FaultClass::timeout,
          fmt::format("thread {} waited {} ms for the connection of sandbox '{}' (owner thread "
                      "{}), which thread {} is still using",
                      internal::thread_name(self), s.options.sandbox_wait_timeout.count(),
                      sandbox->label, internal::thread_name(sandbox->owner),
                      internal::thread_name(*sandbox->user)));
    }
    sandbox->user = self;
    connection = sandbox->connection.get();
    lease.sandbox_ = std::move(sandbox);
  } else {
    lease.pooled_ = s.pool->checkout(label);
    connection = lease.pooled_.get();
  }
  {
    std::lock_guard lock(s.mutex);
    s.bindings[self] = internal::Binding{connection, 1, std::move(lent_by), lease.reclaimed_};
  }
  lease.connection_ = connection;
  return lease;
}

std::optional<ReclaimedLease> Repo::reclaim_held_by(std::thread::id thread) {
  internal::Binding binding;
  {
    std::lock_guard lock(state_->mutex);
    auto bound = state_->bindings.find(thread);
    if (bound == state_->bindings.end()) return std::nullopt;
    binding = std::move(bound->second);
    state_->bindings.erase(bound);
    binding.reclaimed->store(true);
  }
  ReclaimedLease taken;
  taken.connection_id = binding.connection->id();
  taken.leases = binding.depth;
  const int own_depth = binding.connection->transaction_depth();
  if (auto sandbox = binding.sandbox.lock()) {
    taken.sandboxed = true;
    taken.open_transaction = own_depth > 1;  // level 1 is the sandbox's own transaction
    taken.transaction_begun_at = binding.connection->transaction_begun_at(2);
    {
      std::lock_guard use(sandbox->use_mutex);
      if (sandbox->user == thread) sandbox->user.reset();
    }
    sandbox->use_released.notify_all();
  } else {
    taken.open_transaction = own_depth > 0;
    taken.transaction_begun_at = binding.connection->transaction_begun_at(1);
  }
  return taken;
}

Transaction Repo::transaction(const TransactionOptions& options, std::string_view label,
                              const char* file, unsigned line) const {
  return Transaction(acquire(label), options, file, line);
}

bool Repo::sandbox_active() const {
  std::lock_guard lock(state_->mutex);
  return !state_->sandboxes.empty();
}

bool Repo::current_thread_sandboxed() const {
  std::lock_guard lock(state_->mutex);
  auto self = std::this_thread::get_id();
  auto bound = state_->bindings.find(self);
  if (bound != state_->bindings.end()) {
    for (const auto& sandbox : state_->sandboxes) {
      if (sandbox->connection.get() == bound->second.connection) return true;
    }
    return false;
  }
  return state_->sandbox_for(self) != nullptr;
}

}  // namespace gamebot::repo
