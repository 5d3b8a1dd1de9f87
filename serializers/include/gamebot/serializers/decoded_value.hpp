#pragma once

#include <any>
#include <cstdint>
#include <string>
#include <typeinfo>
#include <utility>

#include "gamebot/serializers/error.hpp"
#include "gamebot/serializers/type_info.hpp"

namespace gamebot::serializers {

// A decoded value whose C++ type is known only at run time: what a reader that
// does not know T gets back (e.g. an event store reading $all). It always holds
// the registered *current* type, also when older bytes were upcast.
class DecodedValue {
 public:
  DecodedValue(const TypeInfo& type, std::uint32_t source_version, std::any value)
      : type_(&type), source_version_(source_version), value_(std::move(value)) {}

  const TypeInfo& type() const noexcept { return *type_; }
  const std::string& type_name() const noexcept { return type_->name(); }
  // Version of the value held (always the registered current version).
  std::uint32_t version() const noexcept { return type_->version(); }
  // Version of the bytes it was decoded from (lower if it was upcast).
  std::uint32_t source_version() const noexcept { return source_version_; }
  bool was_upcast() const noexcept { return source_version_ != type_->version(); }

  template <class T>
  bool holds() const noexcept {
    return std::any_cast<T>(&value_) != nullptr;
  }
  template <class T>
  const T* get_if() const noexcept {
    return std::any_cast<T>(&value_);
  }
  template <class T>
  T* get_if() noexcept {
    return std::any_cast<T>(&value_);
  }
  // Throws SerializationError (type_mismatch) if the value is not a T.
  template <class T>
  const T& get() const {
    if (const T* value = get_if<T>()) return *value;
    throw_mismatch(typeid(T));
  }
  // Moves the value out. Throws SerializationError (type_mismatch) if it is not a T.
  template <class T>
  T take() && {
    if (T* value = get_if<T>()) return std::move(*value);
    throw_mismatch(typeid(T));
  }

  const std::any& value() const noexcept { return value_; }

 private:
  [[noreturn]] void throw_mismatch(const std::type_info& requested) const;

  const TypeInfo* type_;
  std::uint32_t source_version_;
  std::any value_;
};

}  // namespace gamebot::serializers
