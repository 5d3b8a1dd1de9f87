#pragma once

#include <spdlog/spdlog.h>

namespace gamebot::harness::detail {

// The harness logger ("gamebot.harness", stderr, thread-safe). Created on first
// use at level info.
spdlog::logger& log();

}  // namespace gamebot::harness::detail
