#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace gamebot {

// The fault classes of DESIGN.md. Every error the project throws carries one,
// so a failure is reported as what it is (a serialization fault is never a
// "connection error").
enum class FaultClass {
  configuration,   // bad URL, bad option, missing binary
  connectivity,    // refused, reset, unreachable
  authentication,  // wrong password, no such role
  provisioning,    // cannot create/clone/drop a test database
  schema,          // migration drift, missing object
  serialization,   // encode/decode failure, unknown type
  concurrency,     // optimistic-concurrency conflict, serialization failure, deadlock
  pool_exhausted,  // no connection within the checkout timeout
  timeout,         // statement or operation deadline passed
  integrity,       // corrupt data, constraint violation
  internal,        // a bug: an invariant of ours does not hold
};

// Stable lower-case name ("pool_exhausted").
std::string_view to_string(FaultClass fault) noexcept;

// Only connectivity, timeout and pool_exhausted are ever retried (DESIGN.md).
bool is_retryable(FaultClass fault) noexcept;

// Root of the project's exception hierarchy. `code` is the SQLSTATE (PostgreSQL),
// the extended result code name (SQLite) or empty. what() is
// "<fault class>: <message>" so a one-line log names the class.
class Error : public std::runtime_error {
 public:
  Error(FaultClass fault, std::string message, std::string code = {});

  FaultClass fault() const noexcept { return fault_; }
  const std::string& code() const noexcept { return code_; }
  // The message without the "<fault class>: " prefix.
  const std::string& message() const noexcept { return message_; }
  bool retryable() const noexcept { return is_retryable(fault_); }

 private:
  FaultClass fault_;
  std::string code_;
  std::string message_;
};

}  // namespace gamebot
