#pragma once

#include <spdlog/logger.h>

#include <memory>

namespace gamebot::repo {

// The logger gamebot::repo writes to: the one set here, else spdlog's default logger. Messages
// never contain passwords. Thread-safe.
std::shared_ptr<spdlog::logger> logger();
// Replaces the repo logger (nullptr: back to spdlog's default logger). Thread-safe.
void set_logger(std::shared_ptr<spdlog::logger> logger);

}  // namespace gamebot::repo
