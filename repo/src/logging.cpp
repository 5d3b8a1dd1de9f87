#include "gamebot/repo/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace gamebot::repo {
namespace {
std::atomic<std::shared_ptr<spdlog::logger>>& slot() {
  static std::atomic<std::shared_ptr<spdlog::logger>> logger;
  return logger;
}

// stdout belongs to the test framework's reporters, so the kit's default logger writes to stderr,
// in the harness's format. Not in spdlog's registry (a user's drop_all() must not break it), and
// never destroyed, so cleanup running from atexit can still log.
std::shared_ptr<spdlog::logger> kit_default_logger() {
  static const auto* logger = [] {
    auto created = std::make_shared<spdlog::logger>(
        "gamebot", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    created->set_pattern("%^[gamebot %L]%$ %v");
    created->set_level(spdlog::level::info);
    return new std::shared_ptr<spdlog::logger>(std::move(created));
  }();
  return *logger;
}
}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  auto set = slot().load();
  return set ? set : kit_default_logger();
}

void set_logger(std::shared_ptr<spdlog::logger> logger) {
  slot().store(std::move(logger));
}

}  // namespace gamebot::repo
