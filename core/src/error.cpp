#include "gamebot/core/error.hpp"

#include <fmt/format.h>

namespace gamebot {

std::string_view to_string(FaultClass fault) noexcept {
  switch (fault) {
    case FaultClass::configuration:
      return "configuration";
    case FaultClass::connectivity:
      return "connectivity";
    case FaultClass::authentication:
      return "authentication";
    case FaultClass::provisioning:
      return "provisioning";
    case FaultClass::schema:
      return "schema";
    case FaultClass::serialization:
      return "serialization";
    case FaultClass::concurrency:
      return "concurrency";
    case FaultClass::pool_exhausted:
      return "pool_exhausted";
    case FaultClass::timeout:
      return "timeout";
    case FaultClass::integrity:
      return "integrity";
    case FaultClass::internal:
      return "internal";
  }
  return "internal";
}

bool is_retryable(FaultClass fault) noexcept {
  return fault == FaultClass::connectivity || fault == FaultClass::timeout ||
         fault == FaultClass::pool_exhausted;
}

Error::Error(FaultClass fault, std::string message, std::string code)
    : std::runtime_error(code.empty()
                             ? fmt::format("{}: {}", to_string(fault), message)
                             : fmt::format("{} [{}]: {}", to_string(fault), code, message)),
      fault_(fault),
      code_(std::move(code)),
      message_(std::move(message)) {}

}  // namespace gamebot
