#include "gamebot/harness/logging.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <string>

#include "gamebot/core/error.hpp"
#include "log.hpp"
#include "test_log.hpp"

namespace gamebot::harness {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace:
      return spdlog::level::trace;
    case LogLevel::debug:
      return spdlog::level::debug;
    case LogLevel::info:
      return spdlog::level::info;
    case LogLevel::warn:
      return spdlog::level::warn;
    case LogLevel::error:
      return spdlog::level::err;
    case LogLevel::critical:
      return spdlog::level::critical;
    case LogLevel::off:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

LogLevel from_spdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return LogLevel::trace;
    case spdlog::level::debug:
      return LogLevel::debug;
    case spdlog::level::info:
      return LogLevel::info;
    case spdlog::level::warn:
      return LogLevel::warn;
    case spdlog::level::err:
      return LogLevel::error;
    case spdlog::level::critical:
      return LogLevel::critical;
    default:
      return LogLevel::off;
  }
}

}  // namespace

namespace detail {

spdlog::logger& log() {
  // Not registered in spdlog's global registry: a user's spdlog::drop_all()
  // or set_level() must not silence or break the harness. Never destroyed, so
  // cleanup running from atexit can still log.
  static spdlog::logger* logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    auto* created = new spdlog::logger("gamebot.harness", std::move(sink));
    created->set_pattern("%^[gamebot %L]%$ %v");
    // After set_pattern, which would give it stderr's format: the test log keeps its own.
    created->sinks().push_back(test_log_sink());
    created->set_level(spdlog::level::info);
    created->flush_on(spdlog::level::trace);
    return created;
  }();
  return *logger;
}

}  // namespace detail

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::trace:
      return "trace";
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
    case LogLevel::critical:
      return "critical";
    case LogLevel::off:
      return "off";
  }
  return "info";
}

LogLevel parse_log_level(std::string_view text, std::string_view option_name) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (LogLevel level : {LogLevel::trace, LogLevel::debug, LogLevel::info, LogLevel::warn,
                         LogLevel::error, LogLevel::critical, LogLevel::off}) {
    if (lower == to_string(level)) return level;
  }
  if (lower == "warning") return LogLevel::warn;
  throw Error(FaultClass::configuration,
              std::string(option_name) + ": invalid log level '" + std::string(text) +
                  "' (expected trace, debug, info, warn, error, critical or off)");
}

void set_log_level(LogLevel level) {
  detail::log().set_level(to_spdlog(level));
}

LogLevel log_level() {
  return from_spdlog(detail::log().level());
}

}  // namespace gamebot::harness
