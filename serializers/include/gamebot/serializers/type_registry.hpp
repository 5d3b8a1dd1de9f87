#pragma once

// TypeRegistry: stable event-type names and schema versions <-> C++ types,
// and the typed and type-erased encode/decode entry points.
//
// Registering a type:
//
//   struct PlayerJoined {
//     std::string game_id, player;
//     bool operator==(const PlayerJoined&) const = default;
//     template <class Archive> void serialize(Archive& ar) {
//       ar(CEREAL_NVP(game_id), CEREAL_NVP(player));
//     }
//   };
//   TypeRegistry registry;
//   registry.register_type<PlayerJoined>("player_joined", 1, {{"g1", "ana"}, {"", "Zoë"}});
//
// The type must be default-constructible, copy-constructible (values travel in
// std::any), equality-comparable (the conformance suite compares round trips)
// and serializable by cereal with a serialize/save/load *template* on the archive.
//
// Upcasters. A schema change bumps the version; the previous C++ type stays in
// the code (renamed, e.g. GuessProcessedV1, same cereal functions as before) and
// is registered as an upcaster, a function from the version-N value to the
// version N+1 value:
//
//   registry.register_type<GuessProcessed>("guess_processed", 2, {...});
//   registry.add_upcaster<GuessProcessedV1>("guess_processed", 1,
//       [](GuessProcessedV1 old) { return GuessProcessed{...}; }, {v1 samples});
//
// Decoding bytes of version N decodes them as the old C++ type with the same
// codec and runs the chain N -> N+1 -> ... -> current. Working on C++ values
// (rather than on JSON documents) lets one upcaster serve both codecs: portable
// binary carries no field names, so only the old type can read old binary bytes.
//
// Thread safety: register_type and add_upcaster are not thread-safe and must
// all happen before the registry is shared. After that every const member
// function may be called concurrently from any number of threads (upcaster
// functions must then be safe to call concurrently too).
//
// Errors: everything throws SerializationError (FaultClass::serialization).

#include <any>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeindex>
#include <typeinfo>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gamebot/serializers/codec.hpp"
#include "gamebot/serializers/decoded_value.hpp"
#include "gamebot/serializers/encoded.hpp"
#include "gamebot/serializers/error.hpp"
#include "gamebot/serializers/internal/codec_io.hpp"
#include "gamebot/serializers/internal/type_ops.hpp"
#include "gamebot/serializers/type_info.hpp"

namespace gamebot::serializers {

template <class T>
concept RegistrableType =
    std::is_default_constructible_v<T> && std::is_copy_constructible_v<T> &&
    std::equality_comparable<T> && !std::is_same_v<T, std::any> &&
    !std::is_same_v<T, DecodedValue> && std::is_same_v<T, std::remove_cvref_t<T>>;

class TypeRegistry {
 public:
  TypeRegistry();
  ~TypeRegistry();
  TypeRegistry(TypeRegistry&&) noexcept;
  TypeRegistry& operator=(TypeRegistry&&) noexcept;
  TypeRegistry(const TypeRegistry&) = delete;
  TypeRegistry& operator=(const TypeRegistry&) = delete;

  // ---- registration (before sharing the registry) --------------------------

  // Registers T under `name` (see is_valid_type_name) at schema `version` (>= 1)
  // with at least one sample value (ideally edge values too: empty strings,
  // unicode, extreme integers). Throws SerializationError: duplicate_name (the
  // name is taken; the message names both C++ types), duplicate_type (T is
  // registered under another name, or is an upcaster's old type; names both),
  // invalid_registration (bad name, version 0, no samples).
  template <RegistrableType T>
  TypeRegistry& register_type(std::string name, std::uint32_t version, std::vector<T> samples) {
    std::vector<std::any> erased;
    erased.reserve(samples.size());
    for (T& sample : samples) erased.emplace_back(std::in_place_type<T>, std::move(sample));
    add_type(std::make_unique<TypeInfo>(std::move(name), version, internal::type_ops<T>,
                                        std::move(erased)));
    return *this;
  }

  // Registers `upcast`, a function Old -> (C++ type of version from_version + 1),
  // for bytes of `name` at `from_version`. `name` must be registered already, with
  // a current version above from_version. `samples` are values of the old type
  // the conformance suite encodes and upcasts (golden files of the old version
  // are used too). Throws SerializationError (invalid_registration: unknown name,
  // version out of range, a second upcaster for the version, or the result type
  // does not match the type registered for the next version; duplicate_type: Old
  // is registered elsewhere).
  template <RegistrableType Old, class F>
  TypeRegistry& add_upcaster(std::string_view name, std::uint32_t from_version, F upcast,
                             std::vector<Old> samples = {}) {
    using Next = std::remove_cvref_t<std::invoke_result_t<F&, Old&&>>;
    static_assert(!std::is_void_v<Next>, "an upcaster returns the next version's value");
    internal::Upcaster step;
    step.from_version = from_version;
    step.ops = &internal::type_ops<Old>;
    step.to_type = &typeid(Next);
    step.apply = [fn = std::move(upcast)](std::any&& value) mutable -> std::any {
      return std::any(std::in_place_type<Next>, fn(std::any_cast<Old>(std::move(value))));
    };
    step.samples.reserve(samples.size());
    for (Old& sample : samples)
      step.samples.emplace_back(std::in_place_type<Old>, std::move(sample));
    add_upcaster_step(name, std::move(step));
    return *this;
  }

