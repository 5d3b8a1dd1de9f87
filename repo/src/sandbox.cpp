#include "gamebot/repo/sandbox.hpp"

#include <fmt/format.h>

#include <sstream>
#include <stdexcept>

#include "gamebot/repo/logging.hpp"
#include "repo_state.hpp"

namespace gamebot::repo {
namespace internal {

SandboxState::~SandboxState() {
  finish();
}

void SandboxState::finish() noexcept {
  if (repo) {
    std::lock_guard lock(repo->mutex);
    repo->unregister(this);
  }
  transaction.reset();  // rolls back (noexcept)
  connection.release();
}

}  // namespace internal

namespace {
std::string thread_name(std::thread::id id) {
  std::ostringstream out;
  out << id;
  return out.str();
}
}  // namespace

Sandbox::Sandbox(const Repo& repo, SandboxOptions options) {
  const auto& rs = repo.state();
  auto self = std::this_thread::get_id();
  std::string label = options.label.empty() ? "sandbox" : options.label;
  auto check = [&] {
    if (rs->bindings.contains(self)) {
      throw std::logic_error("Sandbox: thread " + thread_name(self) +
                             " already holds a connection of this repo; open the sandbox first");
    }
    for (const auto& other : rs->sandboxes) {
      if (other->owner == self) {
        throw std::logic_error(fmt::format("Sandbox: thread {} already owns sandbox '{}'",
                                           thread_name(self), other->label));
      }
    }
    if (options.shared && rs->shared) {
      throw std::logic_error(fmt::format("Sandbox: sandbox '{}' is already shared; only one may be",
                                         rs->shared->label));
    }
  };
  {
    std::lock_guard lock(rs->mutex);
    check();
  }
  auto state = std::make_shared<internal::SandboxState>();
  state->label = label;
  state->owner = self;
  state->connection = rs->pool->checkout("sandbox '" + label + "'");
  state->transaction.emplace(*state->connection, options.transaction);
  {
    std::lock_guard lock(rs->mutex);
    check();
    state->repo = rs;
    rs->sandboxes.push_back(state);
    if (options.shared) rs->shared = state;
  }
  owner_ = state->owner;
  label_ = state->label;
  state_ = std::move(state);
}

Sandbox::Sandbox(Sandbox&& other) noexcept
    : state_(std::move(other.state_)), owner_(other.owner_), label_(std::move(other.label_)) {}

Sandbox::~Sandbox() {
  try {
    close();
  } catch (const std::exception& e) {
    logger()->error("{}", e.what());
  }
}

void Sandbox::allow(std::thread::id thread) {
  if (!state_) throw std::logic_error("Sandbox::allow on a closed sandbox");
  std::lock_guard lock(state_->repo->mutex);
  state_->allowed.insert(thread);
}

void Sandbox::revoke(std::thread::id thread) {
  if (!state_) return;  // closed: nobody can use it anyway
  std::lock_guard lock(state_->repo->mutex);
  state_->allowed.erase(thread);
}

void Sandbox::set_shared(bool shared) {
  if (!state_) throw std::logic_error("Sandbox::set_shared on a closed sandbox");
  auto& rs = *state_->repo;
  std::lock_guard lock(rs.mutex);
  if (shared) {
    if (rs.shared && rs.shared != state_) {
      throw std::logic_error(fmt::format("Sandbox: sandbox '{}' is already shared; only one may be",
                                         rs.shared->label));
    }
    rs.shared = state_;
  } else if (rs.shared == state_) {
    rs.shared.reset();
  }
}

Sandbox::Allowance::Allowance(Sandbox& sandbox)
    : sandbox_(sandbox), thread_(std::this_thread::get_id()) {
  sandbox_.allow(thread_);
}

Sandbox::Allowance::~Allowance() {
  sandbox_.revoke(thread_);
}

std::thread::id Sandbox::owner() const noexcept {
  return owner_;
}

const std::string& Sandbox::label() const noexcept {
  return label_;
}

bool Sandbox::closed() const noexcept {
  return state_ == nullptr;
}

void Sandbox::close() {
  if (!state_) return;
  std::shared_ptr<internal::SandboxState> state = std::move(state_);
  {
    std::lock_guard lock(state->repo->mutex);
    state->repo->unregister(state.get());
  }
  auto timeout = state->repo->options.sandbox_wait_timeout;
  std::optional<std::thread::id> lingering;
  {
    std::unique_lock use(state->use_mutex);
    // A lease still held by the closing thread itself cannot be waited for.
    bool free =
        state->user != std::this_thread::get_id() &&
        state->use_released.wait_for(use, timeout, [&] { return !state->user.has_value(); });
    state->closed = true;
    if (!free) lingering = state->user;
  }
  state->use_released.notify_all();
  if (lingering) {
    // The last lease to let go destroys the state, which rolls back then.
    throw gamebot::Error(
        FaultClass::timeout,
        fmt::format("sandbox '{}' closed while thread {} still uses its connection (waited {} "
                    "ms); it is rolled back when that thread releases it",
                    state->label, thread_name(*lingering), timeout.count()));
  }
  state->finish();
}

}  // namespace gamebot::repo
