#include "gamebot/harness/retry.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "gamebot/core/error.hpp"

using namespace gamebot;
using namespace gamebot::harness;
using namespace std::chrono_literals;

namespace {

// A clock that only moves when the code under test sleeps (or an attempt "takes time").
struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};
  std::vector<std::chrono::nanoseconds> sleeps;
  double random = 1.0;  // 1.0: every wait is its cap

  RetryPolicy policy(std::chrono::milliseconds deadline) {
    RetryPolicy p;
    p.initial_delay = 100ms;
    p.max_delay = 1000ms;
    p.multiplier = 2.0;
    p.deadline = deadline;
    p.clock.now = [this] { return now; };
    p.clock.sleep = [this](std::chrono::nanoseconds d) {
      sleeps.push_back(d);
      now += d;
    };
    p.clock.random = [this] { return random; };
    return p;
  }
};

}  // namespace

TEST_CASE("a retryable fault is retried until the call succeeds", "[harness][retry]") {
  FakeClock clock;
  int calls = 0;
  RetryResult result = retry_with_deadline(
      [&] {
        if (++calls < 4) throw Error(FaultClass::connectivity, "connection refused");
      },
      clock.policy(30s));
  CHECK(result.attempts == 4);
  CHECK(calls == 4);
  // Full jitter at random()==1: the caps 100, 200, 400 ms.
  CHECK(clock.sleeps == std::vector<std::chrono::nanoseconds>{100ms, 200ms, 400ms});
  CHECK(result.elapsed == 700ms);
}

TEST_CASE("timeout and pool_exhausted are retried too", "[harness][retry]") {
  for (FaultClass fault : {FaultClass::timeout, FaultClass::pool_exhausted}) {
    FakeClock clock;
    int calls = 0;
    RetryResult result = retry_with_deadline(
        [&] {
          if (++calls == 1) throw Error(fault, "transient");
        },
        clock.policy(5s));
    CHECK(result.attempts == 2);
  }
}

TEST_CASE("an authentication fault is not retried and propagates unchanged", "[harness][retry]") {
  FakeClock clock;
  int calls = 0;
  try {
    retry_with_deadline(
        [&] {
          ++calls;
          throw Error(FaultClass::authentication, "password authentication failed", "28P01");
        },
        clock.policy(30s));
    FAIL("expected the authentication error");
  } catch (const RetryExhausted&) {
    FAIL("an authentication failure must not be wrapped as retries exhausted");
  } catch (const Error& e) {
    CHECK(e.fault() == FaultClass::authentication);
    CHECK(e.code() == "28P01");
  }
  CHECK(calls == 1);
  CHECK(clock.sleeps.empty());
}

TEST_CASE("non-retryable faults and foreign exceptions propagate at once", "[harness][retry]") {
  for (FaultClass fault : {FaultClass::configuration, FaultClass::provisioning, FaultClass::schema,
                           FaultClass::serialization, FaultClass::concurrency,
                           FaultClass::integrity, FaultClass::internal}) {
    FakeClock clock;
    int calls = 0;
    CHECK_THROWS_AS(retry_with_deadline(
                        [&] {
                          ++calls;
                          throw Error(fault, "no");
                        },
                        clock.policy(30s)),
                    Error);
    CHECK(calls == 1);
  }
  FakeClock clock;
  int calls = 0;
  CHECK_THROWS_AS(retry_with_deadline(
                      [&] {
                        ++calls;
                        throw std::logic_error("bug");
                      },
                      clock.policy(30s)),
                  std::logic_error);
  CHECK(calls == 1);
}

