#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "gamebot/repo/repo_facade.hpp"
#include "gamebot/repo/transaction.hpp"

namespace gamebot::repo {

// Sandbox settings.
struct SandboxOptions {
  std::string label{};               // owner name in errors and pool holder lists (the test name)
  bool shared = false;               // every thread without its own sandbox uses this one
  TransactionOptions transaction{};  // options of the pinned outer transaction
};

// Per-test isolation by transaction (the idea of Ecto's SQL sandbox). Construction checks out
// one connection, opens a transaction on it and registers it with the repo; from then on every
// Repo::acquire()/transaction() from the owning thread (the constructing thread) uses that
// connection, and transactions opened by code under test become savepoints. Other threads use it
// only after allow() (or in shared mode); without that they get OwnershipError naming the owner.
// The destructor (or close()) rolls everything back and returns the connection, also when the
// test threw. Move-only. allow/revoke/share are thread-safe.
class Sandbox {
 public:
  // Throws PoolExhaustedError / DatabaseError from the checkout or BEGIN, std::logic_error when
  // the calling thread already holds a lease of this repo or a second shared sandbox is asked for.
  explicit Sandbox(const Repo& repo, SandboxOptions options = {});
  Sandbox(Sandbox&&) noexcept;
  Sandbox& operator=(Sandbox&&) = delete;
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;
  ~Sandbox();

  // Lets `thread` use this sandbox's connection (serialized with the other users). Throws
  // std::logic_error once closed; revoke() is then a no-op.
  void allow(std::thread::id thread);
  void revoke(std::thread::id thread);
  // Turns shared mode on/off. Throws std::logic_error if another shared sandbox exists or this
  // one is closed.
  void set_shared(bool shared);

  // RAII allowance for the calling thread (e.g. inside a worker the test started).
  class Allowance {
   public:
    explicit Allowance(Sandbox& sandbox);
    ~Allowance();
    Allowance(const Allowance&) = delete;
    Allowance& operator=(const Allowance&) = delete;

   private:
    Sandbox& sandbox_;
    std::thread::id thread_;
  };

  std::thread::id owner() const noexcept;
  const std::string& label() const noexcept;
  // Rolls back and returns the connection now; idempotent. Throws gamebot::Error(timeout) if
  // another thread keeps using the connection beyond the repo's sandbox_wait_timeout (the
  // rollback then happens when that thread lets go).
  void close();
  bool closed() const noexcept;

 private:
  std::shared_ptr<internal::SandboxState> state_;
  std::thread::id owner_;
  std::string label_;
};

}  // namespace gamebot::repo