  // ---- lookup: O(1), noexcept variants return nullptr -----------------------

  const TypeInfo* find(std::string_view name) const noexcept;
  const TypeInfo* find(const std::type_info& type) const noexcept;
  template <class T>
  const TypeInfo* find() const noexcept {
    return find(typeid(T));
  }
  // Throws SerializationError (unknown_type, with the closest registered names).
  const TypeInfo& at(std::string_view name) const;
  // Throws SerializationError (unregistered_type).
  const TypeInfo& at(const std::type_info& type) const;
  template <class T>
  const TypeInfo& at() const {
    return at(typeid(T));
  }
  // Up to `limit` registered names closest to `name` by edit distance, best first
  // (only reasonably close ones).
  std::vector<std::string> closest_names(std::string_view name, std::size_t limit = 3) const;
  // All registered types in registration order.
  const std::vector<const TypeInfo*>& types() const noexcept { return ordered_; }
  std::size_t size() const noexcept { return ordered_.size(); }
  bool empty() const noexcept { return ordered_.empty(); }

  // ---- encode ----------------------------------------------------------------

  // Encodes a registered T at its current version. Throws SerializationError:
  // unregistered_type, unrepresentable (JSON: NaN/infinity, U+0000 or invalid
  // UTF-8 in a string), encode_failed (T's save function threw).
  template <class T>
  Encoded encode(const T& value, Codec codec) const {
    static_assert(!std::is_same_v<T, std::any>, "use encode_any for a std::any");
    const TypeInfo& info = at<T>();
    Encoded encoded{info.name(), info.version(), codec, {}};
    encode_to(info, value, codec, encoded.bytes);
    return encoded;
  }
  // Like encode, writing the bytes into `out` (its capacity is reused). Returns
  // the type's registration (name and version of the bytes).
  template <class T>
  const TypeInfo& encode_to(const T& value, Codec codec, std::string& out) const {
    static_assert(!std::is_same_v<T, std::any>, "use encode_any for a std::any");
    const TypeInfo& info = at<T>();
    encode_to(info, value, codec, out);
    return info;
  }
  // Type-erased encode of a decoded value (its current type).
  Encoded encode(const DecodedValue& value, Codec codec) const;
  // Type-erased encode of a std::any holding a registered type.
  Encoded encode_any(const std::any& value, Codec codec) const;

  // ---- decode ----------------------------------------------------------------

  // Decodes bytes written as `name` at `version` into T, running upcasters when
  // `version` is older than the registered one. Throws SerializationError:
  // unknown_type, type_mismatch (`name` is registered for another C++ type),
  // unsupported_version, malformed_input (with byte offset or JSON path),
  // upcast_failed.
  template <class T>
  T decode(std::string_view name, std::uint32_t version, Codec codec,
           std::string_view bytes) const {
    const TypeInfo& info = at(name);
    if (info.type() != typeid(T)) throw_type_mismatch(info, typeid(T));
    if (version == info.version()) {
      T value{};
      internal::decode_value(value, bytes, {info.name(), version, codec});
      return value;
    }
    return std::any_cast<T>(decode_older(info, version, codec, bytes));
  }
  template <class T>
  T decode(const Encoded& encoded) const {
    return decode<T>(encoded.type, encoded.version, encoded.codec, encoded.bytes);
  }

  // Type-erased decode: the registered current type of `name`, in a DecodedValue.
  // Same errors as decode<T>, except type_mismatch.
  DecodedValue decode(std::string_view name, std::uint32_t version, Codec codec,
                      std::string_view bytes) const;
  DecodedValue decode(const Encoded& encoded) const;

 private:
  template <class T>
  void encode_to(const TypeInfo& info, const T& value, Codec codec, std::string& out) const {
    internal::encode_value(value, out, info.size_hint(codec), {info.name(), info.version(), codec});
    info.note_size(codec, out.size());
  }

  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view name) const noexcept {
      return std::hash<std::string_view>{}(name);
    }
  };

  void add_type(std::unique_ptr<TypeInfo> info);
  void add_upcaster_step(std::string_view name, internal::Upcaster step);
  [[noreturn]] void throw_type_mismatch(const TypeInfo& info,
                                        const std::type_info& requested) const;
  std::any decode_older(const TypeInfo& info, std::uint32_t version, Codec codec,
                        std::string_view bytes) const;
  Encoded encode_erased(const TypeInfo& info, const void* value, Codec codec) const;

  std::vector<std::unique_ptr<TypeInfo>> owned_;
  std::vector<const TypeInfo*> ordered_;
  std::unordered_map<std::string, TypeInfo*, NameHash, std::equal_to<>> by_name_;
  std::unordered_map<std::type_index, const TypeInfo*> by_type_;
  // C++ types used as old versions by upcasters -> "name@vN", for duplicate checks.
  std::unordered_map<std::type_index, std::string> upcaster_types_;
};

}  // namespace gamebot::serializers
