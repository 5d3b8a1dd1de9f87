#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "gamebot/core/error.hpp"

namespace gamebot::harness {

// Time and randomness used by retry_with_deadline(); each empty member means
// the real one. Tests inject a fake clock whose sleep advances its now().
struct RetryClock {
  std::function<std::chrono::steady_clock::time_point()> now;  // empty: steady_clock::now
  std::function<void(std::chrono::nanoseconds)> sleep;         // empty: this_thread::sleep_for
  std::function<double()> random;  // uniform in [0, 1); empty: a per-thread PRNG
};

// What an attempt knows when it starts.
struct RetryAttempt {
  int number = 1;                         // 1 for the first attempt
  std::chrono::nanoseconds elapsed{0};    // since the first attempt started
  std::chrono::nanoseconds remaining{0};  // until the deadline (bound your own timeouts by it)
};

// Exponential backoff with full jitter under an overall deadline: after the
// n-th failure the wait is uniform in [0, min(max_delay, initial_delay *
// multiplier^(n-1))], cut short at the deadline.
struct RetryPolicy {
  std::chrono::milliseconds initial_delay{50};  // cap of the first wait
  std::chrono::milliseconds max_delay{2'000};   // cap of any wait
  double multiplier = 2.0;                      // growth of the cap per failure (>= 1)
  std::chrono::milliseconds deadline{30'000};   // overall budget from the first attempt
  int max_attempts = 0;                         // attempt budget; 0: the deadline alone bounds
  RetryClock clock;                             // injectable time and randomness
  // Called before each wait with the failed attempt, its error and the wait
  // (telemetry, logging). Empty: nothing.
  std::function<void(const RetryAttempt&, const Error&, std::chrono::nanoseconds wait)> on_retry;
};

// What retry_with_deadline() did when it succeeded.
struct RetryResult {
  int attempts = 0;                     // attempts made, the successful one included
  std::chrono::nanoseconds elapsed{0};  // from the first attempt to the success
};

// Thrown when retry_with_deadline() gives up. Its fault class, code and
// retryability are those of the last underlying error; the message says the
// attempts made, the elapsed time, the deadline and the last error.
class RetryExhausted : public Error {
 public:
  RetryExhausted(const Error& last, int attempts, std::chrono::nanoseconds elapsed,
                 std::chrono::milliseconds deadline, bool attempt_budget_spent);

  int attempts() const noexcept { return attempts_; }
  std::chrono::nanoseconds elapsed() const noexcept { return elapsed_; }
  // what() of the last underlying error.
  const std::string& last_error() const noexcept { return last_error_; }

 private:
  int attempts_;
  std::chrono::nanoseconds elapsed_;
  std::string last_error_;
};

// Runs `fn` until it returns. A gamebot::Error whose fault is retryable
// (connectivity, timeout, pool_exhausted; gamebot::is_retryable) is retried
// after a backoff wait; any other exception (other faults, authentication
// included, and non-gamebot exceptions) propagates unchanged at once. The first
// attempt is always made; no attempt starts at or after the deadline or beyond
// max_attempts, and then RetryExhausted is thrown. Thread-safe if `fn` and the
// policy's hooks are. Throws gamebot::Error(configuration) for a policy with negative
// durations or multiplier < 1.
RetryResult retry_with_deadline(const std::function<void(const RetryAttempt&)>& fn,
                                const RetryPolicy& policy = {});
RetryResult retry_with_deadline(const std::function<void()>& fn, const RetryPolicy& policy = {});

}  // namespace gamebot::harness
