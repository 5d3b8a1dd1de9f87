#include "gamebot/repo/param.hpp"

#include <stdexcept>
#include <string>

namespace gamebot::repo {

Param::Param(Timestamp time) noexcept : type_(Type::timestamp) {
  auto micros = std::chrono::floor<std::chrono::microseconds>(time.time_since_epoch());
  int_ = micros.count();
}

std::int64_t Param::checked_unsigned(std::uint64_t value) {
  if (value > static_cast<std::uint64_t>(INT64_MAX)) {
    throw std::out_of_range("statement parameter " + std::to_string(value) +
                            " does not fit a signed 64-bit integer");
  }
  return static_cast<std::int64_t>(value);
}

std::string_view Param::type_name() const noexcept {
  switch (type_) {
    case Type::null:
      return "null";
    case Type::boolean:
      return "bool";
    case Type::int64:
      return "int64";
    case Type::float64:
      return "double";
    case Type::text:
      return "text";
    case Type::bytes:
      return "bytes";
    case Type::uuid:
      return "uuid";
    case Type::timestamp:
      return "timestamp";
  }
  return "null";
}

}  // namespace gamebot::repo
