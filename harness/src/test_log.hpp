#pragma once

// The log lines of the test in progress, for its record in the run report: one spdlog sink fed by
// the harness logger (always), the kit's repo/store logger and spdlog's default logger (while
// attached). It keeps the last kMaxTestLogLines lines of the current test and counts the rest.
// The sink only records; every logger keeps its own sinks, so what reaches stderr is unchanged.

#include <spdlog/sinks/sink.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace gamebot::harness::detail {

struct CapturedLog {
  std::vector<std::string> lines;  // oldest first
  std::size_t dropped = 0;         // earlier lines left out
};

// The sink every captured logger writes to (thread-safe; records only between begin and take).
std::shared_ptr<spdlog::sinks::sink> test_log_sink();

// Starts capturing a test's lines (clears what an earlier test left).
void begin_test_log();
// Stops capturing and returns the test's lines.
CapturedLog take_test_log();

// Adds the sink to repo::logger() and spdlog's default logger (each replaced by a logger with its
// sinks and level plus this sink); detach puts the originals back. Call from the thread that
// starts and finishes the run; idempotent.
void attach_test_log();
void detach_test_log() noexcept;

}  // namespace gamebot::harness::detail
