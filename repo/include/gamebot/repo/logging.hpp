#pragma once

#include <spdlog/logger.h>

#include <memory>

namespace gamebot::repo {

// The logger gamebot::repo and the event store write to: the one set here, else the kit's own
// logger on stderr (pattern "[gamebot L] message", as the harness logs; stdout is left to the
// test framework's reporters). Messages never contain passwords. Thread-safe.
std::shared_ptr<spdlog::logger> logger();
// Replaces the repo logger (nullptr: back to the kit's stderr logger). Thread-safe.
void set_logger(std::shared_ptr<spdlog::logger> logger);

}  // namespace gamebot::repo
