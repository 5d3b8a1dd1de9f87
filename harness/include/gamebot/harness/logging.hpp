#pragma once

#include <string_view>

namespace gamebot::harness {

// Verbosity of the harness's own log (spdlog logger "gamebot.harness", on stderr).
// At the default `info` the harness prints one summary line per phase and
// nothing else; details are at `debug`.
enum class LogLevel { trace, debug, info, warn, error, critical, off };

// Stable lower-case name ("warn").
std::string_view to_string(LogLevel level) noexcept;

// Parses trace|debug|info|warn|warning|error|critical|off (case-insensitive).
// Throws gamebot::Error(configuration) naming `option_name` on anything else.
LogLevel parse_log_level(std::string_view text, std::string_view option_name = "--log-level");

// Sets the level of the harness logger. Thread-safe.
void set_log_level(LogLevel level);

// The current level of the harness logger. Thread-safe.
LogLevel log_level();

}  // namespace gamebot::harness
