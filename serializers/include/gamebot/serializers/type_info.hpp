#pragma once

#include <any>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "gamebot/serializers/codec.hpp"
#include "gamebot/serializers/internal/type_ops.hpp"

namespace gamebot::serializers {

// One registered event type: its stable name, its current schema version, its
// C++ type, the sample values registered beside it and the upcasters from its
// older versions. Owned by a TypeRegistry (stable address for the registry's
// lifetime); read-only and safe to share between threads once registration is over.
class TypeInfo {
 public:
  TypeInfo(std::string name, std::uint32_t version, const internal::TypeOps& ops,
           std::vector<std::any> samples);
  TypeInfo(const TypeInfo&) = delete;
  TypeInfo& operator=(const TypeInfo&) = delete;

  const std::string& name() const noexcept { return name_; }
  // Current schema version (>= 1): what encode writes and decode returns.
  std::uint32_t version() const noexcept { return version_; }
  const std::type_info& type() const noexcept { return *ops_->type; }
  // Demangled C++ type name, for messages.
  std::string type_display_name() const;

  // Sample values (at least one), each a std::any holding the C++ type.
  const std::vector<std::any>& samples() const noexcept { return samples_; }

  // Older versions that have an upcaster to the next version, ascending.
  std::vector<std::uint32_t> upcast_versions() const;
  // The upcaster from `version` to version + 1, or nullptr.
  const internal::Upcaster* upcaster(std::uint32_t version) const noexcept;

  // Low-level type-erased operations (used by TypeRegistry and the conformance suite).
  const internal::TypeOps& ops() const noexcept { return *ops_; }
  // operator== of the C++ type on two values of it; false if either holds another type.
  bool equal(const std::any& a, const std::any& b) const { return ops_->equal(a, b); }

  // Buffer size to pre-size for an encoding: the largest seen so far.
  std::size_t size_hint(Codec codec) const noexcept {
    return size_hints_[static_cast<std::size_t>(codec)].load(std::memory_order_relaxed);
  }
  void note_size(Codec codec, std::size_t size) const noexcept {
    auto& hint = size_hints_[static_cast<std::size_t>(codec)];
    if (size > hint.load(std::memory_order_relaxed)) hint.store(size, std::memory_order_relaxed);
  }

 private:
  friend class TypeRegistry;

  std::string name_;
  std::uint32_t version_;
  const internal::TypeOps* ops_;
  std::vector<std::any> samples_;
  std::map<std::uint32_t, internal::Upcaster> upcasters_;
  mutable std::atomic<std::size_t> size_hints_[2] = {64, 64};
};

}  // namespace gamebot::serializers
