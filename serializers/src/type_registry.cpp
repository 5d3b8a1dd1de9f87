#include "gamebot/serializers/type_registry.hpp"

#include <cxxabi.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "gamebot/core/closest_names.hpp"
#include "gamebot/serializers/type_tag.hpp"

namespace gamebot::serializers {
namespace internal {

std::string type_display_name(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> demangled(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && demangled ? std::string(demangled.get()) : std::string(type.name());
}

}  // namespace internal

namespace {

[[noreturn]] void throw_registration(SerializationErrorKind kind, std::string_view name,
                                     std::optional<std::uint32_t> version, std::string detail) {
  SerializationErrorInfo info;
  info.kind = kind;
  info.type_name = std::string(name);
  info.version = version;
  info.detail = std::move(detail);
  throw SerializationError(std::move(info));
}

}  // namespace

// ---- TypeInfo ---------------------------------------------------------------

TypeInfo::TypeInfo(std::string name, std::uint32_t version, const internal::TypeOps& ops,
                   std::vector<std::any> samples)
    : name_(std::move(name)), version_(version), ops_(&ops), samples_(std::move(samples)) {}

std::string TypeInfo::type_display_name() const {
  return internal::type_display_name(type());
}

std::vector<std::uint32_t> TypeInfo::upcast_versions() const {
  std::vector<std::uint32_t> versions;
  versions.reserve(upcasters_.size());
  for (const auto& [version, step] : upcasters_) versions.push_back(version);
  return versions;
}

const internal::Upcaster* TypeInfo::upcaster(std::uint32_t version) const noexcept {
  const auto it = upcasters_.find(version);
  return it == upcasters_.end() ? nullptr : &it->second;
}

// ---- DecodedValue -----------------------------------------------------------

void DecodedValue::throw_mismatch(const std::type_info& requested) const {
  SerializationErrorInfo info;
  info.kind = SerializationErrorKind::type_mismatch;
  info.type_name = type_->name();
  info.version = type_->version();
  info.detail = fmt::format("the value is a {}, not a {}", type_->type_display_name(),
                            internal::type_display_name(requested));
  throw SerializationError(std::move(info));
}

// ---- TypeRegistry: registration ----------------------------------------------

TypeRegistry::TypeRegistry() = default;
TypeRegistry::~TypeRegistry() = default;
TypeRegistry::TypeRegistry(TypeRegistry&&) noexcept = default;
TypeRegistry& TypeRegistry::operator=(TypeRegistry&&) noexcept = default;

void TypeRegistry::add_type(std::unique_ptr<TypeInfo> info) {
  const std::string& name = info->name();
  if (!is_valid_type_name(name)) {
    throw_registration(SerializationErrorKind::invalid_registration, name, info->version(),
                       "a type name is 1 to 128 characters from [A-Za-z0-9_.-] and does not start "
                       "with '.' or '-'");
  }
  if (info->version() == 0) {
    throw_registration(SerializationErrorKind::invalid_registration, name, info->version(),
                       "schema versions start at 1");
  }
  if (info->samples().empty()) {
    throw_registration(SerializationErrorKind::invalid_registration, name, info->version(),
                       "register at least one sample value (the conformance suite needs it)");
  }
  if (const TypeInfo* existing = find(name)) {
    throw_registration(
        SerializationErrorKind::duplicate_name, name, info->version(),
        fmt::format("the name is already registered for C++ type {} (v{}); "
                    "cannot register it again for {}",
                    existing->type_display_name(), existing->version(), info->type_display_name()));
  }
  if (const TypeInfo* existing = find(info->type())) {
    throw_registration(SerializationErrorKind::duplicate_type, name, info->version(),
                       fmt::format("C++ type {} is already registered as '{}'; cannot register it "
                                   "again as '{}'",
                                   info->type_display_name(), existing->name(), name));
  }
  if (auto it = upcaster_types_.find(std::type_index(info->type())); it != upcaster_types_.end()) {
    throw_registration(SerializationErrorKind::duplicate_type, name, info->version(),
                       fmt::format("C++ type {} is already registered as the old version {}; "
                                   "cannot register it again as '{}'",
                                   info->type_display_name(), it->second, name));
  }
  TypeInfo* stored = info.get();
  owned_.push_back(std::move(info));
  ordered_.push_back(stored);
  by_name_.emplace(stored->name(), stored);
  by_type_.emplace(std::type_index(stored->type()), stored);
}

void TypeRegistry::add_upcaster_step(std::string_view name, internal::Upcaster step) {
  const auto found_it = by_name_.find(name);
  if (found_it == by_name_.end()) {
    throw_registration(SerializationErrorKind::invalid_registration, name, step.from_version,
                       "register the current version of the type before its upcasters");
  }
  TypeInfo& info = *found_it->second;
  const std::string old_type = internal::type_display_name(*step.ops->type);
  const std::string next_type = internal::type_display_name(*step.to_type);
  if (step.from_version == 0 || step.from_version >= info.version()) {
    throw_registration(SerializationErrorKind::invalid_registration, name, step.from_version,
                       fmt::format("an upcaster starts at a version from 1 to {} (the current "
                                   "version is {})",
                                   info.version() - 1, info.version()));
  }
  if (info.upcasters_.contains(step.from_version)) {
    throw_registration(
        SerializationErrorKind::invalid_registration, name, step.from_version,
        fmt::format("an upcaster from v{} is already registered", step.from_version));
  }
  const std::type_index old_index(*step.ops->type);
  if (const TypeInfo* existing = find(*step.ops->type)) {
    throw_registration(
        SerializationErrorKind::duplicate_type, name, step.from_version,
        fmt::format("C++ type {} is registered as '{}' v{}; it cannot also be the "
                    "old version v{} of '{}'",
                    old_type, existing->name(), existing->version(), step.from_version, name));
  }
  if (auto it = upcaster_types_.find(old_index); it != upcaster_types_.end()) {
    throw_registration(SerializationErrorKind::duplicate_type, name, step.from_version,
                       fmt::format("C++ type {} is already the old version {}; it cannot also be "
                                   "{}",
                                   old_type, it->second, format_type_tag(name, step.from_version)));
  }
  // The chain must line up with its neighbours, whichever was registered first.
  const std::uint32_t next_version = step.from_version + 1;
  const std::type_info* expected_next = nullptr;
  if (next_version == info.version()) {
    expected_next = &info.type();
  } else if (const internal::Upcaster* next = info.upcaster(next_version)) {
    expected_next = next->ops->type;
  }
  if (expected_next != nullptr && *expected_next != *step.to_type) {
    throw_registration(
        SerializationErrorKind::invalid_registration, name, step.from_version,
        fmt::format("the upcaster from v{} returns {}, but v{} is {}", step.from_version, next_type,
                    next_version, internal::type_display_name(*expected_next)));
  }
  if (const internal::Upcaster* previous = info.upcaster(step.from_version - 1)) {
    if (*previous->to_type != *step.ops->type) {
      throw_registration(
          SerializationErrorKind::invalid_registration, name, step.from_version,
          fmt::format("the upcaster from v{} returns {}, but the upcaster from v{} "
                      "takes {}",
                      step.from_version - 1, internal::type_display_name(*previous->to_type),
                      step.from_version, old_type));
    }
  }
  upcaster_types_.emplace(old_index, format_type_tag(name, step.from_version));
  const std::uint32_t from_version = step.from_version;
  info.upcasters_.emplace(from_version, std::move(step));
}

// ---- TypeRegistry: lookup ---------------------------------------------------

const TypeInfo* TypeRegistry::find(std::string_view name) const noexcept {
  const auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TypeInfo* TypeRegistry::find(const std::type_info& type) const noexcept {
  const auto it = by_type_.find(std::type_index(type));
  return it == by_type_.end() ? nullptr : it->second;
}

const TypeInfo& TypeRegistry::at(std::string_view name) const {
  if (const TypeInfo* info = find(name)) return *info;
  SerializationErrorInfo error;
  error.kind = SerializationErrorKind::unknown_type;
  error.type_name = std::string(name);
  error.suggestions = closest_names(name);
  if (error.suggestions.empty()) {
    std::vector<std::string_view> names;
    for (const TypeInfo* info : ordered_) {
      if (names.size() == 8) break;
      names.push_back(info->name());
    }
    error.detail = names.empty() ? "the registry is empty"
                                 : fmt::format("registered: {}{}", fmt::join(names, ", "),
                                               ordered_.size() > names.size() ? ", ..." : "");
  }
  throw SerializationError(std::move(error));
}

const TypeInfo& TypeRegistry::at(const std::type_info& type) const {
  if (const TypeInfo* info = find(type)) return *info;
  SerializationErrorInfo error;
  error.kind = SerializationErrorKind::unregistered_type;
  error.type_name = internal::type_display_name(type);
  error.detail = "register it with TypeRegistry::register_type before encoding it";
  throw SerializationError(std::move(error));
}

std::vector<std::string> TypeRegistry::closest_names(std::string_view name,
                                                     std::size_t limit) const {
  std::vector<std::string_view> names;
  names.reserve(ordered_.size());
  for (const TypeInfo* info : ordered_) names.push_back(info->name());
  return gamebot::closest_names(name, names, limit);
}

// ---- TypeRegistry: encode/decode --------------------------------------------

Encoded TypeRegistry::encode_erased(const TypeInfo& info, const void* value, Codec codec) const {
  Encoded encoded{info.name(), info.version(), codec, {}};
  info.ops().encode(value, encoded.bytes, info.size_hint(codec),
                    {info.name(), info.version(), codec});
  info.note_size(codec, encoded.bytes.size());
  return encoded;
}

Encoded TypeRegistry::encode(const DecodedValue& value, Codec codec) const {
  return encode_any(value.value(), codec);
}

Encoded TypeRegistry::encode_any(const std::any& value, Codec codec) const {
  if (!value.has_value()) {
    SerializationErrorInfo error;
    error.kind = SerializationErrorKind::unregistered_type;
    error.codec = codec;
    error.detail = "the std::any is empty";
    throw SerializationError(std::move(error));
  }
  const TypeInfo& info = at(value.type());
  return encode_erased(info, info.ops().address(value), codec);
}

void TypeRegistry::throw_type_mismatch(const TypeInfo& info,
                                       const std::type_info& requested) const {
  SerializationErrorInfo error;
  error.kind = SerializationErrorKind::type_mismatch;
  error.type_name = info.name();
  error.version = info.version();
  error.detail = fmt::format("'{}' is registered for C++ type {}, not {}", info.name(),
                             info.type_display_name(), internal::type_display_name(requested));
  throw SerializationError(std::move(error));
}

std::any TypeRegistry::decode_older(const TypeInfo& info, std::uint32_t version, Codec codec,
                                    std::string_view bytes) const {
  auto unsupported = [&](std::string detail) {
    SerializationErrorInfo error;
    error.kind = SerializationErrorKind::unsupported_version;
    error.type_name = info.name();
    error.version = version;
    error.codec = codec;
    error.detail = std::move(detail);
    return SerializationError(std::move(error));
  };
  if (version > info.version()) {
    throw unsupported(
        fmt::format("the bytes are v{}, newer than the registered v{}", version, info.version()));
  }
  const internal::Upcaster* first = info.upcaster(version);
  if (first == nullptr) {
    throw unsupported(version == 0 ? std::string("versions start at 1")
                                   : fmt::format("no upcaster from v{} is registered (current is "
                                                 "v{})",
                                                 version, info.version()));
  }
  std::any value = first->ops->decode(bytes, {info.name(), version, codec});
  for (std::uint32_t step_version = version; step_version < info.version(); ++step_version) {
    const internal::Upcaster* step = info.upcaster(step_version);
    if (step == nullptr) {
      throw unsupported(
          fmt::format("the upcaster chain from v{} breaks at v{}: no upcaster from "
                      "v{} to v{}",
                      version, step_version, step_version, step_version + 1));
    }
    try {
      value = step->apply(std::move(value));
    } catch (const SerializationError&) {
      throw;
    } catch (const std::exception& e) {
      SerializationErrorInfo error;
      error.kind = SerializationErrorKind::upcast_failed;
      error.type_name = info.name();
      error.version = step_version;
      error.codec = codec;
      error.detail =
          fmt::format("upcaster v{} -> v{} threw: {}", step_version, step_version + 1, e.what());
      throw SerializationError(std::move(error));
    } catch (...) {
      SerializationErrorInfo error;
      error.kind = SerializationErrorKind::upcast_failed;
      error.type_name = info.name();
      error.version = step_version;
      error.codec = codec;
      error.detail = fmt::format("upcaster v{} -> v{} threw a non-standard exception", step_version,
                                 step_version + 1);
      throw SerializationError(std::move(error));
    }
  }
  return value;
}

DecodedValue TypeRegistry::decode(std::string_view name, std::uint32_t version, Codec codec,
                                  std::string_view bytes) const {
  const TypeInfo& info = at(name);
  if (version == info.version()) {
    return DecodedValue(info, version, info.ops().decode(bytes, {info.name(), version, codec}));
  }
  return DecodedValue(info, version, decode_older(info, version, codec, bytes));
}

DecodedValue TypeRegistry::decode(const Encoded& encoded) const {
  return decode(encoded.type, encoded.version, encoded.codec, encoded.bytes);
}

}  // namespace gamebot::serializers
