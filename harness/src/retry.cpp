#include "gamebot/harness/retry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>

namespace gamebot::harness {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_of(std::chrono::nanoseconds d) {
  return std::chrono::duration<double>(d).count();
}

std::string exhausted_message(const Error& last, int attempts, std::chrono::nanoseconds elapsed,
                              std::chrono::milliseconds deadline, bool attempt_budget_spent) {
  return fmt::format("gave up after {} attempt{} in {:.3f} s ({}); last error: {}", attempts,
                     attempts == 1 ? "" : "s", seconds_of(elapsed),
                     attempt_budget_spent ? fmt::format("attempt budget of {} spent", attempts)
                                          : fmt::format("deadline {:.3f} s", seconds_of(deadline)),
                     last.what());
}

double default_random() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

void validate(const RetryPolicy& policy) {
  if (policy.initial_delay.count() < 0 || policy.max_delay.count() < 0 ||
      policy.deadline.count() < 0 || policy.max_attempts < 0 || !(policy.multiplier >= 1.0) ||
      !std::isfinite(policy.multiplier)) {
    throw Error(FaultClass::configuration,
                "retry policy: durations and max_attempts must be >= 0 and multiplier a finite "
                "number >= 1");
  }
}

}  // namespace

RetryExhausted::RetryExhausted(const Error& last, int attempts, std::chrono::nanoseconds elapsed,
                               std::chrono::milliseconds deadline, bool attempt_budget_spent)
    : Error(last.fault(),
            exhausted_message(last, attempts, elapsed, deadline, attempt_budget_spent),
            last.code()),
      attempts_(attempts),
      elapsed_(elapsed),
      last_error_(last.what()) {}

RetryResult retry_with_deadline(const std::function<void(const RetryAttempt&)>& fn,
                                const RetryPolicy& policy) {
  validate(policy);
  const auto now = [&] { return policy.clock.now ? policy.clock.now() : Clock::now(); };
  const auto sleep = [&](std::chrono::nanoseconds d) {
    if (policy.clock.sleep) {
      policy.clock.sleep(d);
    } else {
      std::this_thread::sleep_for(d);
    }
  };
  const auto random = [&] {
    double r = policy.clock.random ? policy.clock.random() : default_random();
    return std::clamp(r, 0.0, 1.0);
  };

  const Clock::time_point start = now();
  const Clock::time_point deadline = start + policy.deadline;
  double cap_ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(policy.initial_delay).count());
  const double max_ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(policy.max_delay).count());

  for (int attempt = 1;; ++attempt) {
    const Clock::time_point attempt_start = now();
    RetryAttempt info{attempt, attempt_start - start,
                      std::max(std::chrono::nanoseconds(0), deadline - attempt_start)};
    try {
      fn(info);
      return RetryResult{attempt, now() - start};
    } catch (const Error& error) {
      if (!error.retryable()) throw;
      const bool budget_spent = policy.max_attempts > 0 && attempt >= policy.max_attempts;
      Clock::time_point failed_at = now();
      if (budget_spent || failed_at >= deadline) {
        throw RetryExhausted(error, attempt, failed_at - start, policy.deadline, budget_spent);
      }
      const double wait_ns = random() * std::min(cap_ns, max_ns);
      auto wait = std::min(std::chrono::nanoseconds(static_cast<std::int64_t>(wait_ns)),
                           std::chrono::nanoseconds(deadline - failed_at));
      if (policy.on_retry) policy.on_retry(info, error, wait);
      sleep(wait);
      cap_ns = std::min(cap_ns * policy.multiplier, max_ns);
      if (Clock::time_point woke = now(); woke >= deadline) {
        throw RetryExhausted(error, attempt, woke - start, policy.deadline, false);
      }
    }
  }
}

RetryResult retry_with_deadline(const std::function<void()>& fn, const RetryPolicy& policy) {
  return retry_with_deadline([&fn](const RetryAttempt&) { fn(); }, policy);
}

}  // namespace gamebot::harness