TEST_CASE("the deadline bounds the retries and the error says attempts, time and last error",
          "[harness][retry]") {
  FakeClock clock;
  int calls = 0;
  try {
    retry_with_deadline(
        [&](const RetryAttempt& attempt) {
          ++calls;
          CHECK(attempt.number == calls);
          CHECK(attempt.remaining <= 2s);
          CHECK(attempt.elapsed + attempt.remaining == 2s);
          throw Error(FaultClass::connectivity,
                      "connection to host=db port=5432 user=app database=app refused (attempt " +
                          std::to_string(calls) + ")");
        },
        clock.policy(2s));
    FAIL("expected RetryExhausted");
  } catch (const RetryExhausted& e) {
    // Waits 100, 200, 400, 800 ms reach 1.5 s; the next (1 s cap) is cut at the deadline.
    CHECK(e.attempts() == 5);
    CHECK(calls == 5);
    CHECK(e.elapsed() == 2s);
    CHECK(e.fault() == FaultClass::connectivity);
    CHECK(e.retryable());
    CHECK_THAT(e.message(), Catch::Contains("5 attempts") && Catch::Contains("2.000 s") &&
                                Catch::Contains("(attempt 5)") &&
                                Catch::Contains("host=db port=5432"));
    CHECK_THAT(e.last_error(), Catch::Contains("(attempt 5)"));
  }
  CHECK(clock.sleeps.back() == 500ms);  // clipped to the time left
  std::chrono::nanoseconds total{0};
  for (auto s : clock.sleeps) total += s;
  CHECK(total == 2s);
}

TEST_CASE("backoff waits grow exponentially up to max_delay and are fully jittered",
          "[harness][retry]") {
  FakeClock clock;
  clock.random = 0.5;
  int calls = 0;
  CHECK_THROWS_AS(retry_with_deadline(
                      [&] {
                        ++calls;
                        throw Error(FaultClass::timeout, "slow");
                      },
                      [&] {
                        RetryPolicy p = clock.policy(60s);
                        p.max_attempts = 7;
                        return p;
                      }()),
                  RetryExhausted);
  CHECK(calls == 7);
  // Caps 100, 200, 400, 800, 1000, 1000 ms; half of each.
  CHECK(clock.sleeps ==
        std::vector<std::chrono::nanoseconds>{50ms, 100ms, 200ms, 400ms, 500ms, 500ms});
}

TEST_CASE("the attempt budget is reported when it ends the retries", "[harness][retry]") {
  FakeClock clock;
  RetryPolicy policy = clock.policy(60s);
  policy.max_attempts = 2;
  try {
    retry_with_deadline([] { throw Error(FaultClass::pool_exhausted, "no connection"); }, policy);
    FAIL("expected RetryExhausted");
  } catch (const RetryExhausted& e) {
    CHECK(e.attempts() == 2);
    CHECK(e.fault() == FaultClass::pool_exhausted);
    CHECK_THAT(e.message(), Catch::Contains("attempt budget"));
  }
}

TEST_CASE("on_retry sees each failed attempt with its wait", "[harness][retry]") {
  FakeClock clock;
  RetryPolicy policy = clock.policy(10s);
  std::vector<int> seen;
  policy.on_retry = [&](const RetryAttempt& attempt, const Error& error,
                        std::chrono::nanoseconds wait) {
    seen.push_back(attempt.number);
    CHECK(error.fault() == FaultClass::connectivity);
    CHECK(wait > 0ns);
  };
  int calls = 0;
  retry_with_deadline(
      [&] {
        if (++calls < 3) throw Error(FaultClass::connectivity, "refused");
      },
      policy);
  CHECK(seen == std::vector<int>{1, 2});
}

TEST_CASE("the real clock honours a short deadline", "[harness][retry]") {
  RetryPolicy policy;
  policy.initial_delay = 5ms;
  policy.max_delay = 20ms;
  policy.deadline = 100ms;
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(
      retry_with_deadline([] { throw Error(FaultClass::connectivity, "refused"); }, policy),
      RetryExhausted);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed >= 100ms);
  CHECK(elapsed < 5s);
}

TEST_CASE("an invalid policy is a configuration error", "[harness][retry]") {
  RetryPolicy policy;
  policy.multiplier = 0.5;
  try {
    retry_with_deadline([] {}, policy);
    FAIL("expected a configuration error");
  } catch (const Error& e) {
    CHECK(e.fault() == FaultClass::configuration);
  }
}
