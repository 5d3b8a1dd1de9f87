#include "gamebot/repo/identifier.hpp"

#include <fmt/format.h>

#include "gamebot/core/error.hpp"

namespace gamebot::repo {

std::string quote_identifier(std::string_view name) {
  if (name.empty()) throw gamebot::Error(FaultClass::configuration, "empty SQL identifier");
  if (name.find('\0') != std::string_view::npos) {
    throw gamebot::Error(FaultClass::configuration, "SQL identifier contains a NUL byte");
  }
  if (name.size() > 63) {
    throw gamebot::Error(FaultClass::configuration,
                         fmt::format("SQL identifier '{}' is longer than 63 bytes", name));
  }
  std::string out;
  out.reserve(name.size() + 2);
  out.push_back('"');
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string quote_qualified(std::string_view schema, std::string_view name) {
  if (schema.empty()) return quote_identifier(name);
  return quote_identifier(schema) + "." + quote_identifier(name);
}

}  // namespace gamebot::repo
